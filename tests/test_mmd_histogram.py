"""Tests of the MMD and histogram statistics against independent references.

References: naive double loops over feature vectors in float64 (MMD), numpy sorting and
interpolation (histograms), the Gram loss of the paper (the MMD identity).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neural_style.losses.distributions import (MMD, GramHistogram, MMDGaussian, MMDLinear, MMDPoly,
                                               match_histograms, quantiles)
from neural_style.losses.moments import gram_matrix
from neural_style.losses.statistics import STATISTICS, Gram, blend, get_statistic
from neural_style.net.loading import load_backbone
from neural_style.synthesis.run import synthesize


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def naive_mmd2(x: np.ndarray, y: np.ndarray, k) -> float:
    """Biased MMD^2 of columns of x (N, M) and y (N, S) by explicit loops."""
    m, s = x.shape[1], y.shape[1]
    xx = sum(k(x[:, i], x[:, j]) for i in range(m) for j in range(m)) / m**2
    yy = sum(k(y[:, i], y[:, j]) for i in range(s) for j in range(s)) / s**2
    xy = sum(k(x[:, i], y[:, j]) for i in range(m) for j in range(s)) / (m * s)
    return xx + yy - 2 * xy


# ------------------------------------------------------------------------------------------------
# MMD


def test_gram_loss_is_quadratic_kernel_mmd_over_4n2():
    """Li et al.: E_l = MMD^2 / (4 N^2) with k(x, y) = (x.y)^2, biased estimator, on unequal M."""
    f, t = _rand(1, 6, 5, 7, seed=1).relu(), _rand(1, 6, 4, 6, seed=2).relu()
    n, m, s = 6, 35, 24
    mmd2 = naive_mmd2(f[0].reshape(n, m).numpy(), t[0].reshape(n, s).numpy(), lambda a, b: float(a @ b) ** 2)
    # the paper's E_l when M differs: 1/(4 N^2) || G_x / M - G_y / S ||^2
    e_l = ((gram_matrix(f) / m - gram_matrix(t) / s) ** 2).sum().item() / (4 * n**2)
    assert e_l == pytest.approx(mmd2 / (4 * n**2), rel=1e-12)
    assert MMDPoly().loss(f, MMDPoly().describe(t)).item() == pytest.approx(e_l, rel=1e-12)
    assert Gram().loss(f, Gram().describe(t)).item() == pytest.approx(e_l, rel=1e-12)


def test_gram_identity_with_equal_sizes_is_the_papers_formula():
    f, t = _rand(1, 4, 5, 5, seed=3), _rand(1, 4, 5, 5, seed=4)
    e_l = ((gram_matrix(f) - gram_matrix(t)) ** 2).sum().item() / (4 * 4**2 * 25**2)  # the paper's E_l, M = 25
    assert MMDPoly().loss(f, MMDPoly().describe(t)).item() == pytest.approx(e_l, rel=1e-12)


def test_linear_mmd_is_squared_mean_difference():
    f, t = _rand(1, 5, 4, 4, seed=5), _rand(1, 5, 3, 5, seed=6)
    x, y = f[0].reshape(5, -1).numpy(), t[0].reshape(5, -1).numpy()
    mmd2 = naive_mmd2(x, y, lambda a, b: float(a @ b))
    assert mmd2 == pytest.approx(((x.mean(1) - y.mean(1)) ** 2).sum(), rel=1e-10)
    assert MMDLinear().loss(f, MMDLinear().describe(t)).item() == pytest.approx(mmd2 / (4 * 5), rel=1e-10)


@pytest.mark.parametrize("offset", [1.0, 0.5])
def test_poly_mmd_matches_naive_loop(offset):
    f, t = _rand(1, 3, 3, 4, seed=7), _rand(1, 3, 4, 3, seed=8)
    x, y = f[0].reshape(3, -1).numpy(), t[0].reshape(3, -1).numpy()
    mmd2 = naive_mmd2(x, y, lambda a, b: (float(a @ b) + offset) ** 2)
    stat = MMDPoly(offset=offset)
    assert stat.loss(f, stat.describe(t)).item() == pytest.approx(mmd2 / (4 * 9), rel=1e-10)


def test_gaussian_bandwidth_is_mean_squared_distance():
    t = _rand(1, 3, 4, 4, seed=10)
    y = t[0].reshape(3, -1).numpy()
    sigma2 = np.mean([((y[:, i] - y[:, j]) ** 2).sum() for i in range(16) for j in range(16)])
    assert MMDGaussian().describe(t)["bandwidth"].item() == pytest.approx(sigma2, rel=1e-10)


def test_gaussian_mmd_is_the_mmd_of_its_random_feature_kernel():
    f, t = _rand(1, 3, 3, 4, seed=9), _rand(1, 3, 4, 4, seed=10)
    stat = MMDGaussian(num_features=64)
    target = stat.describe(t)
    sigma = math.sqrt(target["bandwidth"].item())
    w, b = (v.numpy() for v in stat.random_features(3, torch.float64))
    phi = lambda a: math.sqrt(2 / 64) * np.cos(w.T @ a / sigma + b)
    x, y = f[0].reshape(3, -1).numpy(), t[0].reshape(3, -1).numpy()
    mmd2 = naive_mmd2(x, y, lambda p, q: float(phi(p) @ phi(q)))
    assert stat.loss(f, target).item() == pytest.approx(mmd2, rel=1e-10)


def test_gaussian_random_features_approximate_the_gaussian_kernel():
    f, t = _rand(1, 3, 3, 4, seed=11), _rand(1, 3, 4, 4, seed=12)
    x, y = f[0].reshape(3, -1).numpy(), t[0].reshape(3, -1).numpy()
    stat = MMDGaussian(num_features=20000)
    target = stat.describe(t)
    sigma2 = target["bandwidth"].item()
    exact = naive_mmd2(x, y, lambda p, q: math.exp(-((p - q) ** 2).sum() / (2 * sigma2)))
    # Monte Carlo error of D = 20000 features: about 1 / sqrt(D) = 0.007 per kernel value
    assert stat.loss(f, target).item() == pytest.approx(exact, abs=0.02, rel=0.1)
    w, b = (v.numpy() for v in stat.random_features(3, torch.float64))
    k = (np.sqrt(2 / 20000) * np.cos(w.T @ x / np.sqrt(sigma2) + b[:, None])).T @ (
        np.sqrt(2 / 20000) * np.cos(w.T @ y / np.sqrt(sigma2) + b[:, None]))
    exact_k = np.exp(-((x[:, :, None] - y[:, None, :]) ** 2).sum(0) / (2 * sigma2))
    assert np.abs(k - exact_k).max() < 0.05


@pytest.mark.parametrize("cls", [MMDLinear, MMDPoly, MMDGaussian, GramHistogram])
def test_new_statistics_are_zero_on_own_description_and_positive_when_shifted(cls):
    f = _rand(1, 4, 5, 5, seed=11).relu()
    stat = cls()
    assert stat.loss(f, stat.describe(f)).item() == pytest.approx(0.0, abs=1e-12)
    assert stat.loss(f + 1.0, stat.describe(f)).item() > 1e-3


def test_mmd_subsamples_large_layers_with_a_fixed_subset():
    f = _rand(1, 3, 20, 20, seed=14)
    stat = MMDGaussian(num_samples=50)
    target = stat.describe(f)
    assert target["samples"].shape == (1, 3, 50)
    # the subset is a set of real columns, the same every call
    cols = {tuple(np.round(c, 12)) for c in f[0].reshape(3, -1).T.numpy()}
    assert all(tuple(np.round(c, 12)) in cols for c in target["samples"][0].T.numpy())
    torch.testing.assert_close(stat.describe(f)["samples"], target["samples"], rtol=0, atol=0)


def test_subsampled_style_against_every_image_position():
    """Above num_samples the style is its sampled columns; the image uses all M positions."""
    style = _rand(1, 3, 8, 8, seed=28)
    image = _rand(1, 3, 8, 8, seed=29).requires_grad_(True)
    stat = MMDPoly(offset=1.0, num_samples=10)
    target = stat.describe(style)
    y = target["samples"][0].numpy()
    x = image.detach()[0].reshape(3, -1).numpy()
    mmd2 = naive_mmd2(x, y, lambda p, q: (float(p @ q) + 1.0) ** 2)
    loss = stat.loss(image, target)
    assert loss.item() == pytest.approx(mmd2 / (4 * 9), rel=1e-10)
    loss.backward()
    assert (image.grad[0].abs().sum(0) > 0).all()  # every position gets a gradient


def test_mmd_blend_is_the_mixture_of_the_styles():
    """The mixture target's MMD^2 equals the naive MMD^2 against the pooled, weighted samples."""
    f, t1, t2 = _rand(1, 3, 3, 3, seed=15), _rand(1, 3, 2, 3, seed=16), _rand(1, 3, 4, 2, seed=17)
    stat = MMDPoly(offset=1.0)
    target = blend([stat.describe(t1), stat.describe(t2)], [1.0, 3.0], stat)
    x, y1, y2 = (a[0].reshape(3, -1).numpy() for a in (f, t1, t2))
    y = np.concatenate([y1, y2], axis=1)
    a = np.concatenate([np.full(6, 0.25 / 6), np.full(8, 0.75 / 8)])
    k = lambda p, q: (float(p @ q) + 1.0) ** 2
    xx = np.mean([[k(x[:, i], x[:, j]) for j in range(9)] for i in range(9)])
    xy = sum(a[j] * k(x[:, i], y[:, j]) for i in range(9) for j in range(14)) / 9
    yy = sum(a[i] * a[j] * k(y[:, i], y[:, j]) for i in range(14) for j in range(14))
    assert stat.loss(f, target).item() == pytest.approx((xx - 2 * xy + yy) / (4 * 9), rel=1e-10)


def test_mmd_rejects_bad_parameters():
    with pytest.raises(ValueError, match="'linear', 'poly' or 'gaussian'"):
        MMD(kernel="laplace")
    with pytest.raises(ValueError, match="num_samples"):
        MMDGaussian(num_samples=1)
    with pytest.raises(ValueError, match="offset"):
        MMDPoly(offset=-1.0)


@pytest.mark.parametrize("weight", [-1.0, float("nan"), float("inf")])
def test_gram_histogram_rejects_bad_weight(weight):
    with pytest.raises(ValueError, match="histogram weight"):
        GramHistogram(weight=weight)


# ------------------------------------------------------------------------------------------------
# Histograms


def test_quantiles_match_numpy_linear_interpolation():
    v = np.sort(_rand(2, 3, 11, seed=18).numpy(), axis=2)
    out = quantiles(torch.from_numpy(v), 7).numpy()
    ref = np.quantile(v, np.linspace(0, 1, 7), axis=2, method="linear").transpose(1, 2, 0)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-14)


def test_histogram_matching_gives_exactly_the_targets_sorted_values():
    values = _rand(1, 4, 30, seed=19)
    target = _rand(1, 4, 30, seed=20) * 3 + 1
    out = match_histograms(values, target.sort(dim=2).values)
    for c in range(4):
        assert torch.equal(out[0, c].sort().values, target[0, c].sort().values)
        # the remap keeps the ranks of the input
        assert torch.equal(out[0, c].argsort(), values[0, c].argsort())


def test_histogram_matching_with_different_lengths_uses_target_quantiles():
    values = _rand(1, 2, 9, seed=21)
    target = _rand(1, 2, 25, seed=22)
    out = match_histograms(values, target.sort(dim=2).values).numpy()
    ref = np.quantile(target.numpy(), np.linspace(0, 1, 9), axis=2, method="linear").transpose(1, 2, 0)
    np.testing.assert_allclose(np.sort(out, axis=2), ref, rtol=1e-12, atol=1e-14)


def test_gram_histogram_loss_matches_formula_and_remap_is_constant():
    f, t = _rand(1, 3, 4, 5, seed=23), _rand(1, 3, 4, 5, seed=24)
    stat = GramHistogram(weight=2.5)
    x, y = f[0].reshape(3, -1).numpy(), t[0].reshape(3, -1).numpy()
    remapped = np.empty_like(x)
    for c in range(3):
        remapped[c, np.argsort(x[c], kind="stable")] = np.sort(y[c])
    expected = Gram().loss(f, Gram().describe(t)).item() + 2.5 * ((x - remapped) ** 2).mean()
    assert stat.loss(f, stat.describe(t)).item() == pytest.approx(expected, rel=1e-12)
    # gradient of the histogram term treats R(O) as a constant: 2 w (O - R(O)) / (N M)
    g = f.clone().requires_grad_(True)
    (stat.loss(g, stat.describe(t)) - Gram().loss(g, Gram().describe(t))).backward()
    np.testing.assert_allclose(g.grad[0].reshape(3, -1).numpy(), 2 * 2.5 * (x - remapped) / 60, rtol=1e-10)


def test_histogram_term_separates_features_with_the_same_gram():
    """Two layers with one G / M but different means and covariances: only the histogram sees it."""
    # columns (a, b) and (-a, -b) have the same outer products: G equal, means opposite
    f = _rand(1, 2, 4, 4, seed=25).abs() + 0.5
    g = -f
    assert Gram().loss(g, Gram().describe(f)).item() == pytest.approx(0.0, abs=1e-20)
    assert GramHistogram().loss(g, GramHistogram().describe(f)).item() > 0.1


def test_histogram_blend_averages_quantile_functions():
    t1, t2 = _rand(1, 2, 2, 3, seed=26), _rand(1, 2, 3, 3, seed=27)
    r = blend([GramHistogram().describe(t1), GramHistogram().describe(t2)], [1.0, 1.0], GramHistogram())
    q1 = np.quantile(t1[0].reshape(2, -1).numpy(), np.linspace(0, 1, 9), axis=1, method="linear").T
    q2 = np.sort(t2[0].reshape(2, -1).numpy(), axis=1)
    np.testing.assert_allclose(r["sorted"][0].numpy(), (q1 + q2) / 2, rtol=1e-12)


# ------------------------------------------------------------------------------------------------
# Registry and synthesis


def test_new_statistics_are_registered():
    for name in ("gram_histogram", "mmd_linear", "mmd_poly", "mmd_gaussian"):
        assert name in STATISTICS
        assert get_statistic(name).name == name
    custom = GramHistogram(weight=7.0)
    assert get_statistic(custom) is custom


@pytest.mark.parametrize("statistic", ["mmd_gaussian", "gram_histogram"])
def test_synthesis_reduces_new_losses(statistic):
    net = load_backbone("random", seed=0)
    style = torch.rand((1, 3, 32, 32), generator=torch.Generator().manual_seed(5))
    style[:, 0] *= 0.3
    r = synthesize(net, style=style, statistic=statistic, num_steps=15, seed=0, tv_weight=0.0)  # the random network's style losses are tiny: the default total variation would outweigh them
    assert r.params["statistic"] == statistic
    h = r.history
    assert h[r.best_step - 1]["style"] < 0.2 * h[0]["style"]
    # a second statistic, not optimised, improves too
    from neural_style.synthesis.objective import style_distance
    before = style_distance(net, torch.rand((1, 3, 32, 32), generator=torch.Generator().manual_seed(0)), style,
                            statistic="mean_cov")
    assert style_distance(net, r.image, style, statistic="mean_cov") < 0.5 * before


def test_mmd_target_side_is_prepared_once_and_changes_nothing():
    """prepare() computes the style's embedding once; the loss with it equals the loss without it."""
    from neural_style.losses.statistics import prepared

    torch.manual_seed(0)
    style, image = torch.rand(1, 8, 12, 12), torch.rand(1, 8, 10, 10)
    for kernel in ("linear", "poly", "gaussian"):
        statistic = get_statistic(f"mmd_{kernel}")
        target = statistic.describe(style)
        ready = prepared(statistic, target)
        assert "embedding" in ready and "embedding" not in target
        torch.testing.assert_close(statistic.loss(image, ready), statistic.loss(image, target), rtol=0, atol=0)
