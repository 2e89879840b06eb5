"""Tests of neural_style.losses.statistics against independent references.

References are naive Python loops in float64, numpy.mean and numpy.cov; never the module's own
output. Shapes are kept tiny so the naive loops stay fast.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from neural_style.losses.distributions import MMDGaussian, MMDLinear, MMDPoly
from neural_style.losses.moments import (feature_covariance, feature_mean, gram_matrix, gram_over_positions,
                                         matrix_distance, mean_distance, outer)
from neural_style.losses.statistics import (STATISTICS, Gram, Mean, MeanCovariance, blend, content_loss,
                                            get_statistic, style_distances, total_variation)


def _rand(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# ------------------------------------------------------------------------------------------------
# Naive references (plain Python floats, i.e. float64)


def naive_gram(f: np.ndarray) -> np.ndarray:
    """f: (N, H, W) -> G_ij = sum_k F_ik F_jk by a triple loop."""
    n, h, w = f.shape
    g = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            s = 0.0
            for y in range(h):
                for x in range(w):
                    s += float(f[i, y, x]) * float(f[j, y, x])
            g[i, j] = s
    return g


def naive_tv(img: np.ndarray, beta: float, eps: float) -> float:
    """Docstring formula: mean over the (H-1) x (W-1) crop, sum over batch and channels."""
    b, c, h, w = img.shape
    total = 0.0
    for bi in range(b):
        for ci in range(c):
            for i in range(h - 1):
                for j in range(w - 1):
                    dx = float(img[bi, ci, i, j + 1]) - float(img[bi, ci, i, j])
                    dy = float(img[bi, ci, i + 1, j]) - float(img[bi, ci, i, j])
                    total += (dx * dx + dy * dy + eps) ** (beta / 2)
    return total / ((h - 1) * (w - 1))


# ------------------------------------------------------------------------------------------------
# Gram matrix, mean, covariance


def test_gram_matrix_matches_naive_triple_loop():
    f = _rand(1, 4, 3, 5, seed=1)
    g = gram_matrix(f)
    assert g.shape == (1, 4, 4)
    np.testing.assert_allclose(g[0].numpy(), naive_gram(f[0].numpy()), rtol=1e-12, atol=1e-12)


def test_gram_matrix_float32_close_to_float64_reference():
    f = _rand(1, 3, 4, 4, seed=2, dtype=torch.float32)
    np.testing.assert_allclose(gram_matrix(f)[0].numpy(), naive_gram(f[0].numpy()), rtol=1e-5, atol=1e-5)


def test_gram_matrix_batch_is_per_item():
    f = _rand(2, 3, 4, 5, seed=3)
    g = gram_matrix(f)
    assert g.shape == (2, 3, 3)
    for b in range(2):
        np.testing.assert_allclose(g[b].numpy(), naive_gram(f[b].numpy()), rtol=1e-12, atol=1e-12)
    # items differ, so mixing up the batch would be caught
    assert not torch.allclose(g[0], g[1])


def test_gram_matrix_rejects_non_4d():
    with pytest.raises(ValueError):
        gram_matrix(torch.zeros(3, 4, 4))


def test_feature_mean_matches_numpy():
    f = _rand(2, 5, 3, 4, seed=4)
    mu = feature_mean(f)
    assert mu.shape == (2, 5)
    for b in range(2):
        np.testing.assert_allclose(mu[b].numpy(), f[b].numpy().reshape(5, -1).mean(axis=1), rtol=1e-12, atol=1e-14)


def test_feature_covariance_matches_numpy_cov_biased():
    f = _rand(2, 5, 3, 4, seed=5) * 3 + 1.5
    cov = feature_covariance(f)
    assert cov.shape == (2, 5, 5)
    for b in range(2):
        ref = np.cov(f[b].numpy().reshape(5, -1), bias=True)
        np.testing.assert_allclose(cov[b].numpy(), ref, rtol=1e-12, atol=1e-12)
    # and not the unbiased estimator
    ref_unbiased = np.cov(f[0].numpy().reshape(5, -1), bias=False)
    assert not np.allclose(cov[0].numpy(), ref_unbiased)


def test_gram_over_m_equals_covariance_plus_outer_mean():
    f = _rand(2, 4, 5, 3, seed=6) + 2.0  # a clearly non-zero mean
    m = f.shape[-1] * f.shape[-2]
    for b in range(2):
        flat = f[b].numpy().reshape(4, -1)
        mu = flat.mean(axis=1)
        expected = np.cov(flat, bias=True) + np.outer(mu, mu)
        np.testing.assert_allclose((gram_matrix(f)[b] / m).numpy(), expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(
        gram_matrix(f) / m,
        feature_covariance(f) + feature_mean(f).unsqueeze(2) * feature_mean(f).unsqueeze(1),
        rtol=1e-12, atol=1e-12)
    # Gram().describe is exactly G / M
    np.testing.assert_allclose(Gram().describe(f)["gram"][0].numpy(), naive_gram(f[0].numpy()) / m,
                               rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# Losses


def test_matrix_distance_of_grams_over_positions_matches_naive_formula():
    g, a = _rand(1, 3, 3, seed=7), _rand(1, 3, 3, seed=8)
    n, m = 3, 20
    s = 0.0
    for i, j in itertools.product(range(n), range(n)):
        s += (float(g[0, i, j]) - float(a[0, i, j])) ** 2
    expected = s / (4 * n**2 * m**2)
    assert matrix_distance(g / m, a / m).item() == pytest.approx(expected, rel=1e-12)


def test_gram_statistic_loss_is_the_papers_E_l():
    f = _rand(1, 4, 5, 6, seed=9).relu()
    t = _rand(1, 4, 5, 6, seed=10).relu()
    n, m = 4, 30
    stat = Gram()
    got = stat.loss(f, stat.describe(t)).item()
    via_moments = matrix_distance(gram_over_positions(f), gram_over_positions(t)).item()
    gf, gt = naive_gram(f[0].numpy()), naive_gram(t[0].numpy())
    naive = ((gf - gt) ** 2).sum() / (4 * n**2 * m**2)
    assert got == pytest.approx(naive, rel=1e-10)
    assert via_moments == pytest.approx(naive, rel=1e-10)


def test_content_loss_matches_naive_half_sum_of_squares_per_position():
    f, p = _rand(1, 3, 4, 5, seed=11), _rand(1, 3, 4, 5, seed=12)
    expected = 0.5 * sum((a - b) ** 2 for a, b in zip(f.flatten().tolist(), p.flatten().tolist())) / (4 * 5)
    assert content_loss(f, p).item() == pytest.approx(expected, rel=1e-12)
    assert content_loss(f, f).item() == 0.0


def test_total_variation_exponent_2_matches_naive_loop():
    img = _rand(2, 3, 5, 6, seed=13)
    assert total_variation(img, 2.0).item() == pytest.approx(naive_tv(img.numpy(), 2.0, 0.0), rel=1e-12)
    # the default exponent is 2
    assert total_variation(img).item() == pytest.approx(naive_tv(img.numpy(), 2.0, 0.0), rel=1e-12)


@pytest.mark.parametrize("beta", [1.0, 1.5, 3.0])
def test_total_variation_other_exponents_match_naive_loop(beta):
    img = _rand(1, 3, 6, 5, seed=14)
    # the code adds eps = 1e-8 under the power for exponents != 2
    assert total_variation(img, beta).item() == pytest.approx(naive_tv(img.numpy(), beta, 1e-8), rel=1e-10)


def test_total_variation_exponent_1_is_isotropic_tv_of_a_step_edge():
    # A vertical step edge of height 1 in one channel of a 4x5 image: each of the H-1 = 3 rows of
    # the crop meets the edge once (|dx| = 1), so the isotropic TV is 3 over its 3 x 4 = 12
    # positions (plus eps effects).
    img = torch.zeros(1, 1, 4, 5, dtype=torch.float64)
    img[..., 2:] = 1.0
    assert total_variation(img, 1.0).item() == pytest.approx(3.0 / 12, abs=1e-4)
    assert total_variation(img, 2.0).item() == pytest.approx(3.0 / 12, abs=1e-12)


def test_total_variation_is_the_same_for_an_image_and_its_upsampled_copy():
    # a mean over positions: a smooth ramp sampled twice as densely has a quarter of the squared
    # differences at four times the positions, so R_2 falls 4 times; a sum would be unchanged.
    # What is size-free is gamma's balance against the per-position style loss.
    ramp = torch.linspace(0, 1, 65, dtype=torch.float64).expand(1, 1, 65, 65)
    fine = torch.linspace(0, 1, 129, dtype=torch.float64).expand(1, 1, 129, 129)
    assert total_variation(ramp).item() / total_variation(fine).item() == pytest.approx(4.0, rel=1e-9)


def test_total_variation_of_constant_image_is_about_zero():
    img = torch.full((1, 3, 8, 8), 0.37, dtype=torch.float64)
    assert total_variation(img, 2.0).item() == 0.0
    # for beta != 2 only the eps term survives: 3 channels * (1e-8) ** 0.5 = 3e-4 for beta = 1
    assert total_variation(img, 1.0).item() == pytest.approx(3 * 1e-4, rel=1e-6)
    assert total_variation(img, 1.5).item() < 1e-3


@pytest.mark.parametrize("beta", [0.0, -1.0])
def test_total_variation_rejects_non_positive_exponent(beta):
    with pytest.raises(ValueError, match="exponent"):
        total_variation(torch.zeros(1, 3, 4, 4), beta)


# ------------------------------------------------------------------------------------------------
# Statistics: zero iff the statistics match


ALL_STATS = [Gram, Mean, MeanCovariance]


@pytest.mark.parametrize("cls", ALL_STATS)
def test_loss_of_features_against_their_own_description_is_zero(cls):
    f = _rand(1, 4, 5, 5, seed=15).relu()
    stat = cls()
    assert stat.loss(f, stat.describe(f)).item() == pytest.approx(0.0, abs=1e-20)


@pytest.mark.parametrize("cls", ALL_STATS)
def test_shifted_features_give_positive_loss(cls):
    f = _rand(1, 4, 5, 5, seed=16).relu()
    stat = cls()
    assert stat.loss(f + 1.0, stat.describe(f)).item() > 1e-3


def test_mean_loss_matches_formula():
    f = _rand(1, 3, 4, 4, seed=17)
    t = _rand(1, 3, 4, 4, seed=18)
    mu_f = f[0].numpy().reshape(3, -1).mean(axis=1)
    mu_t = t[0].numpy().reshape(3, -1).mean(axis=1)
    expected = (mu_t @ mu_t) * ((mu_f - mu_t) ** 2).sum() / (2 * 3**2)
    assert Mean().loss(f, Mean().describe(t)).item() == pytest.approx(expected, rel=1e-10)


def test_mean_loss_is_the_second_order_term_of_the_gram_mean_part():
    # ||mu mu^T - nu nu^T||^2 / (4 N^2) for mu = nu + eps d, d orthogonal to nu: eps^2 ||nu||^2 ||d||^2 / (2 N^2)
    nu = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
    d = torch.tensor([[3.0, 0.0, -1.0]], dtype=torch.float64)
    for eps in (1e-2, 1e-3):
        mu = nu + eps * d
        quartic = ((outer(mu) - outer(nu)) ** 2).sum() / (4 * 3**2)
        assert mean_distance(mu, nu).item() == pytest.approx(quartic.item(), rel=10 * eps)


def test_mean_cov_loss_matches_formula():
    f = _rand(1, 3, 4, 4, seed=19)
    t = _rand(1, 3, 4, 4, seed=20)
    ff, tt = f[0].numpy().reshape(3, -1), t[0].numpy().reshape(3, -1)
    mu_f, mu_t = ff.mean(axis=1), tt.mean(axis=1)
    expected = (((np.cov(ff, bias=True) - np.cov(tt, bias=True)) ** 2).sum()
                + 2 * (mu_t @ mu_t) * ((mu_f - mu_t) ** 2).sum()) / (4 * 3**2)
    assert MeanCovariance().loss(f, MeanCovariance().describe(t)).item() == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("cls", ALL_STATS)
def test_permuting_positions_keeps_all_statistics(cls):
    # Same multiset of column vectors in another spatial order: same mean, covariance and Gram,
    # but different feature values.
    f = _rand(1, 4, 5, 6, seed=21).relu()
    perm = torch.randperm(30, generator=torch.Generator().manual_seed(0))
    g = f.flatten(2)[..., perm].reshape(f.shape)
    assert not torch.allclose(f, g)
    stat = cls()
    assert stat.loss(g, stat.describe(f)).item() == pytest.approx(0.0, abs=1e-24)


def test_same_gram_different_mean_and_covariance():
    """Different (mu, Sigma) pairs share a Gram matrix through G / M = Sigma + mu mu^T.

    Construction: take F (N x M) and an orthogonal Q in R^{M x M}. F Q^T has the same Gram matrix
    F Q^T Q F^T = F F^T. Choosing Q as a Householder reflection that maps the direction of the
    all-ones vector elsewhere changes the row means (and therefore the covariance).
    """
    n, h, w = 3, 4, 5
    m = h * w
    rng = np.random.default_rng(0)
    f = rng.random((n, m)) + 0.5  # clearly non-zero mean
    ones = np.ones(m) / math.sqrt(m)
    e = np.zeros(m)
    e[0] = 1.0
    v = ones - e
    q = np.eye(m) - 2 * np.outer(v, v) / (v @ v)  # reflection swapping ones/sqrt(M) and e_0
    assert np.allclose(q @ q.T, np.eye(m))
    g = f @ q.T
    # sanity check of the construction with numpy alone
    np.testing.assert_allclose(g @ g.T, f @ f.T, rtol=1e-12)
    assert not np.allclose(g.mean(axis=1), f.mean(axis=1))
    assert not np.allclose(np.cov(g, bias=True), np.cov(f, bias=True))

    ft = torch.from_numpy(f).reshape(1, n, h, w)
    gt = torch.from_numpy(g).reshape(1, n, h, w)
    gram_l = Gram().loss(gt, Gram().describe(ft)).item()
    mean_cov_l = MeanCovariance().loss(gt, MeanCovariance().describe(ft)).item()
    mean_l = Mean().loss(gt, Mean().describe(ft)).item()
    assert gram_l < 1e-25
    assert mean_cov_l > 1e-3
    assert mean_l > 1e-3


def test_style_distances_is_per_layer_loss():
    stat = MeanCovariance()
    feats = {"a": _rand(1, 3, 4, 4, seed=22), "b": _rand(1, 5, 2, 2, seed=23)}
    other = {"a": _rand(1, 3, 4, 4, seed=24), "b": _rand(1, 5, 2, 2, seed=25)}
    targets = {k: stat.describe(v) for k, v in other.items()}
    d = style_distances(feats, targets, stat)
    assert set(d) == {"a", "b"}
    for k in d:
        fk, ok = feats[k][0].numpy().reshape(feats[k].shape[1], -1), other[k][0].numpy().reshape(other[k].shape[1], -1)
        nk = fk.shape[0]
        expected = (((np.cov(fk, bias=True) - np.cov(ok, bias=True)) ** 2).sum()
                    + 2 * (ok.mean(1) @ ok.mean(1)) * ((fk.mean(1) - ok.mean(1)) ** 2).sum()) / (4 * nk**2)
        assert d[k].item() == pytest.approx(expected, rel=1e-10)


# ------------------------------------------------------------------------------------------------
# Gradients


def test_gradcheck_gram_distance():
    f = _rand(1, 3, 3, 4, seed=30).requires_grad_(True)
    a = gram_over_positions(_rand(1, 3, 3, 4, seed=31))
    assert torch.autograd.gradcheck(lambda x: matrix_distance(gram_over_positions(x), a), (f,))


@pytest.mark.parametrize("cls", [*ALL_STATS, MMDLinear, MMDPoly, MMDGaussian])
def test_gradcheck_statistic_losses(cls):
    stat = cls()
    target = stat.describe(_rand(1, 3, 3, 4, seed=32).relu())
    f = _rand(1, 3, 3, 4, seed=33).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: stat.loss(x, target), (f,))


def test_gradcheck_content_loss():
    p = _rand(1, 2, 3, 3, seed=34)
    f = _rand(1, 2, 3, 3, seed=35).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: content_loss(x, p), (f,))


@pytest.mark.parametrize("beta", [2.0, 1.5, 1.0])
def test_gradcheck_total_variation(beta):
    img = _rand(1, 3, 4, 5, seed=36).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: total_variation(x, beta), (img,))


def test_total_variation_gradient_is_finite_on_constant_image():
    img = torch.full((1, 3, 5, 5), 0.5, dtype=torch.float64, requires_grad=True)
    total_variation(img, 1.0).backward()
    assert torch.isfinite(img.grad).all()


# ------------------------------------------------------------------------------------------------
# Blending and lookup


def test_blend_is_weighted_average():
    r1 = {"gram": _rand(1, 3, 3, seed=40), "mean": _rand(1, 3, seed=41)}
    r2 = {"gram": _rand(1, 3, 3, seed=42), "mean": _rand(1, 3, seed=43)}
    r3 = {"gram": _rand(1, 3, 3, seed=44), "mean": _rand(1, 3, seed=45)}
    w = [1.0, 3.0, 0.5]
    out = blend([r1, r2, r3], w)
    assert set(out) == {"gram", "mean"}
    for k in out:
        ref = (r1[k].numpy() * 1.0 + r2[k].numpy() * 3.0 + r3[k].numpy() * 0.5) / 4.5
        np.testing.assert_allclose(out[k].numpy(), ref, rtol=1e-12)
    # weights are relative: scaling all of them changes nothing
    out2 = blend([r1, r2, r3], [2.0, 6.0, 1.0])
    for k in out:
        torch.testing.assert_close(out2[k], out[k], rtol=1e-12, atol=1e-14)
    # a one-hot weight picks one representation
    torch.testing.assert_close(blend([r1, r2], [0.0, 2.0])["gram"], r2["gram"], rtol=1e-12, atol=0)


def test_blend_of_described_features_equals_description_of_average_gram():
    # the Gram target of a 50/50 blend is the mean of the two G / M matrices
    f1, f2 = _rand(1, 3, 4, 4, seed=46), _rand(1, 3, 4, 4, seed=47)
    out = blend([Gram().describe(f1), Gram().describe(f2)], [1, 1])
    ref = (naive_gram(f1[0].numpy()) + naive_gram(f2[0].numpy())) / 16 / 2
    np.testing.assert_allclose(out["gram"][0].numpy(), ref, rtol=1e-12)


def test_blend_length_mismatch():
    r = {"mean": torch.zeros(1, 3)}
    with pytest.raises(ValueError, match="one per style"):
        blend([r, r], [1.0])


@pytest.mark.parametrize("weights", [[1.0, -0.5], [float("nan"), 1.0], [0.0, 0.0],
                                     [float("inf"), 1.0], [-1.0, 2.0]])
def test_blend_bad_weights(weights):
    r = {"mean": torch.zeros(1, 3)}
    with pytest.raises(ValueError, match="non-negative with a positive sum"):
        blend([r, r], weights)


@pytest.mark.parametrize("name, cls", [("gram", Gram), ("mean", Mean), ("mean_cov", MeanCovariance)])
def test_get_statistic_known(name, cls):
    stat = get_statistic(name)
    assert isinstance(stat, cls)
    assert stat.name == name


def test_get_statistic_unknown_lists_names():
    with pytest.raises(ValueError) as info:
        get_statistic("earth_mover")
    msg = str(info.value)
    assert "earth_mover" in msg
    for name in ("gram", "mean", "mean_cov"):
        assert name in msg
    assert set(STATISTICS) == {"gram", "mean", "mean_cov", "gram_histogram", "mmd_linear", "mmd_poly", "mmd_gaussian",
                               "sliced_wasserstein", "gaussian_w2"}


@pytest.mark.parametrize("fn", [gram_matrix, feature_covariance])
def test_channels_last_features_give_the_same_statistics_and_gradients(fn):
    """The synthesis feeds channels-last activations; the layout must not change values or gradients."""
    f = _rand(2, 5, 4, 6, seed=40)
    weights = _rand(2, 5, 5, 1, seed=41)[..., 0]
    results = []
    for layout in (torch.contiguous_format, torch.channels_last):
        x = f.clone().contiguous(memory_format=layout).requires_grad_(True)
        (fn(x) * weights).sum().backward()
        results.append((fn(x).detach(), x.grad))
    torch.testing.assert_close(results[1][0], results[0][0])
    torch.testing.assert_close(results[1][1], results[0][1])
    assert torch.autograd.gradcheck(lambda x: fn(x), (f.contiguous(memory_format=torch.channels_last)
                                                      .requires_grad_(True),))


def test_a_statistic_without_blend_is_averaged():
    class Custom:  # only what get_statistic asks of a statistic object
        name = "custom"

        def describe(self, features):
            return {"m": features.mean()}

        def loss(self, features, target):
            return (features.mean() - target["m"]) ** 2

    reps = [{"m": torch.tensor(1.0)}, {"m": torch.tensor(4.0)}]
    assert blend(reps, [2.0, 1.0], Custom())["m"].item() == pytest.approx(2.0)
