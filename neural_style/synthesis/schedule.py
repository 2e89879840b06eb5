"""Coarse-to-fine schedules: how a run's evaluations are spread over image scales.

A schedule is a list of (long side in px, evaluations) pairs, coarsest first, ending at the
result's long side. ``synthesize`` runs each stage at its size and upsamples the result to start
the next one.
"""

from __future__ import annotations

import math
from typing import Sequence, cast

from ..core.images import fitted_size

Schedule = Sequence[tuple[int, int]]
SMALLEST_SCALE = 128  # long side of the coarsest scale of the default schedule
MIN_STYLE_SIDE = 16  # px after style_scale: conv5_1 is below four poolings


def run_sizes(style_sizes: Sequence[tuple[int, int]], *, content_size: tuple[int, int] | None = None,
              size: tuple[int, int] | None = None, style_scale: float | None = None
              ) -> tuple[tuple[int, int], list[tuple[int, int]]]:
    """(H, W) of a run's result and of each style image, computed before anything is resized.

    The result has the content's size, else ``size``, else the first style's. With ``style_scale``
    s each style is resized so its longer side is s times the result's (ValueError when a style's
    shorter side would fall below ``MIN_STYLE_SIDE``).
    """
    out = cast("tuple[int, int]", tuple(content_size or size or style_sizes[0]))
    if style_scale is None:
        return out, [cast("tuple[int, int]", tuple(s)) for s in style_sizes]
    long_side = max(1, round(float(style_scale) * max(out)))
    scaled = [fitted_size(cast("tuple[int, int]", tuple(s)), long_side) for s in style_sizes]
    for i, (h, w) in enumerate(scaled):
        if min(h, w) < MIN_STYLE_SIDE:
            raise ValueError(f"style_scale={style_scale} makes style image {i} {h}x{w} px; its shorter side must be "
                             f"at least {MIN_STYLE_SIDE} px. Use a larger style_scale.")
    return out, scaled


def coarse_to_fine(long_side: int, num_steps: int, *, smallest: int = SMALLEST_SCALE) -> list[tuple[int, int]]:
    """The schedule of ``scales="auto"``: (long side, evaluations) per stage, ending at ``long_side``.

    The long side is halved while it stays at least ``smallest`` pixels. The evaluations are
    split so that each stage gets twice as many as the next finer one (a stage at half the size
    costs a quarter as much): for 512 px and 300 evaluations, (128, 171), (256, 85), (512, 44).
    Images smaller than ``2 * smallest`` run at a single scale.
    """
    sides = [long_side]
    while sides[0] // 2 >= smallest:
        sides.insert(0, sides[0] // 2)
    shares = [2 ** (len(sides) - 1 - i) for i in range(len(sides))]
    steps = [max(1, num_steps * share // sum(shares)) for share in shares]
    steps[-1] = max(1, num_steps - sum(steps[:-1]))
    return list(zip(sides, steps))


def scaled_size(size: Sequence[int], factor: float) -> tuple[int, int]:
    """(height, width) ``size`` times ``factor``, rounded, at least 1 px each."""
    return max(1, round(size[0] * factor)), max(1, round(size[1] * factor))


def stages_for(scales: str | Schedule, size: tuple[int, int], style_sizes: Sequence[tuple[int, int]],
               num_steps: int, *, need: int) -> list[tuple[int, int]]:
    """(long side, evaluations) per scale for ``scales``; ``need`` = the smallest side the layers take."""
    long_side = max(size)
    if scales == "single":
        return [(long_side, num_steps)]
    if scales == "auto":
        # every image must stay large enough for the deepest layer at the coarsest scale
        shortest = min(min(size), *(min(s) for s in style_sizes))
        smallest = max(SMALLEST_SCALE, math.ceil(need * long_side / shortest))
        return coarse_to_fine(long_side, num_steps, smallest=smallest)
    stages = [tuple(stage) for stage in scales]
    if not stages or any(len(s) != 2 or not all(isinstance(v, int) and v >= 1 for v in s) for s in stages):
        raise ValueError(f"scales must be 'auto', 'single' or a list of (long side, evaluations) pairs of "
                         f"positive integers, got {scales!r}.")
    sides = [cast(int, side) for side, _ in stages]  # checked just above
    if sides != sorted(set(sides)) or sides[-1] != long_side:
        raise ValueError(f"The long sides of the scales must increase and end at the image's long side "
                         f"({long_side} px), got {sides}.")
    return stages  # type: ignore[return-value]
