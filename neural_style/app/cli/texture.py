"""The ``neural-style-texture-net`` command: train a feed-forward network once, then use it.

    neural-style-texture-net train STYLE -o NET.pt [--size 128] [--steps 300] [--norm instance]
    neural-style-texture-net sample NET.pt -o OUT.png [--size 512] [--count 4] [--seed 0]
    neural-style-texture-net train STYLE --photos PHOTO [PHOTO ...] -o NET.pt   (stylization; PHOTO: file or folder)
    neural-style-texture-net stylize NET.pt PHOTO -o OUT.png [--size 512]

``train`` writes the generator's best weights with its loss history, time and parameters
(``texture_network.save_texture_network``, ``read_training``), also when Ctrl-C, SIGTERM or
SIGHUP ends it early; ``sample`` writes one PNG per sample (``OUT.png``,
or ``OUT_1.png`` ... ``OUT_n.png``), each carrying its parameters.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

from ...core.images import ImageLoadError, image_files, load_image, save_image
from ...net.loading import BACKBONES, load_backbone
from ...net.vgg import BackboneError
from ...texture_nets.network import (STYLIZATION_STYLE_WEIGHT, GeneratorConfig, load_texture_network,
                                     save_texture_network)
from ...texture_nets.training import train_stylization_network, train_texture_network
from ..interrupts import SignalState, signals_as_interrupts
from ..progress import Bar

PROG = "neural-style-texture-net"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Feed-forward texture synthesis and stylization "
                                     "(Ulyanov et al. 2016).")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train a generator on one texture")
    train.add_argument("style", type=Path, help="the texture image")
    train.add_argument("-o", "--output", type=Path, required=True, help="where to write the weights (.pt)")
    train.add_argument("--size", type=int, default=128, help="side of the training samples in px (default 128)")
    train.add_argument("--style-size", type=int, default=None,
                       help="long side the texture is resized to (default: --size)")
    train.add_argument("--steps", type=int, default=300, help="Adam steps (default 300)")
    train.add_argument("--batch", type=int, default=4, help="samples per step (default 4)")
    train.add_argument("--lr", type=float, default=0.01, help="Adam's learning rate (default 0.01)")
    train.add_argument("--norm", choices=["instance", "batch"], default="instance", help="normalisation (default instance)")
    train.add_argument("--scales", type=int, default=5, help="noise scales K (default 5)")
    train.add_argument("--backbone", choices=BACKBONES, default="auto", help="feature network (default auto)")
    train.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--photos", type=Path, nargs="+", default=None, metavar="PHOTO",
                       help="photos, or folders of photos: train a stylization network on crops of them")
    train.add_argument("--style-weight", type=float, default=None,
                       help="beta of a stylization network, against alpha = 1 (default "
                            f"{STYLIZATION_STYLE_WEIGHT:g}); unused for a texture")
    train.add_argument("--photo-size", type=int, default=256, help="long side the photos are loaded at (default 256)")
    sample = commands.add_parser("sample", help="sample textures from trained weights")
    sample.add_argument("weights", type=Path, help="weights written by 'train'")
    sample.add_argument("-o", "--output", type=Path, required=True, help="output PNG")
    sample.add_argument("--size", type=int, nargs="+", default=[512], metavar="PX",
                        help="side of a square sample, or HEIGHT WIDTH (default 512)")
    sample.add_argument("--count", type=int, default=1, help="number of samples (default 1)")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--overwrite", action="store_true", help="replace existing files")
    stylize = commands.add_parser("stylize", help="stylize a photo with a trained stylization network")
    stylize.add_argument("weights", type=Path, help="weights written by 'train --photos'")
    stylize.add_argument("photo", type=Path, help="the photo")
    stylize.add_argument("-o", "--output", type=Path, required=True, help="output PNG")
    stylize.add_argument("--size", type=int, default=512, help="long side in px (default 512)")
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


def _train(args: argparse.Namespace, signals: SignalState) -> int:
    if args.output.suffix != ".pt":
        raise ValueError(f"{args.output}: write the weights to a .pt file.")
    if not args.output.parent.is_dir():
        raise ValueError(f"{args.output.parent} is not a folder; create it first.")
    style = load_image(args.style, args.style_size or args.size)
    if args.style_weight is not None and args.photos is None:
        raise ValueError("--style-weight sets the balance of a stylization network; add --photos, or leave it out.")
    photos = None if args.photos is None else [load_image(p, args.photo_size) for p in photo_files(args.photos)]
    config = GeneratorConfig(scales=args.scales, norm=args.norm, content=photos is not None)
    net = load_backbone(args.backbone, device=args.device)
    bar = Bar("training", terminal=True, unit="step")
    common = dict(size=args.size, num_steps=args.steps, batch_size=args.batch, lr=args.lr, config=config,
                  seed=args.seed, callback=lambda step, loss: bar.update(step, args.steps, loss))
    weight = {} if args.style_weight is None else {"style_weight": args.style_weight}
    result = (train_texture_network(net, style, **common) if photos is None
              else train_stylization_network(net, style, photos, **common, **weight))
    bar.close()
    save_texture_network(result.network, args.output, result)
    how = f"{result.stopped}; " if result.stopped else ""
    print(f"{args.output}: {how}best batch loss {result.best_loss:.4g} at step {result.best_step} of "
          f"{len(result.history)} (first {result.losses[0]:.4g}), {result.seconds:.0f} s")
    return signals.exit_code if result.stop.kind == "interrupted" else 0


def _sample(args: argparse.Namespace) -> int:
    if len(args.size) not in (1, 2):
        raise ValueError("--size takes one side or HEIGHT WIDTH.")
    size = (args.size[0], args.size[-1])
    paths = [args.output] if args.count == 1 else [
        args.output.with_name(f"{args.output.stem}_{i}{args.output.suffix}") for i in range(1, args.count + 1)]
    for path in paths:
        if path.exists() and not args.overwrite:
            raise FileExistsError(f"{path} exists; pass --overwrite to replace it.")
    network = load_texture_network(args.weights)
    began = time.perf_counter()
    images = network.sample(size, count=args.count, seed=args.seed)
    seconds = time.perf_counter() - began
    for i, (path, image) in enumerate(zip(paths, images)):
        save_image(image, path, {"task": "texture_network_sample", "weights": str(args.weights),
                                 "size": list(size), "seed": args.seed, "index": i}, overwrite=args.overwrite)
    print(f"{len(paths)} sample(s) of {size[0]}x{size[1]} in {seconds:.2f} s: {', '.join(map(str, paths))}")
    return 0


def _stylize(args: argparse.Namespace) -> int:
    if args.output.exists() and not args.overwrite:
        raise FileExistsError(f"{args.output} exists; pass --overwrite to replace it.")
    network = load_texture_network(args.weights)
    photo = load_image(args.photo, args.size)
    began = time.perf_counter()
    image = network.stylize(photo, seed=args.seed)
    seconds = time.perf_counter() - began
    save_image(image, args.output, {"task": "stylization_network", "weights": str(args.weights),
                                    "photo": str(args.photo), "size": list(photo.shape[-2:]), "seed": args.seed},
               overwrite=args.overwrite)
    print(f"{args.output}: {photo.shape[-2]}x{photo.shape[-1]} in {seconds:.2f} s")
    return 0


COMMANDS = {"sample": _sample, "stylize": _stylize}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (1 for bad input, 128 + the signal's number for a
    training ended by a signal, after its best weights were written)."""
    args = build_parser().parse_args(argv)
    try:
        with signals_as_interrupts() as signals:
            return _train(args, signals) if args.command == "train" else COMMANDS[args.command](args)
    except (ImageLoadError, BackboneError, FileNotFoundError, FileExistsError, ValueError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
