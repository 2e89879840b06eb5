"""The ``neural-style-texture-net`` command: train a feed-forward network once, then use it.

    neural-style-texture-net train STYLE -o NET.pt [--size 128] [--steps 300] [--norm instance]
    neural-style-texture-net sample NET.pt -o OUT.png [--size 512] [--count 4] [--seed 0]
    neural-style-texture-net train STYLE --photos PHOTO [PHOTO ...] -o NET.pt   (stylization; PHOTO: file or folder)
    neural-style-texture-net stylize NET.pt PHOTO -o OUT.png [--size 512]

``train`` writes the generator's best weights with its loss history, time and parameters
(``texture_network.save_texture_network``, ``read_training``), also when Ctrl-C, SIGTERM or
SIGHUP ends it early; ``sample`` writes one PNG per sample (``OUT.png``, or ``OUT_1.png`` ...
``OUT_n.png``; sample i, from 0, is ``network.sample(size, seed=SEED + i)``), each carrying its
parameters. Outputs, sizes and memory are checked before any work (``texture_preflight.py``);
the exit codes are those of ``neural-style`` (``preflight.py``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

from torch import Tensor

from ...core.checks import check_positive, check_seed, check_weight
from ...core.devices import resolve_device
from ...core.images import ImageLoadError, fitted_size, image_files, image_size, load_image, save_image
from ...core.outputs import OutputError
from ...core.paths import portable_path
from ...net.loading import load_backbone
from ...net.vgg import BACKBONES, BackboneError, UnknownLayerError
from ...texture_nets.memory import check_fits, generation_bytes, scales_hint
from ...texture_nets.network import STYLIZATION_STYLE_WEIGHT, GeneratorConfig, TextureNetwork, load_texture_network
from ...texture_nets.training import train_stylization_network, train_texture_network
from ..interrupts import SignalState, held_back, signals_as_interrupts
from ..progress import Bar
from .main import positive_int
from .preflight import EXIT_BACKBONE, EXIT_INPUT, EXIT_OK, EXIT_OUTPUT, EXIT_STOPPED, Job, check_outputs
from .texture_preflight import PROG, check_single_output, check_training, sample_paths, save_held, save_weights, say

EXIT_CODES = """exit codes (as neural-style's):
  0    success
  2    usage error (unknown option, a malformed or non-positive number, a wrong output suffix)
  3    input error: an image or weights file that cannot be used, a value refused, a --size,
       --count, --batch or --scales too large for the memory (checked before any work)
  4    the backbone could not be loaded
  5    an output exists (use --overwrite) or cannot be written (checked before any work; a
       training whose final save fails says where its weights were kept)
  6    a training went wrong before its last step (a non-finite loss, a failing callback): its
       best weights were saved
  130  interrupted with Ctrl-C (SIGINT); 143 for SIGTERM, 129 for SIGHUP: a training saves its
       best weights so far, a run of samples keeps those already written"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Feed-forward texture synthesis and stylization "
                                     "(Ulyanov et al. 2016).", epilog=EXIT_CODES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train a generator on one texture")
    train.add_argument("style", type=Path, help="the texture image")
    train.add_argument("-o", "--output", type=Path, required=True, help="where to write the weights (.pt)")
    train.add_argument("--size", type=positive_int, default=128,
                       help="side of the training samples in px (default 128)")
    train.add_argument("--style-size", type=positive_int, default=None,
                       help="long side the texture is resized to (default: --size)")
    train.add_argument("--steps", type=positive_int, default=300, help="Adam steps (default 300)")
    train.add_argument("--batch", type=positive_int, default=4, help="samples per step (default 4)")
    train.add_argument("--lr", type=float, default=0.01, help="Adam's learning rate (default 0.01)")
    train.add_argument("--norm", choices=["instance", "batch"], default="instance",
                       help="normalisation (default instance)")
    train.add_argument("--scales", type=positive_int, default=5, help="noise scales K (default 5)")
    train.add_argument("--backbone", choices=BACKBONES, default="auto",
                       help="feature network (default auto; 'random' for tests)")
    train.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--photos", type=Path, nargs="+", default=None, metavar="PHOTO",
                       help="photos, or folders of photos: train a stylization network on crops of them")
    train.add_argument("--style-weight", type=float, default=None,
                       help="beta of a stylization network, against alpha = 1 (default "
                            f"{STYLIZATION_STYLE_WEIGHT:g}); unused for a texture")
    train.add_argument("--photo-size", type=positive_int, default=256,
                       help="long side the photos are loaded at (default 256)")
    train.add_argument("--overwrite", action="store_true", help="replace an existing weights file")
    sample = commands.add_parser("sample", help="sample textures from trained weights")
    sample.add_argument("weights", type=Path, help="weights written by 'train'")
    sample.add_argument("-o", "--output", type=Path, required=True, help="output PNG")
    sample.add_argument("--size", type=positive_int, nargs="+", default=[512], metavar="PX",
                        help="side of a square sample, or HEIGHT WIDTH (default 512)")
    sample.add_argument("--count", type=positive_int, default=1,
                        help="number of samples, OUT_1.png ... OUT_n.png (default 1)")
    sample.add_argument("--seed", type=int, default=0, help="seed of the first sample; sample i has SEED + i")
    existing = sample.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="replace existing files")
    existing.add_argument("--skip-existing", action="store_true",
                          help="keep the samples that exist and make only the missing ones (after an interruption)")
    stylize = commands.add_parser("stylize", help="stylize a photo with a trained stylization network")
    stylize.add_argument("weights", type=Path, help="weights written by 'train --photos'")
    stylize.add_argument("photo", type=Path, help="the photo")
    stylize.add_argument("-o", "--output", type=Path, required=True, help="output PNG")
    stylize.add_argument("--size", type=positive_int, default=512, help="long side in px (default 512)")
    stylize.add_argument("--seed", type=int, default=0)
    stylize.add_argument("--overwrite", action="store_true", help="replace an existing file")
    return parser


def photo_files(paths: Sequence[Path]) -> list[Path]:
    """The image files named by ``paths``: files as given, folders by their images (sorted)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = image_files(path)
            if not found:
                raise ValueError(f"{path} holds no images; give photos or folders of photos to train on.")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise ValueError(f"{path} does not exist; give photos or folders of photos to train on.")
    return files


def check_usage(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Output suffixes and option combinations: usage errors (exit 2), as ``neural-style``'s."""
    suffix = ".pt" if args.command == "train" else ".png"
    if args.output.suffix.lower() != suffix:
        what = "the weights to a .pt file" if suffix == ".pt" else "a .png file (it carries the parameters)"
        parser.error(f"-o must name {what}, got {args.output}")
    if args.command == "sample" and len(args.size) > 2:
        parser.error("--size takes one side or HEIGHT WIDTH")
    if args.command == "train" and args.style_weight is not None and args.photos is None:
        parser.error("--style-weight sets the balance of a stylization network; add --photos, or leave it out")


def _train(args: argparse.Namespace, signals: SignalState) -> int:
    """Check the output, the sizes and the memory; load the images and the backbone; train; save
    the best weights with the signals held back (also after an interruption)."""
    check_positive("lr", args.lr)
    check_seed(args.seed)
    if args.style_weight is not None:
        check_weight("style_weight", args.style_weight)
    photo_paths = None if args.photos is None else photo_files(args.photos)
    check_single_output(args.output, [args.style, *(photo_paths or [])], args.overwrite)
    config = GeneratorConfig(scales=args.scales, norm=args.norm, content=photo_paths is not None)
    device = resolve_device(args.device)
    check_training(args, config, device, len(photo_paths or []))
    style = load_image(args.style, args.style_size or args.size)
    photos = None if photo_paths is None else [load_image(p, args.photo_size) for p in photo_paths]
    net = load_backbone(args.backbone, device=device)
    bar = Bar("training", terminal=True, unit="step")
    common = dict(size=args.size, num_steps=args.steps, batch_size=args.batch, lr=args.lr, config=config,
                  seed=args.seed, callback=lambda step, loss: bar.update(step, args.steps, loss))
    weight = {} if args.style_weight is None else {"style_weight": args.style_weight}
    try:
        result = (train_texture_network(net, style, **common) if photos is None
                  else train_stylization_network(net, style, photos, **common, **weight))
    finally:
        bar.close()

    def report() -> None:
        how = f"{result.stopped}; " if result.stopped else ""
        print(f"{args.output}: {how}best batch loss {result.best_loss:.4g} at step {result.best_step} of "
              f"{len(result.history)} (first {result.losses[0]:.4g}), {result.seconds:.0f} s")

    if save_weights(result, args.output, args.overwrite, signals, report) or result.stop.kind == "interrupted":
        with held_back(signals):
            say(f"interrupted ({signals.name}): the best weights so far (step {result.best_step}) are in "
                f"{args.output}")
        return signals.exit_code
    return EXIT_STOPPED if result.stop.failed else EXIT_OK


def _sample(args: argparse.Namespace, signals: SignalState) -> int:
    """Check the outputs, the count and the memory of one sample; then make the samples one at a
    time (sample i from SEED + i), each saved with the signals held back."""
    size = (args.size[0], args.size[-1])
    for seed in (args.seed, args.seed + args.count - 1):  # sample i has SEED + i
        check_seed(seed)
    paths = sample_paths(args.output, args.count)
    batch = check_outputs([Job(None, p) for p in paths], [args.weights], overwrite=args.overwrite,
                          skip_existing=args.skip_existing)
    for job in batch.skipped:
        say(f"{job.output} exists; kept (--skip-existing)", "note")
    for job in batch.redone:
        say(f"{job.output} exists but is made again (--skip-existing): {job.redo}", "note")
    network = _load(args.weights, content=False)
    check_fits(generation_bytes(network.config, size), "cpu", f"A sample of {size[0]}x{size[1]} px",
               scales_hint(network.config, size, "--size"))
    todo = {job.output: args.overwrite or bool(job.redo) for job in batch.jobs}  # path: replace it
    written: list[Path] = []
    began = time.perf_counter()
    try:
        for index, path in enumerate(paths):
            if path in todo:
                image = network.sample(size, seed=args.seed + index)
                metadata = {"task": "texture_network_sample", "weights": portable_path(args.weights),
                            "size": list(size), "seed": args.seed + index, "index": index}
                if save_held(_saver(image, path, metadata, todo[path], written), signals):
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        rest = set(todo).difference(written)
        with held_back(signals):
            say(f"interrupted ({signals.name}): {len(written)} sample(s) written, {len(rest)} not made"
                + (" (run the same command with --skip-existing to make them)" if rest else ""))
        return signals.exit_code
    print(f"{len(written)} sample(s) of {size[0]}x{size[1]} in {time.perf_counter() - began:.2f} s"
          + (f": {written[0]} ... {written[-1]}" if len(written) > 1 else f": {written[0]}" if written else ""))
    return EXIT_OK


def _saver(image: Tensor, path: Path, metadata: dict, overwrite: bool, written: list[Path]) -> Callable[[], None]:
    """Save ``image`` to ``path`` and add it to ``written``; a failed write is an ``OutputError``
    that says how many files were written before it."""
    def save() -> None:
        try:
            save_image(image, path, metadata, overwrite=overwrite)
        except OSError as error:
            why = "it was created meanwhile (pass --overwrite)" if isinstance(error, FileExistsError) else (
                error.strerror or str(error))
            before = f"; {len(written)} file(s) written before it are kept" if written else ""
            raise OutputError(f"Cannot write {path}: {why}{before}.") from None
        written.append(path)
    return save


def _load(weights: Path, *, content: bool) -> TextureNetwork:
    """The network in ``weights``, of the kind the subcommand needs (a texture or a stylization network)."""
    network = load_texture_network(weights)
    if network.config.content != content:
        use = "stylize WEIGHTS PHOTO" if network.config.content else "sample WEIGHTS"
        kind = "a stylization" if network.config.content else "a texture"
        raise ValueError(f"{weights} holds {kind} network; use '{PROG} {use}'.")
    return network


def _stylize(args: argparse.Namespace, signals: SignalState) -> int:
    """Check the output (never the photo), the network and the memory at the photo's size; then
    stylize and save with the signals held back."""
    check_seed(args.seed)
    check_single_output(args.output, [args.photo, args.weights], args.overwrite)
    network = _load(args.weights, content=True)
    shape = fitted_size(image_size(args.photo), args.size)
    check_fits(generation_bytes(network.config, shape), "cpu", f"Stylizing at {shape[0]}x{shape[1]} px",
               scales_hint(network.config, shape, "--size"))
    photo = load_image(args.photo, args.size)
    began = time.perf_counter()
    image = network.stylize(photo, seed=args.seed)
    seconds = time.perf_counter() - began
    metadata = {"task": "stylization_network", "weights": portable_path(args.weights),
                "photo": portable_path(args.photo), "size": list(photo.shape[-2:]), "seed": args.seed}
    def save() -> None:
        _saver(image, args.output, metadata, args.overwrite, [])()
        print(f"{args.output}: {photo.shape[-2]}x{photo.shape[-1]} in {seconds:.2f} s")

    if save_held(save, signals):
        with held_back(signals):
            say(f"interrupted ({signals.name}) while {args.output} was written; it is complete")
        return signals.exit_code
    return EXIT_OK


COMMANDS = {"train": _train, "sample": _sample, "stylize": _stylize}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (``EXIT_CODES``: 3 input, 4 backbone, 5 output, 128 +
    the signal's number when a signal ended it, after what could be kept was written)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    check_usage(parser, args)
    with signals_as_interrupts() as signals:
        try:
            return COMMANDS[args.command](args, signals)
        except (OutputError, FileExistsError) as error:
            say(error)
            return EXIT_OUTPUT
        except BackboneError as error:
            say(error)
            return EXIT_BACKBONE
        except (ImageLoadError, UnknownLayerError, FileNotFoundError, ValueError) as error:
            say(error)
            return EXIT_INPUT
        except KeyboardInterrupt:
            with held_back(signals):
                say(f"interrupted ({signals.name}) before anything was written; nothing to keep")
            return signals.exit_code


if __name__ == "__main__":
    sys.exit(main())
