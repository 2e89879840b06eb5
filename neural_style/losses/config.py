"""What a loss compares and how much each part counts: the layers, their weights w_l, and one
frozen, checked configuration.

    L(x) = alpha * sum_c L_content(x, p; c) + beta * sum_l w_l E_l(x, a) + gamma * TV_q(x)

over the content layers c and the style layers l, with E_l the distance of ``statistic``
(``statistics.STATISTICS``). Two kinds of weights meet in a run and are kept apart by name: the
layer weights w_l live here; the blend weights that mix several styles into one target are an
argument of ``synthesize`` (``blend_weights``), since they belong to the style images.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence, cast

from ..core.checks import check_positive, check_weight
from ..net.vgg import VGGFeatures
from .statistics import StyleStatistic, get_statistic

CONTENT_LAYERS = ("conv4_2",)
STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")


TYPICAL_STYLE_LOSS: dict[str, dict[str, float]] = {
    "vgg19": {"conv1_1": 5.75e5, "conv2_1": 4.11e7, "conv3_1": 2.68e7, "conv4_1": 1.53e9, "conv5_1": 9.39e3},
}
"""E-bar_l per network (``BackboneInfo.name``, average pooling, weights as trained): the geometric
mean of the unweighted Gram loss E_l at the start of runs on the project's images at 512 px
(``benchmarks/layer_shares.py`` measures it)."""

CONV1_1_FACTOR = 0.1
"""conv1_1's weight relative to its calibrated one: at an equal share, conv1_1 (3 x 3 pixels)
pulls in the painting's pixel-scale colour statistics, which total variation then fights into a
regular lattice of coloured dots in flat areas (``benchmarks/README.md``)."""


def style_layer_weights(backbone: VGGFeatures | None, style_layers: Sequence[str],
                        layer_weights: Sequence[float] | None) -> list[float]:
    """Checked w_l, one per style layer; by default w_l = (f_l / E-bar_l) / sum_k (f_k / E-bar_k),
    f = ``CONV1_1_FACTOR`` for conv1_1 and 1 for the other layers.

    ``backbone`` (for its name and channel counts) may be None when ``layer_weights`` are given.

    Departs from the paper's equal w_l = 1/5: with the network as trained, the E_l of the five
    layers differ by five orders of magnitude at the start of a run, so equal weights leave
    conv4_1 with nearly all of the style loss and conv1_1 and conv5_1 with next to nothing
    (Gatys et al. rescaled their network's filters instead; ``net.rescaled``). Dividing each E_l
    by its typical size at the start, E-bar_l (``TYPICAL_STYLE_LOSS``), gives every layer a
    comparable share of the loss where a run begins, so the large-scale
    structure of conv4_1 and conv5_1 shapes the image as well as the strokes of conv2_1 and
    conv3_1; conv1_1 keeps a tenth of its share (``CONV1_1_FACTOR``). A network
    without a calibration (random, torchvision, max pooling, the rescaled VGG) gets
    ``inverse_square_weights``.
    """
    if not style_layers:
        raise ValueError("Give at least one style layer (style_layers is empty).")
    if layer_weights is None:
        net = cast(VGGFeatures, backbone)
        info = net.info
        typical = TYPICAL_STYLE_LOSS.get(info.name, {}) if info.pooling == "avg" and not info.normalized else {}
        if not all(layer in typical for layer in style_layers):
            return inverse_square_weights(net, style_layers)
        inverse = [(CONV1_1_FACTOR if layer == "conv1_1" else 1.0) / typical[layer] for layer in style_layers]
        layer_weights = [w / sum(inverse) for w in inverse]
    weights = list(layer_weights)
    if len(weights) != len(style_layers):
        raise ValueError(f"{len(weights)} layer weights for {len(style_layers)} style layers; give one per layer.")
    return [check_weight(f"layer weight {i} ({layer})", w) for i, (layer, w) in enumerate(zip(style_layers, weights))]


def inverse_square_weights(backbone: VGGFeatures, style_layers: Sequence[str]) -> list[float]:
    """w_l = N_l^-2 / sum_k N_k^-2 (N_l channels): the weights of Gatys's code for its rescaled network,
    the default of networks without a calibration and of the feed-forward texture networks."""
    inverse_squares = [backbone.channels(layer) ** -2.0 for layer in style_layers]
    return [w / sum(inverse_squares) for w in inverse_squares]


@dataclass(frozen=True)
class LossConfig:
    """The loss of a run, checked when it is made.

    Attributes:
        content_layers, style_layers: layer names (paper: conv4_2; conv1_1 ... conv5_1).
        layer_weights: w_l, one per style layer; None = ``style_layer_weights``' default
            (proportional to 1 / E-bar_l), filled in by ``for_backbone``.
        content_weight, style_weight, tv_weight: alpha, beta and gamma (each finite and >= 0).
        tv_exponent: q of the total-variation regulariser (> 0).
        statistic: a key of ``statistics.STATISTICS`` or a statistic object.
        style_statistic: the statistic object (``statistics.get_statistic(statistic)``).

    Raises:
        ValueError: a negative or non-finite weight, a layer weight count that does not match
            the style layers, no style layer with a style weight above 0, or an unknown statistic.
    """

    content_layers: tuple[str, ...] = CONTENT_LAYERS
    style_layers: tuple[str, ...] = STYLE_LAYERS
    layer_weights: tuple[float, ...] | None = None
    content_weight: float = 1.0
    style_weight: float = 2e4
    tv_weight: float = 1e8
    tv_exponent: float = 2.0
    statistic: str | StyleStatistic = "gram"
    style_statistic: StyleStatistic = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        checked: dict[str, Any] = {
            "content_layers": tuple(self.content_layers), "style_layers": tuple(self.style_layers),
            **{name: check_weight(name, getattr(self, name))
               for name in ("content_weight", "style_weight", "tv_weight")},
            "tv_exponent": check_positive("tv_exponent", self.tv_exponent),
            "style_statistic": get_statistic(self.statistic),
        }
        if self.layer_weights is not None:  # checked now; the default needs the network's N_l
            checked["layer_weights"] = tuple(style_layer_weights(None, checked["style_layers"], self.layer_weights))
        elif not checked["style_layers"] and checked["style_weight"] > 0:
            style_layer_weights(None, (), None)  # raises: no style layer
        for name, value in checked.items():
            object.__setattr__(self, name, value)  # frozen: the checked values replace the given ones

    @classmethod
    def from_keywords(cls, keywords: Mapping[str, Any]) -> LossConfig:
        """The configuration of those ``synthesize`` keywords that are its fields (others ignored)."""
        names = [f.name for f in dataclasses.fields(cls) if f.init]
        return cls(**{name: keywords[name] for name in names if name in keywords})

    def for_backbone(self, backbone: VGGFeatures) -> LossConfig:
        """This configuration with every layer checked against ``backbone`` (``UnknownLayerError``)
        and the default layer weights filled in from its channel counts."""
        backbone.check_layers([*self.content_layers, *self.style_layers])
        if self.layer_weights is not None or not self.style_layers:
            return self
        return dataclasses.replace(self, layer_weights=tuple(style_layer_weights(backbone, self.style_layers, None)))

    def without_content(self) -> LossConfig:
        """The texture version: no content layers, alpha = 0."""
        return dataclasses.replace(self, content_layers=(), content_weight=0.0)

    def record(self) -> dict[str, Any]:
        """The run's parameters, as plain values: lists for the layers and weights, the statistic's
        key (or ``repr`` of a statistic object)."""
        return {
            "statistic": self.statistic if isinstance(self.statistic, str) else repr(self.statistic),
            "content_layers": list(self.content_layers), "style_layers": list(self.style_layers),
            "layer_weights": None if self.layer_weights is None else list(self.layer_weights),
            "content_weight": self.content_weight, "style_weight": self.style_weight,
            "tv_weight": self.tv_weight, "tv_exponent": self.tv_exponent,
        }


def style_only(style_layers: Sequence[str] = STYLE_LAYERS, layer_weights: Sequence[float] | None = None,
               statistic: str | StyleStatistic = "gram") -> LossConfig:
    """sum_l w_l E_l alone (alpha = gamma = 0, beta = 1): the yardstick of ``style_distance``."""
    return LossConfig(content_layers=(), style_layers=tuple(style_layers),
                      layer_weights=None if layer_weights is None else tuple(layer_weights),
                      content_weight=0.0, style_weight=1.0, statistic=statistic)


PAPER = LossConfig(layer_weights=(0.2,) * len(STYLE_LAYERS), content_weight=1.0, style_weight=1e3)
"""The paper's weights (equal w_l = 1/5, alpha / beta = 1e-3), the benchmarks' common yardstick."""
