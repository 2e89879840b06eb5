"""The layers the losses read, and the weight w_l of each style layer."""

from __future__ import annotations

from typing import Sequence

from .backbones import VGGFeatures
from .checks import check_weight

CONTENT_LAYERS = ("conv4_2",)
STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")


def style_layer_weights(backbone: VGGFeatures | None, style_layers: Sequence[str],
                        layer_weights: Sequence[float] | None) -> list[float]:
    """Checked w_l, one per style layer; default w_l = N_l^-2 / sum_k N_k^-2 (N_l channels).

    ``backbone`` (for N_l) may be None when ``layer_weights`` are given.

    Departs from the paper's equal w_l = 1/5, as Gatys's own code (1e3 / N_l^2) and neural-style
    (Gram divided by N_l M_l) do: with equal weights conv4_1 owns 90-98% of the style loss and
    its gradient (``benchmarks/layer_shares.py``), and paintings whose deep statistics lie close
    to the photo's (Turner's shipwreck) leave the photo almost unchanged. 1/N_l^2 gives conv1_1
    64 times the weight of conv4_1, so the brush strokes of the shallow layers come through.
    """
    if not style_layers:
        raise ValueError("Give at least one style layer (style_layers is empty).")
    if layer_weights is None:
        inverse_squares = [backbone.channels(layer) ** -2.0 for layer in style_layers]
        layer_weights = [w / sum(inverse_squares) for w in inverse_squares]
    weights = list(layer_weights)
    if len(weights) != len(style_layers):
        raise ValueError(f"{len(weights)} layer weights for {len(style_layers)} style layers; give one per layer.")
    return [check_weight(f"layer weight {i} ({layer})", w) for i, (layer, w) in enumerate(zip(style_layers, weights))]
