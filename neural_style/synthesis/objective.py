"""The objective of image synthesis: style transfer and texture synthesis (Gatys et al.).

The image x is optimised to minimise

    L(x) = alpha * sum_c L_content(x, p; c) + beta * sum_l w_l E_l(x, a) + gamma * TV(x)

over content layers c and style layers l. With no content image (alpha = 0) this is the texture
synthesis of Gatys et al. 2015. ``Objective`` computes the targets once and, at every evaluation,
L(x) with its terms.
"""

from __future__ import annotations

from typing import Sequence, cast

import torch
from torch import Tensor
from torch.nn import functional as F

from ..core.checks import check_image
from ..losses.config import STYLE_LAYERS, LossConfig, style_only
from ..losses.masks import MaskedStatistic, masked_style_targets
from ..losses.moments import Representation
from ..losses.statistics import StyleStatistic, blend, content_loss, prepared, total_variation
from ..net.vgg import VGGFeatures, check_backbone


class Objective:
    """L(x) of the module docstring, with the targets computed once.

    Args:
        backbone: the feature extractor.
        loss: layers, weights and statistic (``LossConfig``, with its layer weights filled in).
        style_targets: ``{layer: representation}`` (already blended over styles).
        content_targets: ``{layer: P^l}`` of shape (1, N, H, W); empty for textures.
        statistic: how style layers are compared (default ``loss.style_statistic``; the masks
            wrap it in ``masks.MaskedStatistic``).
        autocast: dtype the backbone runs in (bf16 or fp16 autocast), None for float32. The
            statistics and losses are computed in float32 either way.
    """

    def __init__(self, backbone: VGGFeatures, loss: LossConfig, *, style_targets: dict[str, Representation],
                 content_targets: dict[str, Tensor], statistic: StyleStatistic | None = None,
                 autocast: torch.dtype | None = None) -> None:
        backbone = check_backbone(backbone)
        if loss.layer_weights is None:
            loss = loss.for_backbone(backbone)
        self.backbone, self.loss, self.autocast = backbone, loss, autocast
        self.statistic = loss.style_statistic if statistic is None else statistic
        self.style_targets, self.content_targets = style_targets, content_targets
        self.layer_weights = dict(zip(loss.style_layers, loss.layer_weights or ()))
        self.layers = list(dict.fromkeys([*style_targets, *content_targets]))

    @classmethod
    @torch.no_grad()
    def from_images(cls, backbone: VGGFeatures, loss: LossConfig, *, styles: Sequence[Tensor],
                    content: Tensor | None, blend_weights: Sequence[float] | None = None,
                    autocast: torch.dtype | None = None, masks: Tensor | None = None) -> "Objective":
        """Compute the targets once: blended style representations and content features P^l.

        Images are (1, 3, H, W) in [0, 1] on the backbone's device; ``blend_weights`` default to
        equal weights. Without a content image the content term is dropped (``without_content``)
        after the content layers are checked, so a misspelt name fails here rather than silently.
        With ``masks`` (R, 1, H, W) (see ``masks.check_masks``) style r is matched in region r
        instead of blending the styles (``masks.MaskedStatistic``).
        """
        backbone = check_backbone(backbone)
        loss = loss.for_backbone(backbone)
        if content is None:
            loss = loss.without_content()
        blend_weights = [1.0] * len(styles) if blend_weights is None else list(blend_weights)
        statistic, style_layers = loss.style_statistic, loss.style_layers
        # the targets go through the network in the precision the image will, so that its rounding
        # is the same on both sides (the content loss of the content image is 0); statistics in fp32
        with _autocast(backbone, autocast):
            per_style = [_features(backbone, s, style_layers) for s in styles] if masks is None else []
            content_features = {} if content is None else _features(backbone, content, loss.content_layers)
        if masks is not None:
            masked = MaskedStatistic(statistic)
            statistic = cast(StyleStatistic, masked)  # the objective only calls its loss
            style_targets = masked_style_targets(backbone, styles, masks, style_layers, masked)
        else:
            style_targets = {layer: prepared(statistic, blend([statistic.describe(f[layer].float()) for f in per_style],
                                                              blend_weights, statistic)) for layer in style_layers}
        content_targets = {layer: f.float() for layer, f in content_features.items()}
        return cls(backbone, loss, style_targets=style_targets, content_targets=content_targets,
                   statistic=statistic, autocast=autocast)

    def __call__(self, image: Tensor) -> dict[str, Tensor]:
        """Loss terms for ``image`` (1, 3, H, W): ``total`` and its parts (unweighted)."""
        with _autocast(self.backbone, self.autocast):
            features = _features(self.backbone, image, self.layers)
        terms: dict[str, Tensor] = {}
        zero = image.new_zeros(())
        for layer, target in self.style_targets.items():
            terms[f"style/{layer}"] = self.statistic.loss(features[layer].float(), target)
        terms["style"] = sum((self.layer_weights[l] * terms[f"style/{l}"] for l in self.style_targets), zero)
        terms["content"] = sum((content_loss(features[l].float(), p) for l, p in self.content_targets.items()), zero)
        loss = self.loss
        terms["tv"] = total_variation(image, loss.tv_exponent) if loss.tv_weight else zero
        terms["total"] = (loss.content_weight * terms["content"] + loss.style_weight * terms["style"]
                          + loss.tv_weight * terms["tv"])
        return terms


def _autocast(backbone: VGGFeatures, dtype: torch.dtype | None) -> torch.autocast:
    """Autocast to ``dtype`` on the backbone's device; a no-op context for None (float32)."""
    device_type = next(backbone.parameters()).device.type
    return torch.autocast(device_type, dtype=dtype or torch.float32, enabled=dtype is not None)


def _features(backbone: VGGFeatures, image: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
    """The backbone's activations, computed in the channels-last layout (see devices.prepare_for_speed)."""
    return backbone(image.contiguous(memory_format=torch.channels_last), layers)


def initial_image(init: str | Tensor, content: Tensor | None, styles: list[Tensor], size: tuple[int, int],
                  generator: torch.Generator) -> Tensor:
    """The start of a run, (1, 3, *size): ``content`` (a copy), ``style`` (the first style resized),
    ``noise`` (uniform in [0, 1] from ``generator``) or a given (1, 3, h, w) image resized."""
    if isinstance(init, Tensor):
        if init.dim() != 4 or init.shape[:2] != (1, 3) or not torch.isfinite(init).all():
            raise ValueError(f"An initial image must be a finite (1, 3, H, W) tensor, got shape {tuple(init.shape)}.")
        return resample(init.cpu(), size)
    if init == "content":
        if content is None:
            raise ValueError("init='content' needs a content image; use init='noise' for a texture.")
        return content.clone()
    if init == "style":
        return resample(styles[0], size)
    if init == "noise":
        return torch.rand((1, 3, *size), generator=generator)
    raise ValueError(f"Unknown init {init!r}; choose 'content', 'noise' or 'style'.")


def resample(image: Tensor, size: tuple[int, int]) -> Tensor:
    """Bicubic resize of (1, 3, H, W) to ``size``, clamped to [0, 1]; antialiased when shrinking."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image.clone()
    return F.interpolate(image, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)


@torch.no_grad()
def style_distance(backbone: VGGFeatures, image: Tensor, style: Tensor, *, statistic: str = "gram",
                   style_layers: Sequence[str] = STYLE_LAYERS,
                   layer_weights: Sequence[float] | None = None) -> float:
    """sum_l w_l E_l between ``image`` and ``style`` (both (1, 3, H, W)) under ``statistic``.

    Used to judge a result by a statistic it was not optimised for. Both images are checked as
    ``synthesize`` checks its images (``checks.check_image``): float, finite, in [0, 1].
    """
    backbone = check_backbone(backbone)
    image, style = check_image(image, "The image"), check_image(style, "The style image")
    device = next(backbone.parameters()).device
    objective = Objective.from_images(backbone, style_only(style_layers, layer_weights, statistic),
                                      styles=[style.to(device)], content=None)
    return float(objective(image.to(device))["style"])
