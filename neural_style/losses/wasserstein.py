"""Style losses from optimal transport between the feature vectors of the image and of the style.

A layer's M = H * W feature vectors f_1..f_M in R^N (the columns of F, features (B, N, H, W)) are
samples of a distribution; these losses measure how far the image's is from the style's in the
2-Wasserstein distance W2, the cost of moving one onto the other.

* Sliced (Heitz, Vanhoey, Chambon and Belcour 2021, "A Sliced Wasserstein Loss for Neural Texture
  Synthesis"): ``SlicedWasserstein``, the mean of W2^2 over the 1-D projections of the vectors on
  random unit directions; in 1-D, W2 is exact and cheap: sort both samples and compare them in
  order. It matches the whole distribution, not only its moments.
* Gaussian (the Frechet distance, Dowson and Landau 1982): ``GaussianW2``, W2^2 between the
  Gaussians N(mu, Sigma) fitted to the image's and the style's vectors, in closed form. It sees the
  same first two moments as ``MeanCovariance`` but measures them with optimal transport.

Both losses are in units of F^2 and are multiplied by a factor fixed by the style (``gram_units``)
that puts them in the units of the paper's E_l (F^4), so that they start from the Gram loss's
style weight. Each knows how to blend several styles (``blend``): the Wasserstein barycentre
(of the Gaussians; of the 1-D projections, direction by direction, for the sliced loss).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from .distributions import quantiles, weighted_mean
from .moments import Representation, feature_covariance, feature_mean, flatten_positions, gram_over_positions, outer


def gram_units(second: Tensor) -> Tensor:
    """c = ||A||_F^2 / (N^2 tr A) for second moments A = G / M (B, N, N): (B,).

    For a small rescaling of the style's features F -> (1 + t) F, W2^2 between the Gaussians of
    the two is t^2 tr A, the same mean over random unit directions of the projections' W2^2 is
    t^2 tr A / N, and the Gram loss E_l = 1/(4 N^2) ||(2 t + t^2) A||^2 ~ t^2 ||A||^2 / N^2. So c W2^2
    and N c SW^2 equal E_l there (in expectation over the directions for the sliced one), and a
    style weight tuned for the Gram loss is a starting point for them. A style whose features are
    all 0 gets c = 0.
    """
    n = second.shape[-1]
    trace = torch.diagonal(second, dim1=-2, dim2=-1).sum(-1)
    return second.pow(2).sum((-2, -1)) / (n**2 * trace.clamp_min(torch.finfo(second.dtype).tiny))


# ------------------------------------------------------------------------------------------------
# Sliced Wasserstein


def random_directions(channels: int, count: int, generator: torch.Generator, dtype: torch.dtype = torch.float32,
                      device: torch.device | str = "cpu") -> Tensor:
    """K directions uniform on the unit sphere of R^N: the columns of V (N, K), normalised N(0, I) draws."""
    v = torch.randn(channels, count, generator=generator, dtype=torch.float64)
    return (v / v.norm(dim=0, keepdim=True)).to(device, dtype)


def sorted_projections(flat: Tensor, directions: Tensor) -> Tensor:
    """sort(V^T F) along the positions: flat (B, N, M), directions V (N, K) -> (B, K, M).

    Row k holds the projections v_k . f_m of the M feature vectors in increasing order: the
    empirical quantile function of the 1-D distribution of the vectors along v_k.
    """
    if flat.shape[1] != directions.shape[0]:
        raise ValueError(f"{directions.shape[0]}-dimensional directions for features with {flat.shape[1]} channels.")
    projected = directions.T @ flat
    if projected.device.type == "cpu" and projected.dtype in (torch.float32, torch.float64):
        # numpy's vectorised argsort is several times faster than torch.sort on the CPU
        order = torch.from_numpy(np.argsort(projected.detach().numpy(), axis=2))
    else:
        order = projected.argsort(dim=2)
    return projected.gather(2, order)


@dataclass(frozen=True)
class SlicedWasserstein:
    """Heitz et al.'s sliced Wasserstein loss: c N / (K M) sum_k sum_m (sort(F^T v_k)_m - q_k(m))^2.

    F^T v_k are the M projections of the image's vectors on the unit direction v_k (k = 1..K,
    V (N, K)), and q_k the style's sorted projections on v_k, resampled to M values by linear
    interpolation of its quantiles when the style has another number of positions S
    (``distributions.quantiles``). For one direction, (1/M) sum_m (...)^2 is W2^2 between the two
    1-D empirical distributions (exact for S = M); averaged over random directions it estimates the
    sliced distance SW^2 = E_v W2^2(v . x, v . y), a distance between distributions in R^N. The
    factor c N (``gram_units``) puts the loss in the units of E_l; Heitz et al. use the plain mean.

    ``num_projections`` K defaults to N, the paper's choice; the projections cost K N M
    multiply-adds (the Gram matrix's N^2 M for K = N) and the sorts K M log M.

    Fixed directions (``redraw=False``, the default): V is drawn once per number of channels from
    ``seed`` and travels in the style's representation ({"sorted": (B, K, S), "directions": (N, K),
    "scale": (B,)}), whose sorted projections are computed once. The objective is then a
    deterministic function of the image, which the L-BFGS-B line search needs. But it only matches
    K marginals: K = N directions do not even fix the N(N + 1)/2 numbers of the Gram matrix, and the
    image can reach 0 while differing along other directions.

    Redrawn directions (``redraw=True``, the paper's code): every ``loss`` call draws a new V from a
    generator seeded by ``seed``, so each call is an unbiased estimate of SW^2 over all directions
    and an optimisation matches the whole distribution; the price is a noisy objective (for Adam,
    not for a line search) and a style representation that keeps the flattened features
    ({"samples/0": (B, N, S), "style_weights": (1,), "scale": (B,)}), projected and sorted anew at
    every call.
    """

    num_projections: int | None = None
    seed: int = 0
    redraw: bool = False
    name = "sliced_wasserstein"
    _generator: torch.Generator = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.num_projections is not None and self.num_projections < 1:
            raise ValueError(f"num_projections must be at least 1 (or None for one per channel), got "
                             f"{self.num_projections}.")
        object.__setattr__(self, "_generator", torch.Generator().manual_seed(self.seed))

    def draw(self, channels: int, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> Tensor:
        """The (N, K) directions of a layer with N channels: with fixed directions the ones seeded
        by ``seed`` and N (``describe`` stores them); with ``redraw`` the next ones of the generator."""
        generator = self._generator if self.redraw else torch.Generator().manual_seed(self.seed + channels)
        return random_directions(channels, self.num_projections or channels, generator, dtype, device)

    def describe(self, features: Tensor) -> Representation:
        flat = flatten_positions(features)
        scale = flat.shape[1] * gram_units(gram_over_positions(features))
        if self.redraw:
            return {"samples/0": flat, "style_weights": flat.new_ones(1), "scale": scale}
        directions = self.draw(flat.shape[1], flat.dtype, flat.device)
        return {"sorted": sorted_projections(flat, directions), "directions": directions, "scale": scale}

    def loss(self, features: Tensor, target: Representation) -> Tensor:
        if self.redraw != ("style_weights" in target):
            raise ValueError(f"A style described with redraw={not self.redraw} given to a loss with "
                             f"redraw={self.redraw}.")
        flat = flatten_positions(features)
        count = flat.shape[2]
        if self.redraw:
            directions = self.draw(flat.shape[1], flat.dtype, flat.device)
            with torch.no_grad():
                wanted = sum(w * quantiles(sorted_projections(target[f"samples/{j}"], directions), count)
                             for j, w in enumerate(target["style_weights"].tolist()))
        else:
            directions, wanted = target["directions"], quantiles(target["sorted"], count)
        current = sorted_projections(flat, directions)
        return (target["scale"] * (current - wanted).pow(2).mean(dim=(1, 2))).sum()

    def blend(self, representations: Sequence[Representation], weights: Sequence[float]) -> Representation:
        """The sliced Wasserstein barycentre: along each direction the weighted average of the styles'
        quantile functions (sorted projections resampled to the longest), which is the W2 barycentre
        of 1-D distributions. The scales are averaged with the same weights.

        With ``redraw`` the styles' features are kept side by side with their weights and averaged
        the same way along the directions of each ``loss`` call.
        """
        scale = weighted_mean([r["scale"] for r in representations], weights)
        total = float(sum(weights))
        if self.redraw:
            mixed: Representation = {}
            style_weights: list[Tensor] = []
            for w, r in zip(weights, representations):
                for j, inner in enumerate(r["style_weights"]):
                    mixed[f"samples/{len(style_weights)}"] = r[f"samples/{j}"]
                    style_weights.append(w / total * inner)
            return {**mixed, "style_weights": torch.stack(style_weights), "scale": scale}
        directions = representations[0]["directions"]
        if any(not torch.equal(r["directions"], directions) for r in representations):
            raise ValueError("Sliced representations to blend must share their directions (one statistic, one seed).")
        count = max(r["sorted"].shape[-1] for r in representations)
        return {"sorted": weighted_mean([quantiles(r["sorted"], count) for r in representations], weights),
                "directions": directions, "scale": scale}


# ------------------------------------------------------------------------------------------------
# Gaussian W2


def _wide(matrix: Tensor) -> Tensor:
    """``matrix`` in float64 for the N x N algebra (on the CPU from MPS, which has no float64)."""
    return matrix.to("cpu" if matrix.device.type == "mps" else matrix.device, torch.float64)


def psd_sqrt(matrix: Tensor) -> Tensor:
    """The symmetric square root S^1/2 = V diag(sqrt(max(lambda, 0))) V^T of PSD matrices (..., N, N).

    An eigendecomposition in float64 (rounding's negative eigenvalues count as 0), returned in the
    input's dtype and device. For constant matrices (the style's): its gradient through ``eigh``
    is not meant to be used (it divides by eigenvalue gaps).
    """
    values, vectors = torch.linalg.eigh(_wide(matrix))
    return ((vectors * values.clamp_min(0).sqrt().unsqueeze(-2)) @ vectors.mT).to(matrix.device, matrix.dtype)


def trace_sqrt_product(cov: Tensor, target_sqrt: Tensor, eps: float = 1e-12) -> Tensor:
    """tr (S'^1/2 S S'^1/2)^1/2 = sum_i sqrt(lambda_i), lambda the eigenvalues of C = S'^1/2 S S'^1/2.

    Differentiable in S (the image's covariance), stable when S or S' is singular (M < N): the
    loss depends on the eigenvalues only, whose gradient V diag(1 / (2 sqrt(lambda))) V^T through
    ``eigvalsh`` has no eigenvalue gaps in it, and the eigenvalues below eps lambda_max count as 0
    (no contribution, no gradient), which bounds 1 / sqrt(lambda). C and its eigenvalues are in
    float64, whose rounding (about 1e-16 N lambda_max) stays below the default floor.

    Args:
        cov: S (B, N, N).
        target_sqrt: S'^1/2 (B or 1, N, N).
        eps: eigenvalue floor relative to the largest eigenvalue of C.

    Returns:
        (B,) in float64.
    """
    root = _wide(target_sqrt)
    values = torch.linalg.eigvalsh(root @ _wide(cov).to(root.device) @ root)
    floor = (eps * values[..., -1:].detach()).clamp_min(torch.finfo(values.dtype).tiny)
    return torch.where(values > floor, values.clamp_min(floor).sqrt(), 0.0).sum(-1)


def gaussian_w2_squared(mean: Tensor, cov: Tensor, target_mean: Tensor, target_cov: Tensor,
                        target_sqrt: Tensor | None = None, eps: float = 1e-12) -> Tensor:
    """W2^2(N(mu, S), N(nu, S')) = ||mu - nu||^2 + tr S + tr S' - 2 tr (S'^1/2 S S'^1/2)^1/2.

    Summed in float64 (the last three terms nearly cancel for close covariances).

    Args:
        mean: mu (B, N). cov: S (B, N, N).
        target_mean: nu (B or 1, N). target_cov: S' (B or 1, N, N).
        target_sqrt: S'^1/2 if known (``psd_sqrt`` of S' otherwise).
        eps: eigenvalue floor of ``trace_sqrt_product``.

    Returns:
        (B,) in the dtype of ``mean``.
    """
    root = psd_sqrt(target_cov) if target_sqrt is None else target_sqrt
    cross = trace_sqrt_product(cov, root, eps)

    def trace(m: Tensor) -> Tensor:
        return torch.diagonal(_wide(m), dim1=-2, dim2=-1).sum(-1).to(cross.device)

    means = (_wide(mean) - _wide(target_mean)).pow(2).sum(-1).to(cross.device)
    return (means + trace(cov) + trace(target_cov) - 2 * cross).to(mean.device, mean.dtype)


def gaussian_barycentre(covariances: Sequence[Tensor], weights: Sequence[float], max_iterations: int = 100,
                        tolerance: float = 1e-10) -> Tensor:
    """Covariance S of the W2 barycentre of the Gaussians N(mu_k, S_k) with weights w_k.

    The barycentre is N(sum_k w_k mu_k / sum_k w_k, S) with S the fixed point of
    S = sum_k w_k (S^1/2 S_k S^1/2)^1/2 / sum_k w_k, found by the iteration of Alvarez-Esteban, del
    Barrio, Cuesta-Albertos and Matran (2016, "A fixed-point approach to barycenters in Wasserstein
    space"): S <- S^-1/2 (sum_k w_k (S^1/2 S_k S^1/2)^1/2)^2 S^-1/2 / (sum_k w_k)^2, from the weighted
    average of the S_k, until the relative change in Frobenius norm is below ``tolerance``. It
    converges when one S_k is positive definite; singular ones are handled on the range of S
    (a pseudo-inverse S^-1/2). In float64, returned in the dtype of the inputs.

    Args:
        covariances: S_k, each (B, N, N) or (1, N, N).
        weights: w_k >= 0 with a positive sum.

    Returns:
        (B, N, N).
    """
    wide = [_wide(s) for s in covariances]
    bary = weighted_mean(wide, weights)
    for _ in range(max_iterations):
        values, vectors = torch.linalg.eigh(bary)
        kept = values > 1e-12 * values[..., -1:].clamp_min(0)
        root = (vectors * values.clamp_min(0).sqrt().unsqueeze(-2)) @ vectors.mT
        inverse = (vectors * torch.where(kept, values.clamp_min(1e-300).rsqrt(), 0.0).unsqueeze(-2)) @ vectors.mT
        middle = weighted_mean([psd_sqrt(root @ s @ root) for s in wide], weights)
        new = inverse @ middle @ middle @ inverse
        new = (new + new.mT) / 2
        change = (new - bary).norm(dim=(-2, -1)) / bary.norm(dim=(-2, -1)).clamp_min(1e-300)
        bary = new
        if bool((change <= tolerance).all()):
            break
    return bary.to(covariances[0].device, covariances[0].dtype)


def gaussian_target(mean: Tensor, cov: Tensor) -> Representation:
    """{"mean": nu (B, N), "cov": S' (B, N, N), "cov_sqrt": S'^1/2, "scale": ``gram_units`` (B,)}."""
    return {"mean": mean, "cov": cov, "cov_sqrt": psd_sqrt(cov), "scale": gram_units(cov + outer(mean))}


@dataclass(frozen=True)
class GaussianW2:
    """W2^2 between Gaussians fitted to the feature vectors of image and style, in the units of E_l.

    c W2^2(N(mu, S), N(nu, S')) with mu, S the mean and (biased, over the M positions) covariance of
    the image's vectors (``moments.feature_mean``, ``moments.feature_covariance``), nu, S' the
    style's, and c (``gram_units``) fixed by the style. The style's S'^1/2 is computed once
    (``describe``: {"mean", "cov", "cov_sqrt", "scale"}); the image's side needs
    tr (S'^1/2 S S'^1/2)^1/2, from the eigenvalues of an N x N matrix in float64
    (``trace_sqrt_product``; ``eps`` is its eigenvalue floor relative to the largest). Newton-Schulz
    iterations were the other candidate: in float32 they converge too slowly for the ill-conditioned
    covariances of VGG layers (the error of a fixed iteration count is largest where the image
    matches the style, since C = S'^2 squares the condition number) and diverge when run longer on
    singular ones.

    It is 0 only for equal means and covariances, like ``MeanCovariance``, but compares variances
    through their square roots (for commuting S and S', the covariance part is
    sum_i (sqrt(s_i) - sqrt(s'_i))^2), so a change of variance in a low-variance direction counts for
    more than in the Frobenius distance, which the largest variances dominate.
    """

    eps: float = 1e-12
    name = "gaussian_w2"

    def __post_init__(self) -> None:
        if not 0 <= self.eps < 1:
            raise ValueError(f"eps must be in [0, 1), got {self.eps}.")

    def describe(self, features: Tensor) -> Representation:
        return gaussian_target(feature_mean(features), feature_covariance(features))

    def loss(self, features: Tensor, target: Representation) -> Tensor:
        w2 = gaussian_w2_squared(feature_mean(features), feature_covariance(features), target["mean"], target["cov"],
                                 target["cov_sqrt"], self.eps)
        return (target["scale"] * w2).sum()

    def blend(self, representations: Sequence[Representation], weights: Sequence[float]) -> Representation:
        """The W2 barycentre of the styles' Gaussians (``gaussian_barycentre``); one style with a
        positive weight is returned as it is."""
        positive = [r for r, w in zip(representations, weights) if w > 0]
        if len(positive) == 1:
            return dict(positive[0])
        return gaussian_target(weighted_mean([r["mean"] for r in representations], weights),
                               gaussian_barycentre([r["cov"] for r in representations], weights))
