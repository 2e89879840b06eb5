"""Style losses that compare whole distributions of feature vectors, not only their first two moments.

* Histograms (Risser et al. 2017, "Stable and Controllable Neural Texture Synthesis and Style
  Transfer Using Histogram Losses"): ``GramHistogram``.
* Maximum mean discrepancy (Li et al. 2017, "Demystifying Neural Style Transfer"): ``MMD`` with the
  linear, polynomial and Gaussian kernels (``MMDLinear``, ``MMDPoly``, ``MMDGaussian``).

Each knows how to blend several styles' targets (``blend``), which for these statistics is not
a plain average of the representations.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Sequence, cast

import torch
from torch import Tensor

from .moments import Representation, flatten_positions, gram_over_positions, matrix_distance


def weighted_mean(values: Sequence[Tensor], weights: Sequence[float]) -> Tensor:
    """sum_k w_k v_k / sum_k w_k (weights already checked: >= 0, positive sum)."""
    return cast(Tensor, sum(w * v for w, v in zip(weights, values)) / float(sum(weights)))


def average(representations: Sequence[Representation], weights: Sequence[float]) -> Representation:
    """``weighted_mean`` of every entry of the representations."""
    return {key: weighted_mean([r[key] for r in representations], weights) for key in representations[0]}


def quantiles(sorted_values: Tensor, count: int) -> Tensor:
    """The values at the quantiles k / (count - 1), k = 0 ... count - 1, of sorted samples.

    Linear interpolation between order statistics: quantile q of S sorted values v_0 <= ... <=
    v_{S-1} is v at position q (S - 1). With count == S it returns ``sorted_values`` unchanged.

    Args:
        sorted_values: (..., S), sorted along the last dimension.
        count: number of quantiles wanted (>= 1).

    Returns:
        (..., count).
    """
    size = sorted_values.shape[-1]
    if count == size:
        return sorted_values
    if count == 1:
        return sorted_values[..., size // 2: size // 2 + 1]
    position = torch.linspace(0, size - 1, count, dtype=torch.float64, device=sorted_values.device)
    below = position.floor().long().clamp(max=size - 1)
    above = (below + 1).clamp(max=size - 1)
    frac = (position - below).to(sorted_values.dtype)
    return sorted_values[..., below] * (1 - frac) + sorted_values[..., above] * frac


def match_histograms(values: Tensor, target_sorted: Tensor) -> Tensor:
    """Remap each row of ``values`` onto the target's distribution by rank (exact histogram matching).

    R(O): the k-th smallest of the M values in a row gets the target's quantile k / (M - 1)
    (``quantiles``), so the output has exactly the target's sorted values when M equals the
    target's length, and keeps the ranks of ``values``. Ties are broken by position.

    Args:
        values: (B, N, M).
        target_sorted: (B or 1, N, S), each row sorted in increasing order.

    Returns:
        (B, N, M), no gradient (the remap is a constant target).
    """
    if values.dim() != 3 or target_sorted.dim() != 3 or values.shape[1] != target_sorted.shape[1]:
        raise ValueError(f"Expected values (B, N, M) and sorted targets (B, N, S) with the same N, got "
                         f"{tuple(values.shape)} and {tuple(target_sorted.shape)}.")
    with torch.no_grad():
        order = values.argsort(dim=2, stable=True)
        wanted = quantiles(target_sorted, values.shape[2]).to(values.dtype).expand(values.shape[0], -1, -1)
        return torch.empty_like(values).scatter_(2, order, wanted.contiguous())


@dataclass(frozen=True)
class GramHistogram:
    """Gram loss plus Risser et al.'s histogram loss: E_l + w / (N M) ||O - R(O)||^2.

    R(O) remaps every channel of the image's activations O (N x M) onto the style's histogram of
    that channel (``match_histograms``) and is held constant: the gradient pulls each activation
    towards the value of its rank in the style. The Gram matrix fixes only G / M = Sigma + mu
    mu^T, which many pairs (mu, Sigma) share; the histograms fix every channel's marginal (so its
    mean and variance) too. The histogram term is a mean square (units F^2, the Gram term's are
    F^4). The default weight 10 moves the mean and covariance towards the style's without costing
    the Gram term (the notebook's section 11 measures it on the brick).
    """

    weight: float = 10.0
    name = "gram_histogram"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.weight) and self.weight >= 0):
            raise ValueError(f"The histogram weight must be finite and >= 0, got {self.weight}.")

    def describe(self, features: Tensor) -> Representation:
        return {"gram": gram_over_positions(features), "sorted": flatten_positions(features).sort(dim=2).values}

    def loss(self, features: Tensor, target: Representation) -> Tensor:
        flat = flatten_positions(features)
        remapped = match_histograms(flat, target["sorted"])
        return (matrix_distance(gram_over_positions(features), target["gram"])
                + self.weight * (flat - remapped).pow(2).mean(dim=(1, 2)).sum())

    def blend(self, representations: Sequence[Representation], weights: Sequence[float]) -> Representation:
        """Gram matrices averaged; histograms averaged as quantile functions (resampled to the
        longest), which is the 1-D Wasserstein barycentre."""
        count = max(r["sorted"].shape[-1] for r in representations)
        return {"gram": weighted_mean([r["gram"] for r in representations], weights),
                "sorted": weighted_mean([quantiles(r["sorted"], count) for r in representations], weights)}


def _subsample(flat: Tensor, count: int, seed: int) -> Tensor:
    """(B, N, M) -> (B, N, min(M, count)): a fixed random subset of positions (seeded)."""
    m = flat.shape[2]
    if m <= count:
        return flat
    generator = torch.Generator().manual_seed(seed + m)  # one fixed subset per layer size
    index = torch.randperm(m, generator=generator)[:count].sort().values.to(flat.device)
    return flat[..., index]


@dataclass(frozen=True)
class MMD:
    """Squared maximum mean discrepancy between the feature vectors of image and style.

    Biased (V-statistic) estimator over the columns x_1..x_M (image) and y_1..y_S (style) of a
    layer, with sample weights a_j (1 / S for one style), written with the kernel's feature
    map phi, k(x, y) = phi(x).phi(y):

        MMD^2 = 1/M^2 sum_ik k(x_i, x_k) - 2/M sum_ij a_j k(x_i, y_j) + sum_jl a_j a_l k(y_j, y_l)
              = || 1/M sum_i phi(x_i) - sum_j a_j phi(y_j) ||^2   (>= 0)

    Kernels (Li et al.'s choices): ``linear`` k = x.y, phi(x) = x (matches the means only:
    MMD^2 = ||mu_x - mu_y||^2); ``poly`` k = (x.y + offset)^2, phi(x) = (x x^T, sqrt(2 offset)
    x, offset), so offset 0 is the Gram loss: MMD^2 = ||G_x / M - G_y / S||^2 = 4 N^2 E_l;
    ``gaussian`` k = exp(-||x - y||^2 / (2 sigma^2)) with sigma^2 the mean squared distance
    between the style's feature vectors (Li et al.'s heuristic), fixed when the style is
    described.

    The Gaussian kernel has no finite feature map, and its M x M kernel matrix is too large
    (conv1_1 has 25600 positions at 160 px: 2.6 GB). It is replaced by ``num_features`` random
    Fourier features (Rahimi and Recht): phi(x) = sqrt(2 / D) cos(W^T x / sigma + b), W ~ N(0, I),
    b ~ U[0, 2 pi), seeded, so phi(x).phi(y) ~ k(x, y) with error O(1/sqrt(D)) and the loss is
    the exact, non-negative MMD^2 of that kernel over every position of the image. (Kernel
    sums over a subset of positions were tried: with all positions against a fixed subset the
    estimate can go negative and the optimiser drove it there; with a subset on both sides the
    other positions of conv1_1 were left free and filled with pixel noise.)

    The style is described by at most ``num_samples`` of its feature vectors (a fixed, seeded
    random subset of positions), so several styles mix exactly: ``blend`` pools their samples
    with weights, the mixture of the distributions.

    The loss is MMD^2 / Z with Z = 4 N for linear, 4 N^2 for poly (so it is E_l exactly for
    offset 0) and 1 for gaussian (Li et al. normalise by N, N^2 and 1); each kernel needs its
    own style weight.
    """

    kernel: str = "gaussian"
    offset: float = 0.0
    num_samples: int = 4096
    num_features: int = 512
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kernel not in ("linear", "poly", "gaussian"):
            raise ValueError(f"Unknown MMD kernel {self.kernel!r}; choose 'linear', 'poly' or 'gaussian'.")
        if self.num_samples < 2 or self.num_features < 1:
            raise ValueError(f"num_samples must be at least 2 and num_features at least 1, got "
                             f"{self.num_samples} and {self.num_features}.")
        if not (math.isfinite(self.offset) and self.offset >= 0):
            raise ValueError(f"The polynomial kernel's offset must be finite and >= 0, got {self.offset}.")

    @property
    def name(self) -> str:
        return f"mmd_{self.kernel}"

    def random_features(self, channels: int, dtype: torch.dtype = torch.float32,
                        device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
        """W (N, D) ~ N(0, 1) and b (D,) ~ U[0, 2 pi) of the Gaussian kernel's features, seeded per N."""
        generator = torch.Generator().manual_seed(self.seed + channels)
        w = torch.randn(channels, self.num_features, generator=generator, dtype=torch.float64)
        b = torch.rand(self.num_features, generator=generator, dtype=torch.float64) * (2 * math.pi)
        return w.to(device, dtype), b.to(device, dtype)

    def embedding(self, flat: Tensor, weights: Tensor, bandwidth: Tensor) -> Tensor:
        """Kernel mean embedding sum_k weights_k phi(x_k): flat (B, N, M), weights (B, M) -> (B, K)."""
        if self.kernel == "linear":
            return (flat * weights.unsqueeze(1)).sum(dim=2)
        if self.kernel == "poly":
            gram = (flat * weights.unsqueeze(1)) @ flat.transpose(1, 2)
            mean = (flat * weights.unsqueeze(1)).sum(dim=2)
            return torch.cat([gram.flatten(1), math.sqrt(2 * self.offset) * mean], dim=1)
        w, b = self.random_features(flat.shape[1], flat.dtype, flat.device)
        projected = torch.addcmul(b, flat.transpose(1, 2) @ w, bandwidth.rsqrt().view(-1, 1, 1))  # (B, M, D)
        return math.sqrt(2.0 / self.num_features) * (weights.unsqueeze(1) @ torch.cos(projected)).squeeze(1)

    def describe(self, features: Tensor) -> Representation:
        samples = _subsample(flatten_positions(features), self.num_samples, self.seed)
        b, s = samples.shape[0], samples.shape[2]
        # mean over all pairs j, l of ||y_j - y_l||^2 = 2 mean ||y||^2 - 2 ||mean y||^2
        bandwidth = 2 * (samples.pow(2).sum(1).mean(1) - samples.mean(2).pow(2).sum(1))
        bandwidth = bandwidth.clamp_min(1e-12)
        return {"samples": samples, "sample_weights": samples.new_full((b, s), 1.0 / s), "bandwidth": bandwidth}

    @torch.no_grad()
    def prepare(self, target: Representation) -> Representation:
        """The style's kernel mean embedding, computed once per run (``StyleStatistic.prepare``)."""
        return {**target, "embedding": self.embedding(target["samples"], target["sample_weights"], target["bandwidth"])}

    def loss(self, features: Tensor, target: Representation) -> Tensor:
        x = flatten_positions(features)
        bandwidth = target["bandwidth"]
        style = target["embedding"] if "embedding" in target else self.prepare(target)["embedding"]
        image = self.embedding(x, x.new_full((x.shape[0], x.shape[2]), 1.0 / x.shape[2]), bandwidth)
        n = features.shape[1]
        scale = {"linear": 4.0 * n, "poly": 4.0 * n**2, "gaussian": 1.0}[self.kernel]
        return (image - style).pow(2).sum() / scale

    def blend(self, representations: Sequence[Representation], weights: Sequence[float]) -> Representation:
        """The weighted mixture of the styles' samples, whose kernel mean embedding is exactly the
        weighted average of theirs; the bandwidths are averaged."""
        total = float(sum(weights))
        return {"samples": torch.cat([r["samples"] for r in representations], dim=2),
                "sample_weights": torch.cat([w / total * r["sample_weights"] for w, r in zip(weights, representations)], dim=1),
                "bandwidth": weighted_mean([r["bandwidth"] for r in representations], weights)}


MMDLinear = functools.partial(MMD, "linear")
"""MMD with the linear kernel k(x, y) = x.y (see ``MMD``): ``MMDLinear(num_samples=..., seed=...)``."""
MMDPoly = functools.partial(MMD, "poly")
"""MMD with the polynomial kernel k(x, y) = (x.y + offset)^2 (see ``MMD``)."""
MMDGaussian = functools.partial(MMD, "gaussian")
"""MMD with the Gaussian kernel, bandwidth from the style (see ``MMD``)."""
