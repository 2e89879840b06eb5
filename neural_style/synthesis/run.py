"""Image synthesis by optimisation: style transfer and texture synthesis (Gatys et al.).

``synthesize`` plans a run from the images' sizes and its settings (``plan.py``), then runs it:
the images are prepared (resized, recoloured, masked), and each stage of the schedule optimises
the image against an ``Objective`` (``objective.py``), the next stage starting from the previous
one's result, upsampled. The loop never prints: it calls ``callback(StepInfo)`` after every
evaluation of the loss, and the caller decides how to show progress.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from typing import Literal, Sequence, cast

import torch
from torch import Tensor

from ..core.checks import check_image
from ..core.devices import Precision, prepare_for_speed
from ..core.images import resize
from ..losses.config import CONTENT_LAYERS, STYLE_LAYERS, LossConfig
from ..losses.masks import check_masks
from ..losses.statistics import StyleStatistic
from ..net.vgg import VGGFeatures, check_backbone
from ..optim.optimizers import OPTIMIZERS, OptimizerName, get_optimizer, optimise
from ..optim.record import BUDGET, Callback, RunResult, SynthesisNotice, warn_if_early
from .colour import ColourMode
from .colour import preserve_colour as colour_preserver
from .objective import Objective, initial_image, resample
from .plan import Init, SynthesisPlan, plan_synthesis
from .schedule import Schedule, scaled_size


@dataclass
class SynthesisResult(RunResult):
    """The best image of a run (lowest loss seen), clamped to [0, 1], with its history.

    Attributes (besides ``RunResult``'s):
        history: one dict of loss terms per evaluation (``total``, ``content``, ``style``,
            ``tv`` and ``style/<layer>``).
        best_step: the evaluation that produced ``image`` (1-based; 0 = the initial image).
        stop: ``budget`` (all evaluations used), ``converged`` (the optimiser found nothing left
            to improve), ``line_search`` (L-BFGS found no decreasing step), ``not_finite``,
            ``callback`` or ``interrupted`` (see ``optim.record.Stop``).
    """

    best_step: int = 0

    @property
    def best_loss(self) -> float:
        return self.history[self.best_step - 1]["total"] if self.best_step else math.nan

    @property
    def final_loss(self) -> float:
        return self.best_loss


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
    callback: Callback | None = None,
    precision: Precision = "auto",
    scales: Literal["auto", "single"] | Schedule = "single",
    preserve_colour: ColourMode = "none",
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
        layer_weights: w_l per style layer (default: each layer's E_l divided by its typical size
            at the start of a run, summing to 1; the paper: 1 / number of style layers; see
            ``style_layer_weights``).
        content_weight, style_weight: alpha and beta. alpha / beta = 1 / 2e4 by default; the
            paper's 1e-3 and 1e-4 belong to its summed content loss and equal w_l, not to these losses.
        tv_weight, tv_exponent: weight and exponent of the total-variation regulariser (a mean
            over pixels, so one gamma serves every size; 0 = off).
        statistic: ``gram`` (paper), ``mean``, ``mean_cov``, ``gram_histogram``, ``mmd_linear``,
            ``mmd_poly``, ``mmd_gaussian``, ``sliced_wasserstein``, ``gaussian_w2`` (any key of
            ``statistics.STATISTICS``), or a statistic object with non-default parameters such as
            ``GramHistogram(weight=10)``.
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
        callback: called with a ``StepInfo`` after every evaluation; returning True (or a sentence
            saying why) stops the run.
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
        TypeError: ``backbone`` is not a ``VGGFeatures`` (a name, a torchvision model: use ``load_backbone``).
        InsufficientMemoryError: the estimated memory of the run (``memory.estimate_bytes``)
            exceeds what the device has; the message gives the largest size that fits.
    """
    backbone = check_backbone(backbone)
    styles, content = _checked_images(style, content)
    start = check_image(init, "The initial image") if isinstance(init, Tensor) else None
    if lr is not None and not get_optimizer(optimizer).takes_lr:
        users = " or ".join(repr(o.name) for o in OPTIMIZERS.values() if o.takes_lr)
        warnings.warn(f"lr={lr!r} is only used by optimizer={users}; {optimizer} ignores it.", SynthesisNotice,
                      stacklevel=2)
    plan = plan_synthesis(
        backbone, style_sizes=[cast("tuple[int, int]", tuple(s.shape[-2:])) for s in styles],
        content_size=None if content is None else cast("tuple[int, int]", tuple(content.shape[-2:])),
        blend_weights=blend_weights,
        size=size, content_layers=content_layers, style_layers=style_layers, layer_weights=layer_weights,
        content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight, tv_exponent=tv_exponent,
        statistic=statistic, init="image" if start is not None else init, optimizer=optimizer,
        num_steps=num_steps, lr=lr, seed=seed, precision=precision, scales=scales, preserve_colour=preserve_colour,
        style_scale=style_scale, num_masks=None if masks is None else len(masks))
    return run_plan(plan, backbone, styles=styles, content=content, start=start, masks=masks, callback=callback)


def run_plan(plan: SynthesisPlan, backbone: VGGFeatures, *, styles: list[Tensor], content: Tensor | None,
             start: Tensor | None = None, masks: Sequence[Tensor] | None = None,
             callback: Callback | None = None) -> SynthesisResult:
    """Run ``plan`` on checked images: each stage optimises the previous stage's image, upsampled.

    Args:
        plan: from ``plan_synthesis`` with these images' sizes.
        styles, content: (1, 3, H, W) in [0, 1] at their own size (resized here as planned).
        start: the start image of ``init="image"``.
        masks: one (H, W) mask per style (``losses.masks.check_masks``).
        callback: called with a ``StepInfo`` after every evaluation; True stops the run.
    """
    settings = plan.settings
    if settings.style_scale is not None:  # resized only now that the plan's memory check has passed
        styles = [resize(s, target) for s, target in zip(styles, plan.style_sizes)]
    content, styles, restore_colour = colour_preserver(settings.preserve_colour, content, styles)
    mask_stack = None if masks is None else check_masks(masks, num_styles=len(styles), size=plan.size)
    prepare_for_speed(backbone)
    params = plan.record(backbone, None if mask_stack is None else [round(float(m.mean()), 4) for m in mask_stack])
    generator = torch.Generator().manual_seed(settings.seed)
    history: list[dict[str, float]] = []
    image, best_step, stop = None, 0, BUDGET
    began = time.perf_counter()
    for side, steps in plan.stages:
        factor = side / max(plan.size)
        stage_size = scaled_size(plan.size, factor)
        stage_styles = [resample(s.cpu(), scaled_size(s.shape[-2:], factor)) for s in styles]
        stage_content = None if content is None else resample(content.cpu(), stage_size)
        objective = _stage_objective(plan, backbone, stage_styles, stage_content,
                                     None if mask_stack is None else resample(mask_stack, stage_size))
        image = (initial_image(start if start is not None else settings.init, stage_content, stage_styles, stage_size,
                               generator) if image is None else resample(image, stage_size))
        outcome = optimise(objective, image.to(_device(backbone)), optimizer=settings.optimizer, num_steps=steps,
                           lr=settings.lr, callback=callback, history=history, total_steps=plan.num_steps,
                           fields={"scale": float(side)})
        image, best_step = outcome.image, outcome.best_step
        stop = stop.followed_by(outcome.stop, f"at {side} px" if len(plan.stages) > 1 else "")
        if outcome.stop.breaks:
            break
    seconds = time.perf_counter() - began
    warn_if_early(stop, "Synthesis", len(history))
    # every plan has at least one stage, so the loop has set the image
    return SynthesisResult(restore_colour(resample(cast(Tensor, image), plan.size)), history, stop, seconds, params,
                           best_step)


def _device(backbone: VGGFeatures) -> torch.device:
    return next(backbone.parameters()).device


def _stage_objective(plan: SynthesisPlan, backbone: VGGFeatures, styles: list[Tensor], content: Tensor | None,
                     masks: Tensor | None) -> Objective:
    """The objective of one stage, its images moved to the backbone's device."""
    device, settings = _device(backbone), plan.settings
    return Objective.from_images(
        backbone, settings.loss, styles=[s.to(device) for s in styles],
        content=None if content is None else content.to(device), blend_weights=settings.blend_weights,
        autocast=settings.dtype, masks=None if masks is None else masks.to(device))


def _checked_images(style: Tensor | Sequence[Tensor], content: Tensor | None) -> tuple[list[Tensor], Tensor | None]:
    """The style images as a list and the content image, each checked (``checks.check_image``)."""
    styles: list[Tensor] = list(style) if isinstance(style, (list, tuple)) else [cast(Tensor, style)]
    if not styles:
        raise ValueError("Give at least one style image.")
    styles = [check_image(s, f"Style image {i}") for i, s in enumerate(styles)]
    return styles, None if content is None else check_image(content, "The content image")
