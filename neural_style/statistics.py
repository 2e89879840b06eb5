"""Style descriptors and the losses that match them.

Notation (Gatys et al.): a layer l has N_l channels and M_l = H_l * W_l positions; its
activations F^l are an (N_l, M_l) matrix, one column per position. Tensors here keep a batch
dimension: ``features`` has shape (B, N, H, W).

Three statistics of the M column vectors f_1 ... f_M of a layer:

* Gram matrix    G = F F^T = sum_k f_k f_k^T                   (N, N)   -- the paper
* mean           mu = (1/M) sum_k f_k                          (N,)
* covariance     Sigma = (1/M) sum_k (f_k - mu)(f_k - mu)^T     (N, N)   = Gram of F - mu, over M

They are tied by G / M = Sigma + mu mu^T, and every style loss below is written in those
units: E = 1/(4 N^2) * sum of squared differences of N x N matrices, which for the Gram matrix
is exactly the paper's E_l = 1/(4 N^2 M^2) sum_ij (G_ij - A_ij)^2. The mean enters as mu mu^T,
the same term through which it enters G / M, so the three losses share one style weight.
"""

from __future__ import annotations

import math
from typing import Mapping, Protocol, Sequence

import torch
from torch import Tensor


def _flatten(features: Tensor) -> Tensor:
    """(B, N, H, W) -> (B, N, M) with M = H * W."""
    if features.dim() != 4:
        raise ValueError(f"Expected features of shape (B, N, H, W), got {tuple(features.shape)}.")
    return features.flatten(2)


def gram_matrix(features: Tensor) -> Tensor:
    """Gram matrix G_ij = sum_k F_ik F_jk of the paper (not normalised).

    Args:
        features: (B, N, H, W).

    Returns:
        (B, N, N).
    """
    flat = _flatten(features)
    return flat @ flat.transpose(1, 2)


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
    centred = flat - flat.mean(dim=2, keepdim=True)
    return centred @ centred.transpose(1, 2) / flat.shape[2]


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
    """The paper's content loss L = 1/2 sum_ij (F_ij - P_ij)^2.

    Args:
        features: F of the synthesised image, (B, N, H, W).
        target: P of the content image, same shape.

    Returns:
        Scalar.
    """
    return 0.5 * (features - target).pow(2).sum()


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


def _outer(mean: Tensor) -> Tensor:
    """(B, N) -> (B, N, N): mu mu^T."""
    return mean.unsqueeze(2) * mean.unsqueeze(1)


def _matrix_distance(a: Tensor, b: Tensor) -> Tensor:
    """1/(4 N^2) sum_ij (a_ij - b_ij)^2 for (B, N, N) matrices."""
    return (a - b).pow(2).sum() / (4.0 * a.shape[-1] ** 2)


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
        return _matrix_distance(self.describe(features)["gram"], target["gram"])


class Mean:
    """Mean only: matches mu through mu mu^T (its share of G / M). C numbers per layer."""

    name = "mean"

    def describe(self, features: Tensor) -> Representation:
        return {"mean": feature_mean(features)}

    def loss(self, features: Tensor, target: Representation) -> Tensor:
        return _matrix_distance(_outer(feature_mean(features)), _outer(target["mean"]))


class MeanCovariance:
    """Mean and covariance: 1/(4 N^2) (||Sigma - Sigma'||^2 + ||mu mu^T - mu' mu'^T||^2).

    C + C(C+1)/2 numbers per layer, the parameters of a Gaussian N(mu, Sigma).
    """

    name = "mean_cov"

    def describe(self, features: Tensor) -> Representation:
        return {"mean": feature_mean(features), "cov": feature_covariance(features)}

    def loss(self, features: Tensor, target: Representation) -> Tensor:
        current = self.describe(features)
        return (_matrix_distance(current["cov"], target["cov"])
                + _matrix_distance(_outer(current["mean"]), _outer(target["mean"])))


STATISTICS: dict[str, type] = {cls.name: cls for cls in (Gram, Mean, MeanCovariance)}


def get_statistic(name: str) -> StyleStatistic:
    """The statistic called ``name`` (``gram``, ``mean``, ``mean_cov``)."""
    try:
        return STATISTICS[name]()
    except KeyError:
        raise ValueError(f"Unknown statistic {name!r}; choose one of {', '.join(STATISTICS)}.") from None


def blend(representations: Sequence[Representation], weights: Sequence[float]) -> Representation:
    """Weighted average of representations, sum_k w_k R_k / sum_k w_k (mixing styles)."""
    if len(representations) != len(weights):
        raise ValueError(f"{len(weights)} blend weights for {len(representations)} styles; give one per style.")
    total = float(sum(weights))
    if not math.isfinite(total) or total <= 0 or any(not w >= 0 for w in weights):
        raise ValueError(f"Blend weights must be non-negative with a positive sum, got {list(weights)}.")
    keys = representations[0].keys()
    return {k: sum(w * r[k] for w, r in zip(weights, representations)) / total for k in keys}


def style_distances(features: Mapping[str, Tensor], targets: Mapping[str, Representation],
                    statistic: StyleStatistic) -> dict[str, Tensor]:
    """Per-layer style loss E_l for every layer in ``targets``."""
    return {layer: statistic.loss(features[layer], target) for layer, target in targets.items()}
