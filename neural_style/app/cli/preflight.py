"""What the ``neural-style`` command checks before it loads the network, and its folder mode.

Everything that can be found out without the network's weights is checked first, in seconds:
the outputs (``outputs.check_output``: writable, not existing unless replaced, never one of the
inputs, one per input), the images (decoded, or in folder mode their headers read), the
parameters and the memory a run will need at the sizes asked for (``synthesis.plan`` on the
network's ``skeleton``), computed before any image is resized. In folder mode every usable image gets its own result; an image
that cannot be used is reported and skipped (``Failure``), and the command exits non-zero after
the others, with a summary.
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
import stat
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, cast

from torch import Tensor

from ...core.images import (IMAGE_SUFFIXES, ImageLoadError, fitted_size, has_image_name, image_size, read_image,
                            read_metadata)
from ...core.outputs import OutputError, check_output, probe_writable, same_file
from ...net.vgg import UnknownLayerError, skeleton
from ...synthesis.plan import RunSettings, check_settings, plan_sizes
from ..options import synthesize_defaults

PROG = "neural-style"

# Exit codes (also listed in --help).
EXIT_OK = 0
EXIT_USAGE = 2          # argparse: unknown option, missing argument, bad value type
EXIT_INPUT = 3          # an image could not be read, or the library rejected a value
EXIT_BACKBONE = 4       # the backbone's weights could not be loaded
EXIT_OUTPUT = 5         # the output exists (no --overwrite) or cannot be written
EXIT_STOPPED = 6        # a run failed before its budget (Stop.failed: non-finite loss, line search, callback error)
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT); SIGTERM gives 143, SIGHUP 129; the best image was saved


@dataclass
class Job:
    """One result to make: a content file (None for a texture) and where to write it."""

    content: Path | None
    output: Path
    content_size: tuple[int, int] | None = None  # (H, W) of the content file, once read
    redo: str = ""  # why an existing result is made again under --skip-existing (it is then replaced)


@dataclass
class Failure:
    """An input (or output) that could not be used: what, why, and the exit code it stands for."""

    path: Path
    message: str
    code: int


@dataclass
class JobList:
    """The jobs to run, those skipped because their result exists, and the inputs refused so far."""

    jobs: list[Job]
    skipped: list[Job] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    @property
    def redone(self) -> list[Job]:
        """The jobs whose existing result is made again (``--skip-existing``: interrupted or unreadable)."""
        return [job for job in self.jobs if job.redo]


# ------------------------------------------------------------------------------------------------
# Folder mode: one result per image, named after it


def folder_images(folder: Path) -> tuple[list[Path], list[Failure]]:
    """The image files of ``folder`` (by suffix, hidden files left out), and a ``Failure`` for
    each entry with an image suffix that is not a regular file (a pipe, a device, a broken link)."""
    try:
        entries = sorted(p for p in folder.iterdir() if has_image_name(p))
    except OSError as error:
        raise ImageLoadError(f"Cannot list the folder {folder}: {error.strerror or error}.") from None
    files, failures = [], []
    for path in entries:
        try:
            mode = path.stat().st_mode
        except OSError as error:
            failures.append(Failure(path, f"{path} cannot be read ({error.strerror or error}; a broken link?).",
                                    EXIT_INPUT))
            continue
        if stat.S_ISREG(mode):
            files.append(path)
        elif not stat.S_ISDIR(mode):
            failures.append(Failure(path, f"{path} is not a regular file (a pipe or a device); it was left out.",
                                    EXIT_INPUT))
    if not files and not failures:
        raise ImageLoadError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)}).")
    return files, failures


def output_names(files: Sequence[Path]) -> dict[Path, str]:
    """A distinct result name for each input file: ``stem.png``, or ``stem-ext.png`` for files that
    share a stem (``x.jpg`` and ``x.png`` give ``x-jpg.png`` and ``x-png.png``). Names are
    compared without case, as on case-insensitive file systems; ``OutputError`` if two still meet."""
    by_stem: dict[str, list[Path]] = defaultdict(list)
    for path in files:
        by_stem[path.stem.casefold()].append(path)
    names = {path: f"{path.stem}.png" if len(by_stem[path.stem.casefold()]) == 1
             else f"{path.stem}-{path.suffix[1:]}.png" for path in files}
    seen: dict[str, Path] = {}
    for path, name in names.items():
        other = seen.setdefault(name.casefold(), path)
        if other is not path:
            raise OutputError(f"{other.name} and {path.name} would both be written to {name}; rename one of them.")
    return names


def folder_jobs(folder: Path, output: Path) -> tuple[list[Job], list[Failure]]:
    """One job per image file of ``folder``, each with its own result in ``output``."""
    if same_file(folder, output):
        raise OutputError(f"The output folder {output} is the content folder; results would mix with the inputs. "
                          "Choose another folder with -o.")
    files, failures = folder_images(folder)
    names = output_names(files)
    return [Job(path, output / names[path]) for path in files], failures


# ------------------------------------------------------------------------------------------------
# Outputs


def check_outputs(jobs: list[Job], inputs: Sequence[Path], *, overwrite: bool, skip_existing: bool) -> JobList:
    """Sort ``jobs`` into those to run and those skipped (``skip_existing``); refuse (OutputError)
    outputs that exist (without ``overwrite``), that would replace an input, or cannot be written.

    With ``skip_existing`` an existing result is kept only when it is finished: one that cannot be
    read, or whose run was interrupted (``unfinished``), is made again and replaced.
    """
    existing = [job for job in jobs if os.path.lexists(job.output) and not job.output.is_dir()]
    for job in jobs:
        check_not_input(job.output, [*inputs, *(p for p in [job.content] if p is not None)])
    if existing and not (overwrite or skip_existing):
        shown = ", ".join(str(job.output) for job in existing[:3]) + (" ..." if len(existing) > 3 else "")
        many = f"{len(existing)} results exist" if len(existing) > 1 else "The result exists"
        raise OutputError(f"{many} ({shown}); pass --overwrite to replace, --skip-existing to keep them and make "
                          "only the missing ones, or choose another name.")
    for job in existing if skip_existing else []:
        job.redo = unfinished(job.output)
    skipped = [job for job in existing if not job.redo] if skip_existing else []
    todo = [job for job in jobs if job not in skipped]
    for job in todo:
        check_output(job.output, overwrite=overwrite or bool(job.redo))
    return JobList(todo, skipped)


def check_not_input(output: Path, inputs: Sequence[Path]) -> None:
    """Refuse (``OutputError``) an output that is one of ``inputs`` (the same file, by any name)."""
    for path in inputs:
        if same_file(output, path):
            raise OutputError(f"{output} would replace the input {path}; choose another output.")


def unfinished(path: Path) -> str:
    """Why the existing result ``path`` is not finished ("" when it is): its image cannot be decoded
    (empty, truncated, damaged), or its metadata says its run was interrupted (``stop`` is
    "interrupted", or ``stopped`` for results written before ``stop`` was recorded). A readable PNG
    without our metadata counts as finished: it is someone's file, replaced only with --overwrite."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            read_image(path)
            metadata = read_metadata(path)
    except ImageLoadError as error:
        return f"it cannot be read ({error})"
    if metadata.get("stop") == "interrupted" or metadata.get("stopped") == "interrupted":
        return "its run was interrupted"
    return ""


# ------------------------------------------------------------------------------------------------
# Frames (--save-every): OUT-steps/ belongs to the run that makes OUT


def snapshot_folder(output: Path) -> Path:
    """Where ``--save-every`` puts the intermediate images of ``output``: ``OUT-steps/`` beside it."""
    return output.with_name(f"{output.stem}-steps")


def frame_files(output: Path) -> list[Path]:
    """The frames ``--save-every`` wrote for ``output`` (``OUT-steps/OUT-00050.png`` ...), oldest step first;
    other files in the folder are not ours and are never touched."""
    folder = snapshot_folder(output)
    if not folder.is_dir():
        return []
    name = re.compile(re.escape(output.stem) + r"-\d{5,}\.png")
    return sorted(p for p in folder.iterdir() if name.fullmatch(p.name) and p.is_file())


def check_frame_folders(jobs: Sequence[Job], *, replace: bool) -> None:
    """Create every job's ``--save-every`` folder (with the missing folders above it) and probe it, before
    the network loads. Frames of an earlier run there are refused unless ``replace`` (``--overwrite`` or
    ``--skip-existing``: the result is made again, so are its frames; they are removed when its run starts).

    Raises:
        OutputError: a folder cannot be created or written, or holds frames of an earlier run.
    """
    for job in jobs:
        folder = snapshot_folder(job.output)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            earlier = frame_files(job.output)
        except OSError as error:
            raise OutputError(f"Cannot create {folder} for --save-every: {error.strerror or error}. Choose another "
                              "output, or remove what is in the way.") from None
        if earlier and not replace:
            raise OutputError(f"{folder} holds {len(earlier)} frames of an earlier run ({earlier[0].name} ...); pass "
                              "--overwrite to replace them (only those frames are removed), or move them away.")
        probe_writable(folder, ".probe-", folder / f"{job.output.stem}-00000.png")


# ------------------------------------------------------------------------------------------------
# Images and parameters, before the network


def arch_of(args: argparse.Namespace) -> str:
    """The architecture the command's backbone will have (known without loading it)."""
    return args.arch if args.backbone == "random" else "vgg19"


PLANNED = tuple(inspect.signature(check_settings).parameters)[1:]  # synthesize's settings, by name
SMALLER = "use a smaller --size, or --style-size, --texture-size, --style-scale"
LARGER = "raise --size (or --style-size, --texture-size, --style-scale)"


def check_keywords(keywords: dict[str, Any], args: argparse.Namespace, num_styles: int,
                   device: Any) -> RunSettings:
    """The parameters ``synthesize`` would refuse, refused now by its own checks (``check_settings``)."""
    defaults = synthesize_defaults()
    settings: dict[str, Any] = {name: keywords.get(name, defaults.get(name)) for name in PLANNED}
    settings.update(num_styles=num_styles, with_content=not args.texture, device=device,
                    num_masks=len(args.masks) if args.masks else None,
                    init="image" if args.init_image is not None else settings["init"])
    return check_settings(skeleton(arch_of(args)), **settings)


def style_side(args: argparse.Namespace) -> int:
    """The long side the style images are resized to: ``--style-size``, else ``--size`` (never a falsy
    ``--style-size`` taken as unset: the parser refuses values below 1)."""
    return cast(int, args.size if args.style_size is None else args.style_size)


def check_sizes(args: argparse.Namespace, keywords: dict[str, Any], settings: RunSettings, device: Any,
                style_shapes: Sequence[tuple[int, int]], content_shape: tuple[int, int] | None) -> None:
    """Refuse, before anything is resized, sizes too small for the layers or too large for the
    memory of ``device`` (``plan_sizes`` on the architecture alone)."""
    style_sizes = [fitted_size(s, style_side(args)) for s in style_shapes]
    content_size = None if content_shape is None else fitted_size(content_shape, args.size)
    plan_sizes(skeleton(arch_of(args)), settings, style_sizes=style_sizes, content_size=content_size,
               size=keywords.get("size"), device=device, smaller=SMALLER, size_hint=LARGER)


def read_content_sizes(batch: JobList, check: Any) -> None:
    """Read each folder job's content size from its header and run ``check(size)`` on it; a job
    whose image cannot be read, or whose sizes are refused, moves to ``batch.failures``."""
    for job in list(batch.jobs):
        try:
            job.content_size = image_size(cast(Path, job.content))  # folder jobs all have a content file
            check(job.content_size)
        except UnknownLayerError:
            raise
        except (ImageLoadError, ValueError) as error:
            batch.failures.append(Failure(cast(Path, job.content), str(error), EXIT_INPUT))
            batch.jobs.remove(job)


def read_inputs(paths: Sequence[Path] | None) -> list[Tensor]:
    """The images at their own size (resized later, once their sizes have been checked)."""
    return [read_image(p) for p in paths or []]
