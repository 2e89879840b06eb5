"""Style statistics: what to remember of a style layer, how far another layer is from it, and how
several styles mix. Also the paper's content loss and the total-variation prior.

The paper's statistic is the Gram matrix; the mean and the mean with the covariance are the
homework's alternatives (their maximum-likelihood reading is in the notebook, section 5). All
three are computed from a layer's first and second moments (``moments.py``), so they can also be
restricted to a weighted region (``MomentStatistic.describe_weighted``, used by the masks). The
statistics that compare whole distributions (histograms, MMD) are in ``distributions.py``; every
statistic is registered by name in ``STATISTICS``.
"""

from __future__ import annotations

import functools
import math
from typing import Mapping, Protocol, Sequence, cast

from torch import Tensor

from .distributions import GramHistogram, MMDGaussian, MMDLinear, MMDPoly, average
from .moments import (Representation, feature_covariance, feature_mean, gram_over_positions, matrix_distance,
                      mean_distance, outer, weighted_moments)
from .wasserstein import GaussianW2, SlicedWasserstein


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
    """Total variation R = 1/M' sum_ij ((x_{i,j+1} - x_ij)^2 + (x_{i+1,j} - x_ij)^2)^(beta / 2).

    The regulariser of Mahendran and Vedaldi; beta = 1 is the classic isotropic TV (edges
    survive), beta = 2 penalises all gradients quadratically (smoother).

    Departs from their sum by the factor 1/M', M' = (H - 1)(W - 1) pixel pairs, for the reason the
    content loss divides by its positions: the style loss is a mean over positions, so with a sum
    one gamma would smooth a 512 px image four times as much as a 256 px one.

    Args:
        image: (B, C, H, W).
        exponent: beta > 0.

    Returns:
        Scalar: the mean over the (H - 1)(W - 1) positions, summed over batch and channels.
    """
    if exponent <= 0:
        raise ValueError(f"The total-variation exponent must be positive, got {exponent}.")
    dx = image[..., :-1, 1:] - image[..., :-1, :-1]
    dy = image[..., 1:, :-1] - image[..., :-1, :-1]
    squared = dx.pow(2) + dy.pow(2)
    positions = squared.shape[-1] * squared.shape[-2]
    if exponent == 2.0:
        return squared.sum() / positions
    return (squared + 1e-8).pow(exponent / 2).sum() / positions  # eps keeps the gradient finite at 0 for beta < 2


class StyleStatistic(Protocol):
    """A style descriptor: what to remember of a style layer, how far another layer is from it, and
    how several styles' descriptions mix."""

    name: str

    def describe(self, features: Tensor) -> Representation:
        """The representation of features (B, N, H, W)."""
        ...

    def loss(self, features: Tensor, target: Representation) -> Tensor:
        """Scalar distance between the features' representation and ``target``."""
        ...

    def blend(self, representations: Sequence[Representation], weights: Sequence[float]) -> Representation:
        """The target of several styles with weights w_k >= 0 (positive sum)."""
        ...

    # Optional: ``prepare(target) -> Representation``, the target side of ``loss`` computed once per
    # run (after ``blend``) instead of at every evaluation; ``prepared`` below calls it when present.


def prepared(statistic: StyleStatistic, target: Representation) -> Representation:
    """``target`` with its statistic's target-side work done once (``prepare``), when it has any."""
    prepare = getattr(statistic, "prepare", None)
    return target if prepare is None else prepare(target)


class MomentStatistic:
    """A statistic of a layer's mean and second moment, so it has a version restricted to a region.

    Subclasses give ``describe``, ``from_moments`` (the representation from G / M and mu) and
    ``distance`` between two representations; the loss is the distance of the description.
    """

    name: str

    def describe(self, features: Tensor) -> Representation:
        raise NotImplementedError

    def from_moments(self, second: Tensor, mean: Tensor) -> Representation:
        """The representation from second moments G / M (R, N, N) and means mu (R, N)."""
        raise NotImplementedError

    def distance(self, current: Representation, target: Representation) -> Tensor:
        """Scalar distance between two representations of this statistic."""
        raise NotImplementedError

    def loss(self, features: Tensor, target: Representation) -> Tensor:
        return self.distance(self.describe(features), target)

    def describe_weighted(self, features: Tensor, weights: Tensor) -> Representation:
        """The representation of each weighted region of features (1, N, H, W), weights (R, 1, H, W),
        stacked along the first dimension (``moments.weighted_moments``)."""
        second, mean, _ = weighted_moments(features, weights)
        return self.from_moments(second, mean)

    def blend(self, representations: Sequence[Representation], weights: Sequence[float]) -> Representation:
        """sum_k w_k R_k / sum_k w_k."""
        return average(representations, weights)


class Gram(MomentStatistic):
    """The paper's statistic: G / M, matched with E_l = 1/(4 N^2 M^2) sum (G - A)^2."""

    name = "gram"

    def describe(self, features: Tensor) -> Representation:
        return {"gram": gram_over_positions(features)}

    def from_moments(self, second: Tensor, mean: Tensor) -> Representation:
        return {"gram": second}

    def distance(self, current: Representation, target: Representation) -> Tensor:
        return matrix_distance(current["gram"], target["gram"])


class Mean(MomentStatistic):
    """Mean only, the model N(mu, sigma^2 I): ``mean_distance`` of mu. N numbers per layer."""

    name = "mean"

    def describe(self, features: Tensor) -> Representation:
        return {"mean": feature_mean(features)}

    def from_moments(self, second: Tensor, mean: Tensor) -> Representation:
        return {"mean": mean}

    def distance(self, current: Representation, target: Representation) -> Tensor:
        return mean_distance(current["mean"], target["mean"])


class MeanCovariance(MomentStatistic):
    """Mean and covariance, the model N(mu, Sigma): 1/(4 N^2) ||Sigma - Sigma'||^2 + ``mean_distance``.

    N + N(N+1)/2 numbers per layer, the parameters of a Gaussian N(mu, Sigma).
    """

    name = "mean_cov"

    def describe(self, features: Tensor) -> Representation:
        return {"mean": feature_mean(features), "cov": feature_covariance(features)}

    def from_moments(self, second: Tensor, mean: Tensor) -> Representation:
        return {"mean": mean, "cov": second - outer(mean)}

    def distance(self, current: Representation, target: Representation) -> Tensor:
        return matrix_distance(current["cov"], target["cov"]) + mean_distance(current["mean"], target["mean"])


STATISTICS: dict[str, type | functools.partial] = {
    "gram": Gram, "mean": Mean, "mean_cov": MeanCovariance, "gram_histogram": GramHistogram,
    "mmd_linear": MMDLinear, "mmd_poly": MMDPoly, "mmd_gaussian": MMDGaussian,
    "sliced_wasserstein": SlicedWasserstein, "gaussian_w2": GaussianW2,
}
"""Every statistic by name, each called with no arguments for its defaults (``get_statistic``)."""


def get_statistic(name: "str | StyleStatistic") -> StyleStatistic:
    """The statistic called ``name`` with its default parameters (a key of ``STATISTICS``).

    A statistic object (e.g. ``GramHistogram(weight=10)``) is returned as it is.
    """
    if not isinstance(name, str) and callable(getattr(name, "describe", None)) and callable(getattr(name, "loss", None)):
        return name
    try:
        return STATISTICS[cast(str, name)]()  # any other object raises the KeyError or TypeError below
    except (KeyError, TypeError):
        raise ValueError(f"Unknown statistic {name!r}; choose one of {', '.join(STATISTICS)}.") from None


def blend(representations: Sequence[Representation], weights: Sequence[float],
          statistic: StyleStatistic | None = None) -> Representation:
    """The target of several styles mixed with weights w_k (mixing styles): ``statistic.blend``.

    Without a statistic, or for one without a ``blend`` method, the weighted average
    sum_k w_k R_k / sum_k w_k of every entry. The weights are checked here: one per style,
    non-negative, with a positive sum.
    """
    if len(representations) != len(weights):
        raise ValueError(f"{len(weights)} blend weights for {len(representations)} styles; give one per style.")
    total = float(sum(weights))
    if not math.isfinite(total) or total <= 0 or any(not w >= 0 for w in weights):
        raise ValueError(f"Blend weights must be non-negative with a positive sum, got {list(weights)}.")
    combine = getattr(statistic, "blend", None)
    return average(representations, weights) if combine is None else combine(representations, weights)


def style_distances(features: Mapping[str, Tensor], targets: Mapping[str, Representation],
                    statistic: StyleStatistic) -> dict[str, Tensor]:
    """Per-layer style loss E_l for every layer in ``targets``."""
    return {layer: statistic.loss(features[layer], target) for layer, target in targets.items()}
