"""What the ``neural-style-texture-net`` command checks before any training or sampling, and how
it writes: the same discipline as ``neural-style`` (``preflight.py``, ``runs.py``).

Before the work: every output is probed (``outputs.check_output``: writable, not a folder, a name
that fits, not existing unless ``--overwrite``) and is never one of the inputs; counts and sizes
are checked against the device's free memory (``texture_nets.memory``) on the architecture alone,
before the backbone, the network or an image is loaded. While writing: each file is written with
the signals held back (``interrupts.held_back``), so no signal cuts a save short. A training
whose final save fails keeps its weights in a rescue file when it can (``rescue_weights``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import torch

from ...core.images import fitted_size, image_size
from ...core.outputs import OutputError, check_free_space, check_output
from ...losses.config import CONTENT_LAYERS, STYLE_LAYERS
from ...net.vgg import skeleton
from ...texture_nets.memory import (ELEMENT_SIZE, OVERHEAD_BYTES, check_fits, scales_hint, training_bytes,
                                    weights_file_bytes)
from ...texture_nets.network import GeneratorConfig, save_texture_network
from ...texture_nets.training import TrainingResult
from ..interrupts import SignalState, held_back
from .preflight import check_not_input

PROG = "neural-style-texture-net"
MAX_COUNT = 10_000  # samples in one run: more are files no one looks at, and a typo (--count 100000000) is likely


def say(message: object, kind: str = "error") -> None:
    """Print ``neural-style-texture-net: kind: message`` on stderr."""
    print(f"{PROG}: {kind}: {message}", file=sys.stderr)


def check_single_output(output: Path, inputs: Sequence[Path], overwrite: bool) -> None:
    """Refuse (``OutputError``) an output that is one of ``inputs`` or could not be written."""
    check_not_input(output, inputs)
    check_output(output, overwrite=overwrite)


def sample_paths(output: Path, count: int) -> list[Path]:
    """``OUT.png`` for one sample, ``OUT_1.png`` ... ``OUT_n.png`` for more; ``ValueError`` above ``MAX_COUNT``."""
    if count > MAX_COUNT:
        raise ValueError(f"--count {count} is more than {MAX_COUNT} samples in one run; make them in several runs "
                         "(each with its own -o, and --seed raised by the number made before).")
    if count == 1:
        return [output]
    return [output.with_name(f"{output.stem}_{i}{output.suffix}") for i in range(1, count + 1)]


def check_training(args: argparse.Namespace, config: GeneratorConfig, device: torch.device,
                   num_photos: int) -> None:
    """Refuse, before the style is decoded or the backbone loaded, weights that the output's disk
    cannot hold (``OutputError``), and a training too small for the layers or too large for the
    memory of ``device`` (``texture_nets.memory``)."""
    check_free_space(args.output, weights_file_bytes(config, args.steps))
    vgg = skeleton("vgg19")  # every backbone of this command is a VGG19
    layers = [*STYLE_LAYERS, *(CONTENT_LAYERS if config.content else [])]
    size = (args.size, args.size)
    vgg.check_fits("The training size", size, STYLE_LAYERS, "train at a larger --size")
    check_fits(training_bytes(vgg, config, args.size, args.batch, layers), device,
               f"Training on batches of {args.batch} at {args.size}x{args.size} px",
               scales_hint(config, size, "--size") + ", or a smaller --batch")
    style_shape = fitted_size(image_size(args.style), args.style_size or args.size)
    largest = max(c * h * w for c, h, w in vgg.module_shapes(style_shape, STYLE_LAYERS))
    check_fits(2 * ELEMENT_SIZE * largest + OVERHEAD_BYTES, device,
               f"The style image at {style_shape[0]}x{style_shape[1]} px", "use a smaller --style-size")
    if num_photos:
        check_fits(num_photos * 3 * ELEMENT_SIZE * args.photo_size**2, "cpu",
                   f"{num_photos} photos at {args.photo_size} px", "use a smaller --photo-size, or fewer photos")


def save_held(save: Callable[[], object], signals: SignalState) -> bool:
    """Run ``save`` to its end with the signals held back (``interrupts.held_back``), also when one
    arrives just before it; True when a signal has ended the run (``signals.signum`` is set): the
    caller stops after the save and exits with ``signals.exit_code``."""
    done = False
    while not done:
        try:
            with held_back(signals):
                if not done:
                    save()
                    done = True
        except KeyboardInterrupt:  # arrived just before the block: the save has not started yet
            pass
    return signals.signum is not None


def save_weights(result: TrainingResult, output: Path, overwrite: bool, signals: SignalState,
                 report: Callable[[], None]) -> bool:
    """Write the trained weights to ``output`` and ``report`` it, with the signals held back; True
    when a signal has ended the run (``save_held``).

    A failed save (a full disk, a read-only folder, a file created meanwhile without
    ``--overwrite``) raises ``OutputError`` naming the error and where the weights were kept
    instead (``rescue_weights``), or saying that they could not be kept.
    """
    def save() -> None:
        save_texture_network(result.network, output, result, overwrite=overwrite)
        report()

    try:
        return save_held(save, signals)
    except OSError as error:
        if isinstance(error, FileExistsError):
            reason = "it was created while the network trained (pass --overwrite to replace it)"
        else:
            reason = error.strerror or str(error)
        rescue = rescue_weights(result, output, signals)
        kept = (f"the trained weights were kept in {rescue}; move that file where you want it" if rescue
                else "the trained weights could not be kept elsewhere either (nothing was written)")
        raise OutputError(f"Cannot write {output}: {reason}; {kept}.") from None


def rescue_weights(result: TrainingResult, output: Path, signals: SignalState) -> Path | None:
    """Write the weights to a new file of a unique name, ``STEM-rescued-XXXX.pt``, next to
    ``output`` or, when that fails too, in the system's temporary folder (often another file
    system: a disk that filled up may not hold them). Nothing existing is replaced; a failed try
    leaves nothing behind. Returns the file, or None when neither place could hold it."""
    for folder in (output.parent, Path(tempfile.gettempdir())):
        try:
            fd, name = tempfile.mkstemp(prefix=f"{output.stem[:64]}-rescued-", suffix=".pt", dir=folder)
        except OSError:
            continue
        os.close(fd)
        try:
            save_held(lambda: save_texture_network(result.network, Path(name), result, overwrite=True), signals)
            return Path(name)
        except OSError:
            Path(name).unlink(missing_ok=True)
    return None
