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
import stat
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, cast

from torch import Tensor

from ...core.images import IMAGE_SUFFIXES, ImageLoadError, fitted_size, has_image_name, image_size, read_image
from ...core.outputs import OutputError, check_output, same_file
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
    outputs that exist (without ``overwrite``), that would replace an input, or cannot be written."""
    existing = [job for job in jobs if os.path.lexists(job.output) and not job.output.is_dir()]
    for job in jobs:
        for path in [*inputs, *(p for p in [job.content] if p is not None)]:
            if same_file(job.output, path):
                raise OutputError(f"{job.output} would replace the input {path}; choose another output.")
    if existing and not (overwrite or skip_existing):
        shown = ", ".join(str(job.output) for job in existing[:3]) + (" ..." if len(existing) > 3 else "")
        many = f"{len(existing)} results exist" if len(existing) > 1 else "The result exists"
        raise OutputError(f"{many} ({shown}); pass --overwrite to replace, --skip-existing to keep them and make "
                          "only the missing ones, or choose another name.")
    skipped = existing if skip_existing else []
    todo = [job for job in jobs if job not in skipped]
    for job in todo:
        check_output(job.output, overwrite=overwrite)
    return JobList(todo, skipped)


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


def check_sizes(args: argparse.Namespace, keywords: dict[str, Any], settings: RunSettings, device: Any,
                style_shapes: Sequence[tuple[int, int]], content_shape: tuple[int, int] | None) -> None:
    """Refuse, before anything is resized, sizes too small for the layers or too large for the
    memory of ``device`` (``plan_sizes`` on the architecture alone)."""
    style_sizes = [fitted_size(s, args.style_size or args.size) for s in style_shapes]
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
