"""Style descriptors and the losses that match them.

Notation (Gatys et al.): a layer l has N_l channels and M_l = H_l * W_l positions; its
activations F^l are an (N_l, M_l) matrix, one column per position. Tensors here keep a batch
dimension: ``features`` has shape (B, N, H, W).

Three statistics of the M column vectors f_1 ... f_M of a layer:

* Gram matrix    G = F F^T = sum_k f_k f_k^T                   (N, N)   -- the paper
* mean           mu = (1/M) sum_k f_k                          (N,)
* covariance     Sigma = (1/M) sum_k (f_k - mu)(f_k - mu)^T     (N, N)   = Gram of F - mu, over M

They are tied by G / M = Sigma + mu mu^T, and every style loss below is written in the units
of the paper's E_l = 1/(4 N^2 M^2) sum_ij (G_ij - A_ij)^2 = 1/(4 N^2) ||G/M - A/M||^2, so the
three losses share one style weight. The mean's loss is the squared distance of the means that
the mean-only Gaussian model implies, scaled to those units (``mean_distance``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence

import torch
from torch import Tensor


def _flatten(features: Tensor) -> Tensor:
    """(B, N, H, W) -> (B, N, M) with M = H * W.

    For channels-last activations (as the synthesis computes them) this is a view, not a copy, so
    gradients flow back in the network's own layout (a mismatch costs a full copy per layer).
    """
    if features.dim() != 4:
        raise ValueError(f"Expected features of shape (B, N, H, W), got {tuple(features.shape)}.")
    if features.is_contiguous(memory_format=torch.channels_last):
        b, n = features.shape[:2]
        return features.permute(0, 2, 3, 1).reshape(b, -1, n).transpose(1, 2)
    return features.flatten(2)


def _outer_product(flat: Tensor) -> Tensor:
    """F F^T of (B, N, M) features, with the backward dF = (dG + dG^T) F: one matrix product instead
    of autograd's two and their sum (these products dominate an evaluation in bf16)."""
    return _SymmetricProduct.apply(flat)


class _SymmetricProduct(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, flat: Tensor) -> Tensor:
        ctx.save_for_backward(flat)
        return flat @ flat.transpose(1, 2)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        (flat,) = ctx.saved_tensors
        symmetric = grad + grad.transpose(1, 2)
        if flat.stride(1) == 1:  # a channels-last view: give the gradient the same layout
            return (flat.transpose(1, 2) @ symmetric).transpose(1, 2)
        return symmetric @ flat


def gram_matrix(features: Tensor) -> Tensor:
    """Gram matrix G_ij = sum_k F_ik F_jk of the paper (not normalised).

    Args:
        features: (B, N, H, W).

    Returns:
        (B, N, N).
    """
    return _outer_product(_flatten(features))


def feature_mean(features: Tensor) -> Tensor:
    """Mean feature vector mu_i = (1/M) sum_k F_ik.

    Args:
        features: (B, N, H, W).

    Returns:
        (B, N).
    """
    return _flatten(features).mean(dim=2)


def feature_covariance(features: Tensor) -> Tensor:
    """Covariance Sigma = (1/M) (F - mu)(F - mu)^T: the Gram matrix of the centred features over M.

    This is the maximum-likelihood (biased) covariance, ``numpy.cov(F, bias=True)``.

    Args:
        features: (B, N, H, W).

    Returns:
        (B, N, N).
    """
    flat = _flatten(features)
    return _outer_product(flat - flat.mean(dim=2, keepdim=True)) / flat.shape[2]


def gram_loss(gram: Tensor, target: Tensor, num_positions: int) -> Tensor:
    """The paper's style loss of one layer, E_l = 1/(4 N^2 M^2) sum_ij (G_ij - A_ij)^2.

    Args:
        gram: G of the synthesised image, (B, N, N).
        target: A of the style image, (B, N, N) or (1, N, N).
        num_positions: M_l = H_l * W_l (the same for both when the images have equal size).

    Returns:
        Scalar (summed over the batch).
    """
    n = gram.shape[-1]
    return (gram - target).pow(2).sum() / (4.0 * n**2 * num_positions**2)


def content_loss(features: Tensor, target: Tensor) -> Tensor:
    """Content loss L = 1/(2M) sum_ij (F_ij - P_ij)^2, M = H * W positions.

    Departs from the paper's 1/2 sum_ij by the factor 1/M: the paper's sum grows with the image's
    area while its style loss E_l (divided by M^2) does not, so one alpha / beta would stylise a
    512 px image four times less than a 256 px one. Per position, the balance holds at every size.

    Args:
        features: F of the synthesised image, (B, N, H, W).
        target: P of the content image, same shape.

    Returns:
        Scalar.
    """
    return 0.5 * (features - target).pow(2).sum() / (features.shape[-1] * features.shape[-2])


def total_variation(image: Tensor, exponent: float = 2.0) -> Tensor:
    """Total variation R = sum_ij ((x_{i,j+1} - x_ij)^2 + (x_{i+1,j} - x_ij)^2)^(beta / 2).

    The regulariser of Mahendran and Vedaldi; beta = 1 is the classic isotropic TV (edges
    survive), beta = 2 penalises all gradients quadratically (smoother).

    Args:
        image: (B, C, H, W).
        exponent: beta > 0.

    Returns:
        Scalar, summed over batch and channels.
    """
    if exponent <= 0:
        raise ValueError(f"The total-variation exponent must be positive, got {exponent}.")
    dx = image[..., :-1, 1:] - image[..., :-1, :-1]
    dy = image[..., 1:, :-1] - image[..., :-1, :-1]
    squared = dx.pow(2) + dy.pow(2)
    if exponent == 2.0:
        return squared.sum()
    return (squared + 1e-8).pow(exponent / 2).sum()  # eps keeps the gradient finite at 0 for beta < 2


def outer(mean: Tensor) -> Tensor:
    """(B, N) -> (B, N, N): mu mu^T."""
    return mean.unsqueeze(2) * mean.unsqueeze(1)


def matrix_distance(a: Tensor, b: Tensor) -> Tensor:
    """1/(4 N^2) sum_ij (a_ij - b_ij)^2 for (B, N, N) matrices."""
    return (a - b).pow(2).sum() / (4.0 * a.shape[-1] ** 2)


def mean_distance(mean: Tensor, target: Tensor) -> Tensor:
    """||nu||^2 ||mu - nu||^2 / (2 N^2) for means mu (B, N) and target means nu (B or 1, N).

    The mean-only model N(mu, sigma^2 I) of a layer's feature vectors gives the KL
    ||mu - nu||^2 / (2 sigma^2) between the image's and the style's fitted models: a squared
    distance of the means. The factor ||nu||^2 / N^2 (fixed by the style) puts it in the units of
    E_l: it is the second-order term of 1/(4 N^2) ||mu mu^T - nu nu^T||^2, the mean's part of the
    Gram loss, for mu - nu orthogonal to nu (and within a factor 2 of it in any direction).
    """
    n = mean.shape[-1]
    return (target.pow(2).sum(-1) * (mean - target).pow(2).sum(-1)).sum() / (2.0 * n**2)


Representation = dict[str, Tensor]


class StyleStatistic(Protocol):
    """A style descriptor: what to remember of a style layer, and how far another layer is from it."""

    name: str

    def describe(self, features: Tensor) -> Representation:
        """The representation of features (B, N, H, W); blendable by weighted averaging."""
        ...

    def loss(self, features: Tensor, target: Representation) -> Tensor:
        """Scalar distance between the features' representation and ``target``."""
        ...


class Gram:
    """The paper's statistic: G / M, matched with E_l = 1/(4 N^2 M^2) sum (G - A)^2."""

    name = "gram"

    def describe(self, features: Tensor) -> Representation:
        return {"gram": gram_matrix(features) / (features.shape[-1] * features.shape[-2])}

    def loss(self, features: Tensor, target: Representation) -> Tensor:
        return matrix_distance(self.describe(features)["gram"], target["gram"])


class Mean:
    """Mean only, the model N(mu, sigma^2 I): ``mean_distance`` of mu. N numbers per layer."""

    name = "mean"

    def describe(self, features: Tensor) -> Representation:
        return {"mean": feature_mean(features)}

    def loss(self, features: Tensor, target: Representation) -> Tensor:
        return mean_distance(feature_mean(features), target["mean"])


class MeanCovariance:
    """Mean and covariance, the model N(mu, Sigma): 1/(4 N^2) ||Sigma - Sigma'||^2 + ``mean_distance``.

    N + N(N+1)/2 numbers per layer, the parameters of a Gaussian N(mu, Sigma).
    """

    name = "mean_cov"

    def describe(self, features: Tensor) -> Representation:
        return {"mean": feature_mean(features), "cov": feature_covariance(features)}

    def loss(self, features: Tensor, target: Representation) -> Tensor:
        current = self.describe(features)
        return matrix_distance(current["cov"], target["cov"]) + mean_distance(current["mean"], target["mean"])


# ------------------------------------------------------------------------------------------------
# Histograms (Risser et al. 2017)


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
    F^4). The default weight 10 was chosen on a Caffe-convention VGG16 (0-255 input scale): on the
    brick texture (128 px, 100 evaluations) weights 1, 10, 100 took the mean distance from 214
    (Gram alone) to 4.9, 1.0, 0.8 while the Gram distance went from 1.5 to 1.7, 1.7, 4.0.
    """

    weight: float = 10.0
    name = "gram_histogram"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.weight) and self.weight >= 0):
            raise ValueError(f"The histogram weight must be finite and >= 0, got {self.weight}.")

    def describe(self, features: Tensor) -> Representation:
        return {**Gram().describe(features), "sorted": _flatten(features).sort(dim=2).values}

    def loss(self, features: Tensor, target: Representation) -> Tensor:
        flat = _flatten(features)
        remapped = match_histograms(flat, target["sorted"])
        return (Gram().loss(features, target)
                + self.weight * (flat - remapped).pow(2).mean(dim=(1, 2)).sum())


# ------------------------------------------------------------------------------------------------
# Maximum mean discrepancy (Li et al. 2017, "Demystifying Neural Style Transfer")


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
    def name(self) -> str:  # type: ignore[override]
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
        samples = _subsample(_flatten(features), self.num_samples, self.seed)
        b, s = samples.shape[0], samples.shape[2]
        # mean over all pairs j, l of ||y_j - y_l||^2 = 2 mean ||y||^2 - 2 ||mean y||^2
        bandwidth = 2 * (samples.pow(2).sum(1).mean(1) - samples.mean(2).pow(2).sum(1))
        bandwidth = bandwidth.clamp_min(1e-12)
        return {"samples": samples, "sample_weights": samples.new_full((b, s), 1.0 / s), "bandwidth": bandwidth}

    def loss(self, features: Tensor, target: Representation) -> Tensor:
        x = _flatten(features)
        bandwidth = target["bandwidth"]
        with torch.no_grad():
            style = self.embedding(target["samples"], target["sample_weights"], bandwidth)
        image = self.embedding(x, x.new_full((x.shape[0], x.shape[2]), 1.0 / x.shape[2]), bandwidth)
        n = features.shape[1]
        scale = {"linear": 4.0 * n, "poly": 4.0 * n**2, "gaussian": 1.0}[self.kernel]
        return (image - style).pow(2).sum() / scale


class MMDLinear(MMD):
    """MMD with the linear kernel k(x, y) = x.y (see ``MMD``)."""

    name = "mmd_linear"  # type: ignore[assignment]

    def __init__(self, num_samples: int = 4096, seed: int = 0) -> None:
        super().__init__("linear", num_samples=num_samples, seed=seed)


class MMDPoly(MMD):
    """MMD with the polynomial kernel k(x, y) = (x.y + offset)^2 (see ``MMD``)."""

    name = "mmd_poly"  # type: ignore[assignment]

    def __init__(self, offset: float = 0.0, num_samples: int = 4096, seed: int = 0) -> None:
        super().__init__("poly", offset=offset, num_samples=num_samples, seed=seed)


class MMDGaussian(MMD):
    """MMD with the Gaussian kernel, bandwidth from the style (see ``MMD``)."""

    name = "mmd_gaussian"  # type: ignore[assignment]

    def __init__(self, num_samples: int = 4096, num_features: int = 512, seed: int = 0) -> None:
        super().__init__("gaussian", num_samples=num_samples, num_features=num_features, seed=seed)


STATISTICS: dict[str, type] = {cls.name: cls for cls in (Gram, Mean, MeanCovariance, GramHistogram,
                                                           MMDLinear, MMDPoly, MMDGaussian)}


def get_statistic(name: "str | StyleStatistic") -> StyleStatistic:
    """The statistic called ``name`` with its default parameters (a key of ``STATISTICS``).

    A statistic object (e.g. ``GramHistogram(weight=10)``) is returned as it is.
    """
    if not isinstance(name, str) and callable(getattr(name, "describe", None)) and callable(getattr(name, "loss", None)):
        return name
    try:
        return STATISTICS[name]()
    except (KeyError, TypeError):
        raise ValueError(f"Unknown statistic {name!r}; choose one of {', '.join(STATISTICS)}.") from None


def blend(representations: Sequence[Representation], weights: Sequence[float]) -> Representation:
    """Weighted average of representations, sum_k w_k R_k / sum_k w_k (mixing styles).

    Two kinds of entries are mixed differently: an MMD target (``samples``, ``sample_weights``)
    becomes the weighted mixture of the styles' samples, whose kernel mean embedding is exactly
    the weighted average of theirs; sorted histograms (``sorted``) are averaged as quantile
    functions (resampled to the longest), which is the 1-D Wasserstein barycentre.
    """
    if len(representations) != len(weights):
        raise ValueError(f"{len(weights)} blend weights for {len(representations)} styles; give one per style.")
    total = float(sum(weights))
    if not math.isfinite(total) or total <= 0 or any(not w >= 0 for w in weights):
        raise ValueError(f"Blend weights must be non-negative with a positive sum, got {list(weights)}.")
    out: Representation = {}
    for key in representations[0]:
        values = [r[key] for r in representations]
        if key == "samples":  # MMD: the target is the mixture of the styles' feature distributions
            out[key] = torch.cat(values, dim=2)
        elif key == "sample_weights":
            out[key] = torch.cat([w / total * v for w, v in zip(weights, values)], dim=1)
        elif key == "sorted":  # histograms: average the quantile functions (1-D Wasserstein barycentre)
            count = max(v.shape[-1] for v in values)
            out[key] = sum(w * quantiles(v, count) for w, v in zip(weights, values)) / total
        else:
            out[key] = sum(w * v for w, v in zip(weights, values)) / total
    return out


def style_distances(features: Mapping[str, Tensor], targets: Mapping[str, Representation],
                    statistic: StyleStatistic) -> dict[str, Tensor]:
    """Per-layer style loss E_l for every layer in ``targets``."""
    return {layer: statistic.loss(features[layer], target) for layer, target in targets.items()}
