"""The options of ``synthesize`` that the front ends offer, read from the library itself.

``SYNTHESIS_OPTIONS`` lists every keyword the command line exposes (one ``Option`` each: flag,
help, kind); ``synthesize_defaults`` and ``literal_choices`` read the defaults and the menus
(the values of a ``Literal`` annotation) from ``synthesize``'s signature, so neither the
command's help nor the panel's controls can drift from the code.
"""

from __future__ import annotations

import argparse
import inspect
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..losses.statistics import STATISTICS
from ..optim.optimizers import OPTIMIZERS
from ..synthesis import run as synthesis


def parse_scales(text: str) -> str | list[tuple[int, int]]:
    """``auto``, ``single``, or a schedule ``SIDE:STEPS,SIDE:STEPS`` -> [(side, steps), ...]."""
    if text in ("auto", "single"):
        return text
    try:
        return [(int(side), int(steps)) for side, steps in (stage.split(":") for stage in text.split(","))]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not 'auto', 'single' or a schedule like 128:100,256:200 (long side:evaluations)") from None


@dataclass(frozen=True)
class Option:
    """One keyword of ``synthesize`` on the command line: adding an option is adding one of these.

    ``flag`` defaults to ``--`` plus the keyword with dashes; the default shown in the help is
    ``synthesize``'s own. ``choices`` may be a callable so the list is read when the parser is
    built (new statistics appear by themselves); without it, a keyword annotated with a
    ``Literal`` gets the Literal's values. ``kind=bool`` makes a ``--x/--no-x`` switch. An entry
    whose keyword ``synthesize`` does not (yet) take is left out of the parser.
    """

    keyword: str
    help: str
    kind: Callable[[str], Any] | type = float
    flag: str = ""
    nargs: str | None = None
    metavar: str | None = None
    choices: Sequence[str] | Callable[[], Sequence[str]] | None = None


SYNTHESIS_OPTIONS: tuple[Option, ...] = (
    Option("num_steps", "loss evaluations (L-BFGS line-search evaluations count)", int, flag="--steps",
           metavar="N"),
    Option("blend_weights", "one weight per style: the style target is their weighted average",
           float, flag="--blend", nargs="+", metavar="W"),
    Option("content_weight", "alpha, weight of the content loss", metavar="ALPHA"),
    Option("style_weight", "beta, weight of the style loss (alpha/beta = 1/2e4 at the defaults)", metavar="BETA"),
    Option("content_layers", "layers whose features the result must keep", str, nargs="+", metavar="LAYER"),
    Option("style_layers", "layers whose statistics the result must match", str, nargs="+", metavar="LAYER"),
    Option("layer_weights", "w_l, one per style layer (default: each layer balanced by its typical loss, summing to 1)", float,
           nargs="+", metavar="W"),
    Option("statistic", "what is matched in each style layer", str, choices=lambda: list(STATISTICS)),
    Option("tv_weight", "weight of the total-variation regulariser, a mean over pixels (0 = off)", metavar="GAMMA"),
    Option("tv_exponent", "exponent of the total variation (1 keeps edges, 2 smooths)", metavar="P"),
    Option("init", "start image ('auto' = the content, or noise for a texture)", str),
    Option("optimizer", "L-BFGS-B on the network's device (pixels bounded to [0, 1]), scipy's L-BFGS-B "
           "(float64 on the CPU, for comparison) or projected Adam", str),
    Option("lr", "step size of " + ", ".join(f"{o.name} (default: {o.default_lr})" for o in OPTIMIZERS.values()
                                           if o.takes_lr), metavar="LR"),
    Option("seed", "seed of the noise start", int, metavar="N"),
    Option("precision", "dtype of the network ('auto': bf16 on CPUs with native bf16, else fp32; losses stay "
           "fp32)", str),
    Option("scales", "coarse-to-fine schedule: 'auto', 'single' (the paper: all steps at full size) or "
           "SIDE:STEPS,... ending at the result's long side, e.g. 128:100,256:200", parse_scales,
           metavar="SCHEDULE"),
    Option("preserve_colour", "keep the content's colours: 'luminance' transfers only the luminance, 'match' "
           "recolours the styles to the content's colours first", str),
    Option("style_scale", "resize each style so its long side is S times the result's (larger S, larger "
           "strokes)", metavar="S"),
)


def synthesize_defaults() -> dict[str, Any]:
    """``synthesize``'s default for every keyword (looked up when called): what both front ends
    start from."""
    return {name: p.default for name, p in inspect.signature(synthesis.synthesize).parameters.items()}


def literal_choices(keyword: str, function: Callable[..., Any] | None = None) -> tuple[Any, ...] | None:
    """The values of ``keyword``'s ``Literal[...]`` annotation in ``function`` (default
    ``synthesize``, looked up when called), also inside a union such as
    ``Literal["auto"] | Tensor``; else None."""
    try:
        hint = typing.get_type_hints(function or synthesis.synthesize).get(keyword)
    except (NameError, TypeError):  # an annotation that cannot be resolved: no choices
        return None
    members = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    values = [v for m in members if typing.get_origin(m) is typing.Literal for v in typing.get_args(m)]
    return tuple(values) or None
