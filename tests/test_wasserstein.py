"""Tests of the sliced and Gaussian Wasserstein statistics against independent references.

References: numpy sorting (1-D W2^2 between equal-size samples), ``scipy.stats.wasserstein_distance``
(1-D W1), ``scipy.linalg.sqrtm`` in float64 (Gaussian W2 and the matrix square root), the
closed-form barycentre of commuting Gaussians, finite differences (``torch.autograd.gradcheck``).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.stats
import torch

from neural_style.losses.distributions import quantiles
from neural_style.losses.moments import gram_matrix
from neural_style.losses.wasserstein import (GaussianW2, SlicedWasserstein, gaussian_barycentre,
                                             gaussian_w2_squared, psd_sqrt, trace_sqrt_product)


def _rand(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype)


def _features_1d(values: np.ndarray) -> torch.Tensor:
    """1-D samples as features (1, 1, 1, M)."""
    return torch.tensor(values, dtype=torch.float32).view(1, 1, 1, -1)


def _spd(n: int, seed: int) -> np.ndarray:
    """A random SPD matrix with eigenvalues spread over three decades."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (q * np.logspace(-3, 0, n)) @ q.T


def _ref_w2(mu: np.ndarray, s: np.ndarray, nu: np.ndarray, t: np.ndarray) -> float:
    root = np.real(scipy.linalg.sqrtm(t))
    cross = np.real(scipy.linalg.sqrtm(root @ s @ root))
    return float(((mu - nu) ** 2).sum() + np.trace(s) + np.trace(t) - 2 * np.trace(cross))


def _optimise(statistic, start: torch.Tensor, target: torch.Tensor, steps: int = 50, lr: float = 0.05) -> tuple:
    representation = statistic.describe(target)
    x = start.clone().requires_grad_()
    before = statistic.loss(x, representation).item()
    optimiser = torch.optim.Adam([x], lr=lr)
    for _ in range(steps):
        optimiser.zero_grad()
        statistic.loss(x, representation).backward()
        optimiser.step()
    return before, statistic.loss(x, representation).item()


# ------------------------------------------------------------------------------------------------
# Sliced Wasserstein: the 1-D case


def test_1d_sliced_loss_is_squared_w2_times_the_scale():
    """N = 1: one direction (+-1); equal counts: loss = c W2^2, W2^2 = mean (sort x - sort y)^2, c = mean y^2."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(500), rng.gamma(2.0, size=500)
    x32, y32 = x.astype(np.float32).astype(np.float64), y.astype(np.float32).astype(np.float64)
    w2 = np.mean((np.sort(x32) - np.sort(y32)) ** 2)
    scale = np.mean(y32**2) ** 2 / np.mean(y32**2)  # ||A||^2 / (N tr A) with A = mean y^2, N = 1
    stat = SlicedWasserstein()
    loss = stat.loss(_features_1d(x), stat.describe(_features_1d(y))).item()
    assert loss == pytest.approx(scale * w2, rel=1e-5)


def test_1d_sorted_projections_give_scipy_w1():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal(1000), rng.exponential(size=1000)
    stat = SlicedWasserstein()
    sx, sy = stat.describe(_features_1d(x))["sorted"], stat.describe(_features_1d(y))["sorted"]
    w1 = (sx - sy).abs().mean().item()
    assert w1 == pytest.approx(scipy.stats.wasserstein_distance(x, y), rel=1e-5)


def test_1d_quantile_resampling_to_another_count_gives_scipy_w1():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal(4096), 0.5 + 2 * rng.standard_normal(3000)
    stat = SlicedWasserstein()
    sx, sy = stat.describe(_features_1d(x))["sorted"], stat.describe(_features_1d(y))["sorted"]
    w1 = (sx - quantiles(sy, 4096)).abs().mean().item()
    assert w1 == pytest.approx(scipy.stats.wasserstein_distance(x, y), rel=5e-2)
    # the loss uses the same resampling: c W2^2 with W2^2 from numpy's interpolation of sort(y)
    ys = np.sort(y.astype(np.float32).astype(np.float64))
    resampled = np.interp(np.linspace(0, 2999, 4096), np.arange(3000), ys)
    w2 = np.mean((np.sort(x.astype(np.float32).astype(np.float64)) - resampled) ** 2)
    loss = stat.loss(_features_1d(x), stat.describe(_features_1d(y))).item()
    assert loss == pytest.approx(np.mean(ys**2) * w2, rel=1e-4)


# ------------------------------------------------------------------------------------------------
# Sliced Wasserstein: properties


@pytest.mark.parametrize("redraw", [False, True])
def test_sliced_zero_for_identical_positive_for_different(redraw):
    f, g = _rand(1, 16, 6, 7, seed=3).relu(), _rand(1, 16, 6, 7, seed=4).relu()
    stat = SlicedWasserstein(redraw=redraw)
    assert stat.loss(f, stat.describe(f)).item() == pytest.approx(0.0, abs=1e-10)
    assert stat.loss(g, stat.describe(f)).item() > 1e-3


def test_sliced_invariant_to_permuting_positions():
    f, t = _rand(1, 8, 5, 6, seed=5), _rand(1, 8, 4, 5, seed=6) + 1
    order = torch.randperm(30, generator=torch.Generator().manual_seed(0))
    shuffled = f.flatten(2)[..., order].view_as(f)
    stat = SlicedWasserstein(num_projections=32)
    target = stat.describe(t)
    assert stat.loss(shuffled, target).item() == pytest.approx(stat.loss(f, target).item(), rel=1e-6)
    assert stat.loss(shuffled, stat.describe(f)).item() == pytest.approx(0.0, abs=1e-10)


def test_sliced_channels_last_features_give_the_same_loss():
    f, t = _rand(1, 8, 5, 6, seed=7), _rand(1, 8, 5, 6, seed=8)
    stat = SlicedWasserstein()
    target = stat.describe(t.contiguous(memory_format=torch.channels_last))
    expected = stat.loss(f, stat.describe(t)).item()
    channels_last = f.contiguous(memory_format=torch.channels_last)
    assert stat.loss(channels_last, target).item() == pytest.approx(expected, rel=1e-6)


def test_sliced_directions_are_seeded_and_unit():
    t = _rand(1, 12, 3, 3)
    a, b = SlicedWasserstein(seed=3).describe(t), SlicedWasserstein(seed=3).describe(t)
    assert torch.equal(a["directions"], b["directions"])
    assert a["directions"].shape == (12, 12)
    assert torch.allclose(a["directions"].norm(dim=0), torch.ones(12))
    assert not torch.equal(a["directions"], SlicedWasserstein(seed=4).describe(t)["directions"])
    assert SlicedWasserstein(num_projections=5).describe(t)["directions"].shape == (12, 5)


def test_redraw_changes_directions_between_calls_reproducibly():
    stat, twin = SlicedWasserstein(redraw=True, seed=1), SlicedWasserstein(redraw=True, seed=1)
    first, second = stat.draw(10), stat.draw(10)
    assert not torch.allclose(first, second)
    assert torch.equal(first, twin.draw(10)) and torch.equal(second, twin.draw(10))
    f, t = _rand(1, 10, 4, 4, seed=9), _rand(1, 10, 4, 4, seed=10)
    target = stat.describe(t)
    assert stat.loss(f, target).item() != stat.loss(f, target).item()
    fixed = SlicedWasserstein(seed=1)
    assert fixed.loss(f, fixed.describe(t)).item() == fixed.loss(f, fixed.describe(t)).item()


def test_redraw_and_fixed_representations_are_not_mixed():
    t = _rand(1, 4, 3, 3)
    with pytest.raises(ValueError, match="redraw"):
        SlicedWasserstein(redraw=True).loss(t, SlicedWasserstein().describe(t))


def test_sliced_scale_matches_gram_loss_for_a_small_rescaling():
    """The documented scale: for F -> (1 + t) F the loss is E_l, in expectation over directions."""
    f = (_rand(1, 16, 8, 8, seed=11) + 0.5).relu()
    t = 1e-2
    gram = ((gram_matrix((1 + t) * f) - gram_matrix(f)) ** 2).sum().item() / (4 * 16**2 * 64**2)
    stat = SlicedWasserstein(num_projections=4096)
    assert stat.loss((1 + t) * f, stat.describe(f)).item() == pytest.approx(gram, rel=0.15)


def test_sliced_gradient_matches_finite_differences():
    f, t = _rand(1, 3, 3, 4, seed=12, dtype=torch.float64), _rand(1, 3, 2, 5, seed=13, dtype=torch.float64)
    stat = SlicedWasserstein(num_projections=6)
    target = stat.describe(t)
    assert torch.autograd.gradcheck(lambda x: stat.loss(x, target), (f.requires_grad_(),))


@pytest.mark.parametrize("redraw", [False, True])
def test_adam_reduces_the_sliced_loss(redraw):
    target = (_rand(1, 16, 8, 8, seed=14) * 2 + 1).relu()
    before, after = _optimise(SlicedWasserstein(redraw=redraw), _rand(1, 16, 8, 8, seed=15), target)
    assert after < 0.5 * before


# ------------------------------------------------------------------------------------------------
# Sliced Wasserstein: blends


@pytest.mark.parametrize("redraw", [False, True])
def test_sliced_blend_of_one_style_is_that_style(redraw):
    stat = SlicedWasserstein(redraw=redraw)
    r = stat.describe(_rand(1, 6, 4, 5, seed=16))
    blended = stat.blend([r], [1.0])
    assert blended.keys() == r.keys()
    assert all(torch.allclose(blended[k], r[k], rtol=0, atol=0) for k in r)


@pytest.mark.parametrize("redraw", [False, True])
def test_sliced_blend_of_two_point_masses_sits_between_them(redraw):
    """1-D point masses at a and b: the W2 barycentre with weights (w, 1 - w) is the point mass at w a + (1 - w) b."""
    stat = SlicedWasserstein(redraw=redraw)
    a, b = torch.full((1, 1, 4, 4), 1.0), torch.full((1, 1, 3, 5), 3.0)
    blended = stat.blend([stat.describe(a), stat.describe(b)], [0.25, 0.75])
    if not redraw:
        assert torch.allclose(blended["sorted"].abs(), torch.full((1, 1, 16), 2.5))
    assert stat.loss(torch.full((1, 1, 2, 3), 2.5), blended).item() == pytest.approx(0.0, abs=1e-10)
    assert stat.loss(torch.full((1, 1, 2, 3), 2.0), blended).item() > 0


def test_sliced_blend_refuses_other_directions():
    t = _rand(1, 5, 3, 3)
    with pytest.raises(ValueError, match="directions"):
        SlicedWasserstein().blend([SlicedWasserstein(seed=0).describe(t), SlicedWasserstein(seed=1).describe(t)],
                                  [1.0, 1.0])


# ------------------------------------------------------------------------------------------------
# Gaussian W2


@pytest.mark.parametrize("n", [8, 16, 32])
def test_psd_sqrt_matches_scipy(n):
    s = _spd(n, seed=n)
    root = psd_sqrt(torch.tensor(s)).numpy()
    assert np.allclose(root, np.real(scipy.linalg.sqrtm(s)), rtol=0, atol=1e-10)
    root32 = psd_sqrt(torch.tensor(s, dtype=torch.float32)).double().numpy()
    assert np.allclose(root32, np.real(scipy.linalg.sqrtm(s)), rtol=0, atol=1e-6)


def test_psd_sqrt_of_a_singular_matrix_squares_back():
    x = _rand(12, 5, seed=17, dtype=torch.float64)
    s = x @ x.T
    root = psd_sqrt(s)
    assert torch.allclose(root @ root, s, atol=1e-10)
    assert torch.allclose(root, root.T)


@pytest.mark.parametrize("n", [8, 16, 32])
def test_gaussian_w2_matches_scipy(n):
    s, t = _spd(n, seed=n), _spd(n, seed=100 + n)
    rng = np.random.default_rng(n)
    mu, nu = rng.standard_normal(n), rng.standard_normal(n)
    got = gaussian_w2_squared(*(torch.tensor(a, dtype=torch.float32)[None] for a in (mu, s, nu, t)))
    s32, t32 = (a.astype(np.float32).astype(np.float64) for a in (s, t))
    ref = _ref_w2(mu.astype(np.float32), s32, nu.astype(np.float32), t32)
    assert got.item() == pytest.approx(ref, rel=1e-3)


@pytest.mark.parametrize("shape", [(1, 8, 5, 5), (1, 24, 6, 6)])
def test_gaussian_w2_loss_matches_scipy_on_features(shape):
    n = shape[1]
    f, g = _rand(*shape, seed=18), _rand(*shape, seed=19) * 2 + 1
    x, y = (a[0].reshape(n, -1).double().numpy() for a in (f, g))
    ref = _ref_w2(x.mean(1), np.cov(x, bias=True), y.mean(1), np.cov(y, bias=True))
    a = y @ y.T / y.shape[1]
    scale = (a**2).sum() / (n**2 * np.trace(a))
    stat = GaussianW2()
    assert stat.loss(f, stat.describe(g)).item() == pytest.approx(scale * ref, rel=1e-3)


def test_trace_sqrt_product_gradient_is_finite_for_rank_deficient_covariances():
    """M = 16 positions < N = 32 channels: both covariances have rank 15."""
    f, t = _rand(1, 32, 4, 4, seed=20), _rand(1, 32, 4, 4, seed=21)
    stat = GaussianW2()
    x = f.clone().requires_grad_()
    loss = stat.loss(x, stat.describe(t))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all() and x.grad.abs().max() > 0
    y = t.clone().requires_grad_()
    stat.loss(y, stat.describe(t)).backward()
    assert torch.isfinite(y.grad).all()
    # the trace itself against scipy's square roots
    s, r = (np.cov(a[0].reshape(32, -1).double().numpy(), bias=True) for a in (f, t))
    root = np.real(scipy.linalg.sqrtm(r))
    ref = np.trace(np.real(scipy.linalg.sqrtm(root @ s @ root)))
    got = trace_sqrt_product(torch.tensor(s)[None], torch.tensor(root)[None]).item()
    assert got == pytest.approx(ref, rel=1e-3)


def test_gaussian_w2_gradient_matches_finite_differences():
    f, t = _rand(1, 3, 3, 4, seed=22, dtype=torch.float64), _rand(1, 3, 4, 3, seed=23, dtype=torch.float64)
    stat = GaussianW2()
    target = stat.describe(t)
    assert torch.autograd.gradcheck(lambda x: stat.loss(x, target), (f.requires_grad_(),))


def test_gaussian_w2_zero_for_identical_positive_for_different():
    f, g = (_rand(1, 32, 8, 8, seed=24) + 0.3).relu(), (_rand(1, 32, 8, 8, seed=25) + 0.3).relu()
    stat = GaussianW2()
    same, different = stat.loss(f, stat.describe(f)).item(), stat.loss(g, stat.describe(f)).item()
    assert abs(same) < 1e-6 * different and different > 0


def test_gaussian_w2_scale_matches_gram_loss_for_a_small_rescaling():
    f = (_rand(1, 16, 8, 8, seed=26) + 0.5).relu()
    t = 1e-2
    gram = ((gram_matrix((1 + t) * f) - gram_matrix(f)) ** 2).sum().item() / (4 * 16**2 * 64**2)
    stat = GaussianW2()
    assert stat.loss((1 + t) * f, stat.describe(f)).item() == pytest.approx(gram, rel=2e-2)


def test_adam_reduces_the_gaussian_w2_loss():
    target = (_rand(1, 16, 8, 8, seed=27) * 2 + 1).relu()
    before, after = _optimise(GaussianW2(), _rand(1, 16, 8, 8, seed=28), target)
    assert after < 0.5 * before


# ------------------------------------------------------------------------------------------------
# Gaussian W2: blends


def test_gaussian_blend_of_one_style_is_that_style():
    stat = GaussianW2()
    r = stat.describe(_rand(1, 6, 4, 5, seed=29))
    blended = stat.blend([r, stat.describe(_rand(1, 6, 4, 5, seed=30))], [1.0, 0.0])
    assert blended.keys() == r.keys() and all(torch.equal(blended[k], r[k]) for k in r)


def test_gaussian_barycentre_of_commuting_covariances_is_the_mean_of_square_roots():
    d1, d2 = np.array([1.0, 4.0, 0.25, 9.0]), np.array([4.0, 1.0, 1.0, 0.01])
    bary = gaussian_barycentre([torch.tensor(np.diag(d1))[None], torch.tensor(np.diag(d2))[None]], [1.0, 3.0])
    expected = np.diag((0.25 * np.sqrt(d1) + 0.75 * np.sqrt(d2)) ** 2)
    assert np.allclose(bary[0].numpy(), expected, rtol=0, atol=1e-9)


def test_gaussian_barycentre_is_the_fixed_point():
    """S = sum_k w_k (S^1/2 S_k S^1/2)^1/2 (Alvarez-Esteban et al.), checked with scipy's sqrtm."""
    covs, w = [_spd(8, seed=k) for k in range(3)], np.array([0.2, 0.5, 0.3])
    bary = gaussian_barycentre([torch.tensor(c)[None] for c in covs], list(w))[0].numpy()
    root = np.real(scipy.linalg.sqrtm(bary))
    rhs = sum(wk * np.real(scipy.linalg.sqrtm(root @ c @ root)) for wk, c in zip(w, covs))
    assert np.allclose(bary, rhs, rtol=0, atol=1e-8 * np.abs(bary).max())


def test_gaussian_blend_is_the_barycentre_of_the_gaussians():
    stat = GaussianW2()
    f, g = _rand(1, 6, 5, 5, seed=31), _rand(1, 6, 5, 5, seed=32) * 2 + 1
    rf, rg = stat.describe(f), stat.describe(g)
    blended = stat.blend([rf, rg], [1.0, 1.0])
    assert torch.allclose(blended["mean"], (rf["mean"] + rg["mean"]) / 2)
    assert torch.allclose(blended["cov_sqrt"] @ blended["cov_sqrt"], blended["cov"], atol=1e-5)
    # the barycentre minimises sum_k w_k W2^2(., N_k): any nearby covariance costs more
    def cost(cov):
        return sum(gaussian_w2_squared(blended["mean"].double(), cov.double(), r["mean"].double(),
                                       r["cov"].double()).item() for r in (rf, rg))
    perturbation = _rand(1, 6, 6, seed=33, dtype=torch.float64) * 1e-2
    cov = blended["cov"].double()
    assert cost(cov) < cost(cov + perturbation @ perturbation.mT)
    assert cost(cov) < cost(cov * 1.01) and cost(cov) < cost(cov * 0.99)
