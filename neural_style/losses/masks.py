"""Spatial control: one mask per region of the output, each region matched to its own style.

The guided Gram matrix of Gatys et al. 2017 ("Controlling perceptual factors in neural style
transfer"): with a mask m_r >= 0 over the M_l positions of layer l,

    G_r^l = F^l diag(m_r^l) F^l^T / M_{l,r},    M_{l,r} = sum_k m_{r,k}^l,

i.e. the Gram matrix over the region's positions only, divided by the number of positions it
covers (for a binary mask exactly the paper's G / M of the cropped region). The same weights give
the region's mean mu_r = F m_r / M_{l,r} and covariance Sigma_r = G_r - mu_r mu_r^T, so every
statistic of ``statistics.py`` (gram, mean, mean_cov) has a masked version.

A mask is given at the output's size and brought to layer l by the chain of 2x2 average poolings
the network applies before l (VGG's 3x3 convolutions are padded and keep the size), so each
downsampled mask value is the fraction of its receptive cell inside the region and the sizes
match the activations exactly. The style images are described whole (no mask on them).

The layer's loss sums the regions weighted by their share of the layer, a_r = M_{l,r} / M_l:

    E_l = sum_r a_r * d(S_r(x), S(style_r)),

where d is the statistic's own distance (``matrix_distance``, ``mean_distance``). With a_r the
gradient on each position has the scale of the unmasked loss whatever the region's size, and one
mask of ones gives exactly the unmasked E_l.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..net.vgg import VGGFeatures
from .moments import Representation
from .statistics import STATISTICS, MomentStatistic, StyleStatistic

MASKABLE = tuple(name for name, make in STATISTICS.items() if isinstance(make, type) and issubclass(make, MomentStatistic))


def check_maskable(statistic: StyleStatistic) -> MomentStatistic:
    """``statistic``, which must have a version restricted to a region (a ``MomentStatistic``), or ValueError."""
    if not isinstance(statistic, MomentStatistic):
        raise ValueError(f"Masks work with the statistics {', '.join(MASKABLE)}, not {statistic.name!r}.")
    return statistic


def check_masks(masks: Sequence[Tensor], *, num_styles: int, size: tuple[int, int]) -> Tensor:
    """Validate masks and stack them as float weights.

    Args:
        masks: one mask per style, each (H, W) (or (1, H, W), (1, 1, H, W)), bool or float in [0, 1].
        num_styles: the number of style images.
        size: (H, W) of the output image.

    Returns:
        (R, 1, H, W) float32 with R = ``num_styles``.
    """
    masks = [masks] if isinstance(masks, Tensor) else list(masks)
    if len(masks) != num_styles:
        raise ValueError(f"{len(masks)} masks for {num_styles} style images; give one mask per style.")
    stacked = []
    for i, mask in enumerate(masks):
        if not isinstance(mask, Tensor):
            raise TypeError(f"Mask {i} is a {type(mask).__name__}; give a torch tensor of shape (H, W).")
        while mask.dim() > 2 and mask.shape[0] == 1:
            mask = mask[0]
        if mask.dim() != 2:
            raise ValueError(f"Mask {i} has shape {tuple(masks[i].shape)}; give one (H, W) mask per style.")
        if tuple(mask.shape) != tuple(size):
            raise ValueError(f"Mask {i} is {mask.shape[0]}x{mask.shape[1]} px but the output image is "
                             f"{size[0]}x{size[1]} px; make the masks at the content image's size (or `size`).")
        mask = mask.float()
        if not torch.isfinite(mask).all() or mask.min() < 0 or mask.max() > 1:
            raise ValueError(f"Mask {i} has values outside [0, 1]; give a bool mask or weights in [0, 1].")
        if mask.sum() == 0:
            raise ValueError(f"Mask {i} is empty (all zeros): style {i} would have nowhere to go.")
        stacked.append(mask)
    return torch.stack(stacked)[:, None]


def downsample(masks: Tensor, num_poolings: int) -> Tensor:
    """Apply ``num_poolings`` 2x2 average poolings (floor sizes, as the network does) to (R, 1, H, W)."""
    for _ in range(num_poolings):
        masks = torch.nn.functional.avg_pool2d(masks, 2, 2)
    return masks


class MaskedStatistic:
    """A statistic matched region by region; the target carries the layer's downsampled masks.

    The target of one layer is the per-style representations stacked along the first dimension
    (``{"gram": (R, N, N)}``, ...) plus ``"masks"``, the masks at the layer's size (R, 1, H_l, W_l).
    """

    def __init__(self, base: StyleStatistic) -> None:
        self.base = check_maskable(base)
        self.name = f"masked_{base.name}"

    def target(self, style_representations: Sequence[Representation], layer_masks: Tensor) -> Representation:
        """Stack the styles' (whole-image) representations with the layer's masks."""
        keys = style_representations[0].keys()
        return {**{k: torch.cat([r[k] for r in style_representations]) for k in keys}, "masks": layer_masks}

    def loss(self, features: Tensor, target: Representation) -> Tensor:
        """E_l = sum_r a_r d(S_r(x), S(style_r)) with a_r = M_{l,r} / M_l (module docstring)."""
        masks = target["masks"]
        if masks.shape[-2:] != features.shape[-2:]:
            raise ValueError(f"Masks of {tuple(masks.shape[-2:])} for features of {tuple(features.shape[-2:])}; "
                             "the output image must have the size the masks were made for.")
        current = self.base.describe_weighted(features, masks)
        share = masks.flatten(1).sum(1) / masks[0].numel()
        total = features.new_zeros(())
        for r in range(masks.shape[0]):
            region = {key: value[r:r + 1] for key, value in current.items()}
            total = total + share[r] * self.base.distance(region, {key: target[key][r:r + 1] for key in current})
        return total


@torch.no_grad()
def masked_style_targets(backbone: VGGFeatures, styles: Sequence[Tensor], masks: Tensor,
                         style_layers: Sequence[str], statistic: MaskedStatistic) -> dict[str, Representation]:
    """``{layer: target}`` for ``MaskedStatistic.loss``: each style described whole, masks downsampled.

    Args:
        backbone: the feature extractor.
        styles: R style images (1, 3, H, W) on the backbone's device.
        masks: (R, 1, H, W) from ``check_masks``, at the output's size.
        style_layers: layer names.
        statistic: the masked statistic.
    """
    per_style = [backbone(s, style_layers) for s in styles]
    masks = masks.to(next(backbone.parameters()).device)
    return {layer: statistic.target([statistic.base.describe(f[layer].float()) for f in per_style],
                                    downsample(masks, backbone.poolings_before(layer)))
            for layer in style_layers}
