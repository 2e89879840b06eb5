"""Image synthesis by optimisation: style transfer and texture synthesis (Gatys et al.).

The image x is optimised to minimise

    L(x) = alpha * sum_c L_content(x, p; c) + beta * sum_l w_l E_l(x, a) + gamma * TV(x)

over content layers c and style layers l. With no content image (alpha = 0) this is the texture
synthesis of Gatys et al. 2015. The loop never prints: it calls ``callback(StepInfo)`` after
every evaluation of L, and the caller decides how to show progress.
"""

from __future__ import annotations

import math
import numbers
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Sequence

import torch
from torch import Tensor
from torch.nn import functional as F

from . import colour
from .backbones import VGGFeatures
from .checks import check_image, check_positive, check_seed
from .devices import Precision, autocast_dtype, prepare_for_speed
from .images import resize, save_image
from .layers import CONTENT_LAYERS, STYLE_LAYERS, style_layer_weights  # noqa: F401 (re-exported)
from .loss_config import LossConfig, style_only
from .masks import MaskedStatistic, check_masks, masked_style_targets
from .memory import check_memory
from .schedule import (MIN_STYLE_SIDE, SMALLEST_SCALE, Schedule, coarse_to_fine, run_sizes,  # noqa: F401
                       scaled_size, stages_for)
from .optimise import (BUDGET, OptimizerName, StepInfo, StopKind, SynthesisNotice, check_run,  # noqa: F401
                       optimise, warn_if_early)
from .statistics import Representation, StyleStatistic, blend, content_loss, total_variation

Init = Literal["auto", "content", "noise", "style"]


@dataclass
class SynthesisResult:
    """The best image of a run (lowest loss seen), clamped to [0, 1], with its history.

    Attributes:
        image: (1, 3, H, W) in [0, 1], on the CPU.
        history: one dict of loss terms per evaluation (``total``, ``content``, ``style``,
            ``tv`` and ``style/<layer>``).
        best_step: the evaluation that produced ``image`` (1-based; 0 = the initial image).
        stopped: ``""`` when the run used its whole budget of evaluations, else why it ended
            early, as a sentence (``stop`` says which kind of end it was).
        seconds: wall time of the optimisation.
        params: every parameter of the run, for the PNG metadata.
        stop: how the run ended: ``budget`` (all evaluations used), ``converged`` (the optimiser
            found nothing left to improve), ``line_search`` (L-BFGS found no decreasing step),
            ``not_finite``, ``callback`` or ``interrupted`` (see ``optimise.Stop``).
    """

    image: Tensor
    history: list[dict[str, float]]
    best_step: int
    stopped: str
    seconds: float
    params: dict[str, Any] = field(default_factory=dict)
    stop: StopKind = "budget"

    @property
    def best_loss(self) -> float:
        return self.history[self.best_step - 1]["total"] if self.best_step else math.nan

    def save(self, path: str, *, overwrite: bool = False, **extra: Any) -> None:
        """Write the image as PNG with ``params`` (and ``extra``) in its metadata.

        An existing file raises FileExistsError unless ``overwrite`` is True.
        """
        save_image(self.image, path, {**self.params, "final_loss": self.best_loss, **extra}, overwrite=overwrite)


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
            statistic = MaskedStatistic(statistic)
            style_targets = masked_style_targets(backbone, styles, masks, style_layers, statistic)
        else:
            style_targets = {layer: blend([statistic.describe(f[layer].float()) for f in per_style], blend_weights, statistic)
                             for layer in style_layers}
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


def _check_size_pair(size: Any) -> None:
    """ValueError unless ``size`` is (height, width), two positive integers."""
    if not (isinstance(size, (tuple, list)) and len(size) == 2
            and all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1 for s in size)):
        raise ValueError(f"size must be (height, width) in pixels, two positive integers; got {size!r}.")


def _check_sizes(backbone: VGGFeatures, style_sizes: list[tuple[int, int]], with_content: bool,
                 size: tuple[int, int], layers: Sequence[str]) -> None:
    """Every image, and the output ``size`` (H, W), must be large enough for the deepest layer."""
    need, layer = backbone.min_size(layers)
    named = [(f"Style image {i}", s) for i, s in enumerate(style_sizes)]
    named.append(("The content image" if with_content else "The output size", size))
    for name, (h, w) in named:
        if min(h, w) < need:
            raise ValueError(
                f"{name} is {h}x{w} px, too small for layer {layer}, which needs at least {need} px on each "
                f"side ({need.bit_length() - 1} poolings before it); load it with a larger size or drop the "
                "deepest layers.")


def initial_image(init: str | Tensor, content: Tensor | None, styles: list[Tensor], size: tuple[int, int],
                  generator: torch.Generator) -> Tensor:
    """The start of a run, (1, 3, *size): ``content`` (a copy), ``style`` (the first style resized),
    ``noise`` (uniform in [0, 1] from ``generator``) or a given (1, 3, h, w) image resized."""
    if isinstance(init, Tensor):
        if init.dim() != 4 or init.shape[:2] != (1, 3) or not torch.isfinite(init).all():
            raise ValueError(f"An initial image must be a finite (1, 3, H, W) tensor, got shape {tuple(init.shape)}.")
        return _resized(init.cpu(), size)
    if init == "content":
        if content is None:
            raise ValueError("init='content' needs a content image; use init='noise' for a texture.")
        return content.clone()
    if init == "style":
        return _resized(styles[0], size)
    if init == "noise":
        return torch.rand((1, 3, *size), generator=generator)
    raise ValueError(f"Unknown init {init!r}; choose 'content', 'noise' or 'style'.")


def _resized(image: Tensor, size: tuple[int, int]) -> Tensor:
    """Bicubic resize of (1, 3, H, W) to ``size``, clamped to [0, 1]; antialiased when shrinking."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image.clone()
    return F.interpolate(image, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)


def synthesize(
    backbone: VGGFeatures,
    *,
    style: Tensor | Sequence[Tensor],
    content: Tensor | None = None,
    blend_weights: Sequence[float] | None = None,
    size: tuple[int, int] | None = None,
    content_layers: Sequence[str] = CONTENT_LAYERS,
    style_layers: Sequence[str] = STYLE_LAYERS,
    layer_weights: Sequence[float] | None = None,
    content_weight: float = LossConfig.content_weight,
    style_weight: float = LossConfig.style_weight,
    tv_weight: float = LossConfig.tv_weight,
    tv_exponent: float = LossConfig.tv_exponent,
    statistic: str | StyleStatistic = LossConfig.statistic,
    init: Init | Tensor = "auto",
    optimizer: OptimizerName = "lbfgs",
    num_steps: int = 300,
    lr: float | None = None,
    seed: int = 0,
    callback: Callable[[StepInfo], bool | None] | None = None,
    precision: Precision = "auto",
    scales: Literal["auto", "single"] | Schedule = "single",
    preserve_colour: colour.ColourMode = "none",
    style_scale: float | None = None,
    masks: Sequence[Tensor] | None = None,
) -> SynthesisResult:
    """Optimise an image so its features match a content image and one or more styles.

    Args:
        backbone: feature extractor (its device is used for the run).
        style: one style image or a list, each (1, 3, H, W) in [0, 1].
        content: content image (1, 3, H, W); None synthesises a texture (content weight unused).
        blend_weights: one weight per style; the style target is the weighted average of the
            styles' representations (default: equal weights).
        size: (H, W) of a texture; default the first style's size. Ignored with a content image.
        content_layers, style_layers: layer names (paper: conv4_2; conv1_1 ... conv5_1).
        layer_weights: w_l per style layer (default proportional to 1 / N_l^2, summing to 1; the
            paper: 1 / number of style layers; see ``style_layer_weights``).
        content_weight, style_weight: alpha and beta. alpha / beta = 1/30 by default; the paper's
            1e-3 and 1e-4 belong to its summed content loss and equal w_l, not to these losses.
        tv_weight, tv_exponent: weight and exponent of the total-variation regulariser.
        statistic: ``gram`` (paper), ``mean``, ``mean_cov``, ``gram_histogram``, ``mmd_linear``,
            ``mmd_poly``, ``mmd_gaussian`` (any key of ``statistics.STATISTICS``), or a statistic
            object with non-default parameters such as ``GramHistogram(weight=10)``.
        init: ``content``, ``noise`` or ``style``; ``auto`` = content if given, else noise; or an
            image (1, 3, h, w) to start from (resized to the first scale).
        optimizer: ``lbfgs`` (L-BFGS-B on the backbone's device, pixels bounded to [0, 1]; see
            ``lbfgsb.py``), ``scipy-lbfgsb`` (scipy's L-BFGS-B, float64 on the CPU, for comparison)
            or ``adam`` (projected onto [0, 1]).
        num_steps: number of loss evaluations over all scales (for L-BFGS, line-search
            evaluations count). L-BFGS may end a scale earlier when it converges or its line
            search fails; the result's ``stop`` and ``stopped`` say so.
        lr: Adam's step size (default 0.02); L-BFGS-B's line search needs none.
        seed: seed of the noise initialisation.
        callback: called with a ``StepInfo`` after every evaluation; returning True stops the run.
        precision: dtype of the backbone: ``auto`` (bf16 on CPUs with native bf16, fp32 on GPUs,
            where bf16 was not faster; see ``devices.autocast_dtype``), ``fp32``, ``bf16`` or
            ``fp16`` (CUDA). Losses stay float32.
        scales: coarse-to-fine schedule as (long side, evaluations) pairs ending at the image's
            long side; the result of each scale, upsampled, starts the next, and the content and
            style images are resized by the same factor. ``single`` (default) = all ``num_steps``
            at full size, the paper's procedure; ``auto`` = ``coarse_to_fine(long side,
            num_steps)``. An explicit schedule replaces ``num_steps``. Coarse scales settle the
            large-scale layout cheaply, but an upsampled image lacks the fine texture the shallow
            layers ask for, so they do not shorten the work at full size (benchmarks/speed.py).
        preserve_colour: keep the content's colours (Gatys et al. 2017): ``luminance`` runs the
            transfer on grey luminance images (the style's luminance given the content's mean and
            standard deviation) and puts the result's luminance under the content's chroma
            (YIQ); the loss history and callback images are those of the grey run. ``match``
            first recolours each style to the content's RGB mean and covariance. Both need a
            content image.
        style_scale: None uses the style images as given; a number s resizes each style
            (bicubic, antialiased) so its longer side is s times the output's longer side (the
            content's, or ``size`` for a texture): larger s, larger brush strokes. Load the
            style at least that large, since upscaling adds no detail.
        masks: spatial control, one (H, W) mask per style (bool or float in [0, 1], at the output's
            size): style r is matched only inside mask r (guided Gram matrices, ``masks.py``).
            Replaces blending, so ``blend_weights`` must be None. Coarse scales use the masks
            resized like the images.

    Returns:
        The best image seen at the final scale (lowest loss), its loss history and the run's
        parameters. An interrupt (KeyboardInterrupt) or a non-finite loss ends the run early and
        still returns the best finite image so far, upsampled to the requested size; so does
        L-BFGS when it converges or its line search fails at the last scale (at a coarser
        scale the next one starts from its image). ``stop`` and ``stopped`` say how it ended.

    Raises:
        ValueError: a bad parameter, a NaN pixel, or an image (or ``size``) smaller than the
            deepest layer needs (``2**poolings`` px per side: 16 px for conv5_1).
        UnknownLayerError: a layer name the backbone does not have.
        InsufficientMemoryError: the estimated memory of the run (``memory.estimate_bytes``)
            exceeds what the device has; the message gives the largest size that fits.
    """
    styles, content = _checked_images(style, content)
    if isinstance(init, Tensor):
        init = check_image(init, "The initial image")
    elif init not in ("auto", "content", "noise", "style"):
        raise ValueError(f"Unknown init {init!r}; choose 'content', 'noise' or 'style'.")
    if masks is not None and blend_weights is not None:
        raise ValueError("blend_weights mix styles everywhere, masks put each style in its own region; "
                         "give one or the other (with masks, scale a region's mask to weaken its style).")
    weights = list(blend_weights) if blend_weights is not None else [1.0] * len(styles)
    loss = LossConfig(content_layers=tuple(content_layers), style_layers=tuple(style_layers),
                      layer_weights=None if layer_weights is None else tuple(layer_weights),
                      content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight,
                      tv_exponent=tv_exponent, statistic=statistic).for_backbone(backbone)
    if content is None:
        loss = loss.without_content()
    seed = check_seed(seed)
    num_steps, lr = _checked_run(optimizer, num_steps, lr)
    device = next(backbone.parameters()).device
    dtype = autocast_dtype(device, precision)
    used = [*loss.style_layers, *loss.content_layers]
    size, style_sizes = _checked_sizes(backbone, styles, content, size, style_scale, used)
    check_memory(backbone, size, used, optimizer=optimizer,
                 target_sizes=[*style_sizes, *([] if content is None else [size])])
    if style_scale is not None:  # resized only now that the memory check has passed
        styles = [resize(s, target) for s, target in zip(styles, style_sizes)]
    content, styles, restore_colour = colour.preserve_colour(preserve_colour, content, styles)
    long_side = max(size)
    stages = stages_for(scales, size, styles, num_steps, need=backbone.min_size(used)[0])
    if init == "auto":
        init = "content" if content is not None else "noise"
    mask_stack = None if masks is None else check_masks(masks, num_styles=len(styles), size=size)
    prepare_for_speed(backbone)

    params: dict[str, Any] = {
        "backbone": backbone.info.as_dict(), "size": list(size), **loss.record(), "blend_weights": weights,
        "init": "image" if isinstance(init, Tensor) else init, "optimizer": optimizer,
        "num_steps": sum(steps for _, steps in stages), "lr": lr, "seed": seed,
        "precision": str(dtype).removeprefix("torch.") if dtype else "float32", "scales": stages,
        "preserve_colour": preserve_colour, "style_scale": style_scale,
        "style_sizes": [list(s.shape[-2:]) for s in styles],
        "masks": None if mask_stack is None else [round(float(m.mean()), 4) for m in mask_stack],
    }
    generator = torch.Generator().manual_seed(seed)
    total = params["num_steps"]
    history: list[dict[str, float]] = []
    image, best_step, stop = None, 0, BUDGET
    start = time.perf_counter()
    for side, steps in stages:
        factor = side / long_side
        stage_size = scaled_size(size, factor)
        stage_styles = [_resized(s.cpu(), scaled_size(s.shape[-2:], factor)) for s in styles]
        stage_content = None if content is None else _resized(content.cpu(), stage_size)
        objective = Objective.from_images(
            backbone, loss, styles=[s.to(device) for s in stage_styles],
            content=None if stage_content is None else stage_content.to(device), blend_weights=weights,
            autocast=dtype, masks=None if mask_stack is None else _resized(mask_stack, stage_size).to(device))
        image = (initial_image(init, stage_content, stage_styles, stage_size, generator) if image is None
                 else _resized(image, stage_size))
        outcome = optimise(objective, image.to(device), optimizer=optimizer, num_steps=steps, lr=lr,
                           callback=callback, history=history, total_steps=total, fields={"scale": float(side)})
        image, best_step = outcome.image, outcome.best_step
        stop = stop.followed_by(outcome.stop, f"at {side} px" if len(stages) > 1 else "")
        if outcome.stop.breaks:
            break
    seconds = time.perf_counter() - start
    warn_if_early(stop, "Synthesis", len(history))
    return SynthesisResult(restore_colour(_resized(image, size)), history, best_step, stop.message, seconds,
                           params, stop.kind)


def _checked_images(style: Tensor | Sequence[Tensor], content: Tensor | None) -> tuple[list[Tensor], Tensor | None]:
    """The style images as a list and the content image, each checked (``checks.check_image``)."""
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    if not styles:
        raise ValueError("Give at least one style image.")
    styles = [check_image(s, f"Style image {i}") for i, s in enumerate(styles)]
    return styles, None if content is None else check_image(content, "The content image")


def _checked_run(optimizer: str, num_steps: int, lr: float | None) -> tuple[int, float | None]:
    """``check_run``, and a notice when ``lr`` is given to an optimiser that does not use it."""
    if lr is not None and optimizer != "adam":
        warnings.warn(f"lr={lr!r} is only used by optimizer='adam'; {optimizer} ignores it.", SynthesisNotice,
                      stacklevel=3)
    return check_run(optimizer, num_steps, lr)


def _checked_sizes(backbone: VGGFeatures, styles: list[Tensor], content: Tensor | None, size: Any,
                   style_scale: float | None, layers: Sequence[str]) -> tuple[tuple[int, int], list[tuple[int, int]]]:
    """(H, W) of the output and of each style as the run will use them (``schedule.run_sizes``),
    computed without resizing anything and checked against the deepest layer."""
    if content is None and size is not None:
        _check_size_pair(size)
    if style_scale is not None:
        style_scale = check_positive("style_scale", style_scale)
    out, style_sizes = run_sizes([tuple(s.shape[-2:]) for s in styles],
                                 content_size=None if content is None else tuple(content.shape[-2:]),
                                 size=None if size is None else tuple(int(s) for s in size), style_scale=style_scale)
    _check_sizes(backbone, style_sizes, content is not None, out, layers)
    return out, style_sizes


@torch.no_grad()
def style_distance(backbone: VGGFeatures, image: Tensor, style: Tensor, *, statistic: str = "gram",
                   style_layers: Sequence[str] = STYLE_LAYERS,
                   layer_weights: Sequence[float] | None = None) -> float:
    """sum_l w_l E_l between ``image`` and ``style`` (both (1, 3, H, W)) under ``statistic``.

    Used to judge a result by a statistic it was not optimised for.
    """
    device = next(backbone.parameters()).device
    objective = Objective.from_images(backbone, style_only(style_layers, layer_weights, statistic),
                                      styles=[style.to(device)], content=None)
    return float(objective(image.to(device))["style"])
