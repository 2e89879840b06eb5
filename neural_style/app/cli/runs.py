"""The ``neural-style`` command's runs: one synthesis per job, each result saved with the signals
held back, failures in folder mode reported and skipped, and what an interruption left said.

The checks that come before (outputs, images, sizes, memory) are in ``preflight.py``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from torch import Tensor

from ...core.images import ImageLoadError, read_image, resize
from ...core.outputs import OutputError
from ...core.paths import input_files
from ...net.vgg import VGGFeatures
from ...optim.record import StepInfo
from ...synthesis.run import SynthesisResult
from ..interrupts import SignalState, deferred
from ..progress import Bar, LogLines, Snapshots
from .preflight import (EXIT_INPUT, EXIT_OK, EXIT_OUTPUT, EXIT_STOPPED, PROG, Failure, Job, JobList, frame_files,
                        snapshot_folder)


def say_error(message: object) -> None:
    """Print ``neural-style: error: message`` on stderr."""
    print(f"{PROG}: error: {message}", file=sys.stderr)


@dataclass
class Inputs:
    """The images every job shares: styles (resized), masks (full size), the single content image
    (full size; None in folder mode and for a texture) and the style files' names."""

    styles: list[Tensor]
    masks: list[Tensor]
    content: Tensor | None
    style_paths: list[Path]
    init_image: Tensor | None = None


@dataclass
class Context:
    """How the jobs run: the command line, the signals seen, folder mode, and the synthesis function."""

    command: str
    signals: SignalState
    folder: bool
    synthesize: Callable[..., SynthesisResult]


def callbacks(job: Job, args: argparse.Namespace, label: str) -> tuple[Callable[[StepInfo], None], Bar]:
    """The command's ``synthesize`` callback for one job (bar or log lines, and snapshots), and its bar.

    With ``--save-every`` the frames of an earlier run of this result are removed first (the checks
    before the run allowed it: ``--overwrite`` or ``--skip-existing``), so the folder holds this run's only.
    """
    bar = Bar(label, not args.quiet and sys.stderr.isatty(), terminal=True, unit="eval")
    steps: list[Callable[[StepInfo], None]] = [bar]
    if not args.quiet and not sys.stderr.isatty():
        steps.append(LogLines(f"{PROG}: {label}"))
    if args.save_every:
        try:
            for frame in frame_files(job.output):
                frame.unlink(missing_ok=True)
        except OSError as error:
            raise OutputError(f"Cannot remove the earlier frames in {snapshot_folder(job.output)}: "
                              f"{error.strerror or error}") from None
        steps.append(Snapshots(snapshot_folder(job.output), job.output.stem, args.save_every, PROG))

    def callback(info: StepInfo) -> None:
        for step in steps:
            step(info)

    return callback, bar


def run_jobs(net: VGGFeatures, batch: JobList, inputs: Inputs, args: argparse.Namespace, keywords: dict[str, Any],
             context: Context) -> int:
    """Run each job of ``batch`` and save its result; returns the exit code.

    In folder mode a job whose image cannot be read, whose sizes are refused or whose result
    cannot be written is reported and skipped. An interruption (any handled signal) saves the
    interrupted run's best image and ends the batch, saying which results were not made.
    """
    codes: list[int] = []
    for index, job in enumerate(batch.jobs):
        label = f"{job.output.name} (image {index + 1} of {len(batch.jobs)})" if context.folder else job.output.name
        try:
            result = run_job(net, job, inputs, args, keywords, context.synthesize, label)
            interrupted = save_protected(result, job, inputs, args, context.command)
        except (ImageLoadError, ValueError, OutputError) as error:
            if not context.folder:
                raise
            skip(batch, job, error)
            continue
        except KeyboardInterrupt:
            report_interruption(context.signals, None, batch.jobs[index:])
            return context.signals.exit_code
        if interrupted or result.stop.kind == "interrupted":
            report_interruption(context.signals, job.output, batch.jobs[index + 1:])
            return context.signals.exit_code
        codes.append(EXIT_STOPPED if result.stop.failed else EXIT_OK)
    return finish(batch, codes, context.folder)


def run_job(net: VGGFeatures, job: Job, inputs: Inputs, args: argparse.Namespace, keywords: dict[str, Any],
            synthesize: Callable[..., SynthesisResult], label: str) -> SynthesisResult:
    """One synthesis: the content read (in folder mode) and resized, the masks fitted to the result,
    the start image given with ``--init-image`` (resized by ``synthesize``)."""
    content = None
    if job.content is not None:
        content = resize(inputs.content if inputs.content is not None else read_image(job.content), args.size)
    if inputs.masks:
        size = keywords.get("size") or tuple((content if content is not None else inputs.styles[0]).shape[-2:])
        keywords = {**keywords, "masks": [resize(m, size).mean(dim=1)[0] for m in inputs.masks]}
    if inputs.init_image is not None:
        keywords = {**keywords, "init": inputs.init_image}
    callback, bar = callbacks(job, args, label)
    try:
        return synthesize(net, style=inputs.styles, content=content, callback=callback, **keywords)
    finally:
        bar.close()


def save_protected(result: SynthesisResult, job: Job, inputs: Inputs, args: argparse.Namespace,
                   command: str) -> bool:
    """Save ``result`` with the signals held back; True when one arrived meanwhile (the file is
    then complete, and the batch ends)."""
    try:
        with deferred():
            save(result, job, inputs.style_paths, command, args.overwrite or bool(job.redo), args.init_image)
            if not args.quiet:
                print(summary(result, job.output), file=sys.stderr)
            print(job.output, flush=True)
    except KeyboardInterrupt:
        return True
    return False


def skip(batch: JobList, job: Job, error: Exception) -> None:
    """Report a folder job that failed and go on with the next."""
    code = EXIT_OUTPUT if isinstance(error, OSError) else EXIT_INPUT
    path = job.content if job.content is not None else job.output
    batch.failures.append(Failure(path, str(error), code))
    say_error(f"skipping {path.name}: {error}")


def report_interruption(signals: SignalState, saved: Path | None, not_started: Sequence[Job]) -> None:
    """Say what an interruption left: the result saved with the best image so far, the jobs not made."""
    kept = f"the best image so far is in {saved}" if saved else "the run had not started; nothing was written for it"
    names = ", ".join(str(job.output) for job in not_started[:5]) + (" ..." if len(not_started) > 5 else "")
    rest = (f"; not made: {names} (run the same command with --skip-existing to make them)"
            if not_started else "")
    say_error(f"interrupted ({signals.name}): {kept}{rest}")


def finish(batch: JobList, codes: list[int], folder: bool) -> int:
    """The exit code (the first failure's, else 0) and, in folder mode, a summary of the failures."""
    failed = batch.failures
    if folder and failed:
        names = ", ".join(f.path.name for f in failed[:5]) + (" ..." if len(failed) > 5 else "")
        say_error(f"{len(failed)} of {len(failed) + len(codes) + len(batch.skipped)} images failed ({names}); "
                  f"{len(codes)} results written, {len(batch.skipped)} kept.")
    return next((c for c in [*(f.code for f in failed), *codes] if c), EXIT_OK)


def save(result: SynthesisResult, job: Job, style_paths: list[Path], command: str, overwrite: bool,
         init: Path | None = None) -> None:
    """Write the result with the command's metadata: the input files relative to the project
    (``input_files``), the command, and ``stop``, how the run ended (``--skip-existing`` makes a
    result again when it says ``interrupted``)."""
    extra = {**input_files(job.content, style_paths, init), "command": command, "stop": result.stop.kind}
    if result.stopped:
        extra["stopped"] = result.stopped
    try:
        result.save(str(job.output), overwrite=overwrite, **extra)
    except FileExistsError:  # written by someone else since the check before the run
        raise OutputError(f"{job.output} exists; pass --overwrite to replace it, or choose another name.") from None
    except OSError as error:
        raise OutputError(f"Cannot write {job.output}: {error}") from error


def summary(result: SynthesisResult, path: Path) -> str:
    steps = len(result.history)
    loss = f"{result.best_loss:.4g}" if result.history else "n/a"
    note = f"; stopped early: {result.stopped}" if result.stopped else ""
    return f"{PROG}: wrote {path} ({steps} evaluations in {result.seconds:.1f} s, loss {loss}{note})"
