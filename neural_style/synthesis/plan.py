"""A synthesis planned from sizes and settings alone, before any image is resized or any network runs.

``plan_synthesis`` checks every setting of a run and works out what it will do: the loss
configuration, the (H, W) of the result and of each style, the coarse-to-fine stages, the
precision, the memory it needs (refused when the device lacks it) and the parameters recorded in
the result. It needs only the images' sizes and the network's architecture (a ``skeleton`` will
do), so ``synthesize`` and the command's checks before a run share this one implementation.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Literal, Sequence, cast

import torch

from ..core.checks import check_positive, check_seed, check_weight
from ..core.devices import Precision, autocast_dtype
from ..losses.config import LossConfig
from ..losses.masks import check_maskable
from ..losses.statistics import StyleStatistic
from ..net.vgg import VGGFeatures, check_backbone
from ..optim.optimizers import OptimizerName, check_run
from .colour import ColourMode, check_colour_mode
from .memory import LIBRARY_HINT, check_memory
from .schedule import Schedule, run_sizes, stages_for

Init = Literal["auto", "content", "noise", "style"]
SIZE_HINT = "load it with a larger size or drop the deepest layers"


@dataclass(frozen=True)
class RunSettings:
    """The settings of a run, checked; everything but the sizes.

    Attributes:
        loss: the loss configuration, checked against the network (without content for a texture).
        init: ``content``, ``noise``, ``style`` or ``image`` (a given start image).
        optimizer, num_steps, lr, seed: as given, checked (``lr`` filled in for an optimiser that
            takes one).
        dtype: the network's autocast dtype (None: float32).
        blend_weights: one weight per style.
        scales, preserve_colour, style_scale: as given, checked.
    """

    loss: LossConfig
    init: str
    optimizer: OptimizerName
    num_steps: int
    lr: float | None
    seed: int
    dtype: torch.dtype | None
    blend_weights: tuple[float, ...]
    scales: str | Schedule
    preserve_colour: ColourMode
    style_scale: float | None


@dataclass(frozen=True)
class SynthesisPlan:
    """What a run will do: its checked settings and every size.

    Attributes:
        settings: the checked settings.
        size: (H, W) of the result.
        style_sizes: (H, W) of each style image as the run uses it (after ``style_scale``).
        stages: (long side, evaluations) per scale, coarsest first, ending at the result's long side.
        memory_bytes: the estimated peak memory of the run.
    """

    settings: RunSettings
    size: tuple[int, int]
    style_sizes: tuple[tuple[int, int], ...]
    stages: tuple[tuple[int, int], ...]
    memory_bytes: int

    @property
    def num_steps(self) -> int:
        """Evaluations over all stages."""
        return sum(steps for _, steps in self.stages)

    def record(self, backbone: VGGFeatures, mask_means: Sequence[float] | None = None) -> dict[str, Any]:
        """The run's parameters as the result records them (PNG metadata)."""
        s = self.settings
        return {
            "backbone": backbone.info.as_dict(), "size": list(self.size), **s.loss.record(),
            "blend_weights": list(s.blend_weights), "init": s.init, "optimizer": s.optimizer,
            "num_steps": self.num_steps, "lr": s.lr, "seed": s.seed,
            "precision": str(s.dtype).removeprefix("torch.") if s.dtype else "float32",
            "scales": list(self.stages), "preserve_colour": s.preserve_colour,
            "style_scale": s.style_scale, "style_sizes": [list(size) for size in self.style_sizes],
            "masks": None if mask_means is None else list(mask_means),
        }


def plan_synthesis(backbone: VGGFeatures, *, style_sizes: Sequence[tuple[int, int]],
                   content_size: tuple[int, int] | None, size: tuple[int, int] | None,
                   device: torch.device | None = None, smaller: str = LIBRARY_HINT, size_hint: str = SIZE_HINT,
                   **settings: Any) -> SynthesisPlan:
    """Check the settings of ``synthesize`` (``settings``: the same names and meanings) and plan the
    run for images of these sizes: ``check_settings``, then ``plan_sizes``."""
    backbone = check_backbone(backbone)
    checked = check_settings(backbone, num_styles=len(style_sizes), with_content=content_size is not None,
                             device=device, **settings)
    return plan_sizes(backbone, checked, style_sizes=style_sizes, content_size=content_size, size=size,
                      device=device, smaller=smaller, size_hint=size_hint)


def check_settings(backbone: VGGFeatures, *, num_styles: int, with_content: bool,
                   blend_weights: Sequence[float] | None, content_layers: Sequence[str],
                   style_layers: Sequence[str], layer_weights: Sequence[float] | None, content_weight: float,
                   style_weight: float, tv_weight: float, tv_exponent: float, statistic: str | StyleStatistic,
                   init: str, optimizer: str, num_steps: int, lr: float | None, seed: int, precision: Precision,
                   scales: str | Schedule, preserve_colour: str, style_scale: float | None, num_masks: int | None,
                   device: torch.device | None = None) -> RunSettings:
    """Every setting of ``synthesize`` checked, before any size is known.

    Args:
        backbone: the network, or a ``skeleton`` of its architecture (then give ``device``).
        num_styles, with_content: how many style images, and whether there is a content image.
        init: as ``synthesize``'s, or ``image`` for a given start image.
        num_masks: how many masks are given (None: no masks).
        device: where the run will happen (default: the backbone's).
        The others: as ``synthesize``'s.
    """
    backbone = check_backbone(backbone)
    if init not in ("auto", "content", "noise", "style", "image"):
        raise ValueError(f"Unknown init {init!r}; choose 'content', 'noise' or 'style'.")
    weights = _blend_weights(blend_weights, num_masks, num_styles)
    loss = LossConfig(content_layers=tuple(content_layers), style_layers=tuple(style_layers),
                      layer_weights=None if layer_weights is None else tuple(layer_weights),
                      content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight,
                      tv_exponent=tv_exponent, statistic=statistic).for_backbone(backbone)
    if not with_content:
        loss = loss.without_content()
    if num_masks is not None:
        check_maskable(loss.style_statistic)
    seed = check_seed(seed)
    num_steps, lr = check_run(optimizer, num_steps, lr)
    device = next(backbone.parameters()).device if device is None else torch.device(device)
    dtype = autocast_dtype(device, precision)
    check_colour_mode(preserve_colour)
    if style_scale is not None:
        style_scale = check_positive("style_scale", style_scale)
    if init == "auto":
        init = "content" if with_content else "noise"
    return RunSettings(loss, init, optimizer, num_steps, lr, seed, dtype, tuple(weights),  # type: ignore[arg-type]
                       scales, preserve_colour, style_scale)  # type: ignore[arg-type]


def plan_sizes(backbone: VGGFeatures, settings: RunSettings, *, style_sizes: Sequence[tuple[int, int]],
               content_size: tuple[int, int] | None, size: Any = None, device: torch.device | None = None,
               smaller: str = LIBRARY_HINT, size_hint: str = SIZE_HINT) -> SynthesisPlan:
    """The sizes of a run with ``settings``: result, styles and stages, each checked against the
    deepest layer, and the memory they need checked against ``device`` (default: the backbone's).

    ``smaller`` and ``size_hint`` say how the caller's user asks for smaller images (memory) and
    larger ones (a layer's minimum size); the command names its own options.
    """
    loss = settings.loss
    used = [*loss.style_layers, *loss.content_layers]
    out, scaled = _sizes(backbone, style_sizes, content_size, size, settings.style_scale, used, size_hint)
    memory = check_memory(backbone, out, used, optimizer=settings.optimizer, device=device, smaller=smaller,
                          target_sizes=[*scaled, *([] if content_size is None else [out])])
    stages = stages_for(settings.scales, out, scaled, settings.num_steps, need=backbone.min_size(used)[0])
    return SynthesisPlan(settings, out, tuple(scaled), tuple(stages), memory)


def _blend_weights(blend_weights: Sequence[float] | None, num_masks: int | None, num_styles: int) -> list[float]:
    """One weight per style (default: equal), or ValueError; masks and blend weights exclude each other.

    Each weight is a finite number >= 0 (Python, numpy, a 0-dim tensor; not a string, not a bool)
    and their sum is positive: the style target is their weighted average."""
    if num_masks is not None and blend_weights is not None:
        raise ValueError("blend_weights mix styles everywhere, masks put each style in its own region; "
                         "give one or the other (with masks, scale a region's mask to weaken its style).")
    if num_masks is not None and num_masks != num_styles:
        raise ValueError(f"{num_masks} masks for {num_styles} style images; give one mask per style.")
    if blend_weights is None:
        return [1.0] * num_styles
    if isinstance(blend_weights, (str, bytes)) or not hasattr(blend_weights, "__len__"):
        raise ValueError(f"blend_weights must be a list of numbers, one per style; got {blend_weights!r}.")
    if len(blend_weights) != num_styles:
        raise ValueError(f"{len(blend_weights)} blend weights for {num_styles} styles; give one per style.")
    weights = [check_weight(f"blend weight {i}", w) for i, w in enumerate(blend_weights)]
    if not sum(weights) > 0:
        raise ValueError(f"Blend weights must have a positive sum, got {weights}; give at least one style a weight > 0.")
    return weights


def _sizes(backbone: VGGFeatures, style_sizes: Sequence[tuple[int, int]], content_size: tuple[int, int] | None,
           size: Any, style_scale: float | None, layers: Sequence[str], hint: str
           ) -> tuple[tuple[int, int], list[tuple[int, int]]]:
    """(H, W) of the result and of each style as the run will use them (``schedule.run_sizes``),
    each checked against the deepest layer."""
    if content_size is None and size is not None:
        if not (isinstance(size, (tuple, list)) and len(size) == 2
                and all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and cast(Any, s) >= 1 for s in size)):
            raise ValueError(f"size must be (height, width) in pixels, two positive integers; got {size!r}.")
        size = tuple(int(s) for s in size)
    out, scaled = run_sizes([cast("tuple[int, int]", tuple(s)) for s in style_sizes], content_size=content_size, size=size,
                            style_scale=style_scale)
    named = [*((f"Style image {i}", s) for i, s in enumerate(scaled)),
             ("The content image" if content_size is not None else "The output size", out)]
    for name, shape in named:
        backbone.check_fits(name, shape, layers, hint)
    return out, scaled
