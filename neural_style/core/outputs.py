"""Where results go: an output that cannot be written is refused before any work starts.

``check_output`` finds, in milliseconds, what would otherwise be discovered only when the result
is saved at the end of a run: a name too long for the file system (or for the temporary file the
result is first written to), a folder on the way that is a regular file, a folder that cannot be
written (permissions, a read-only file system), an existing file or folder. It probes by creating
and removing an empty temporary file where the result will be written; the save itself still
writes atomically (``write_atomically``, which ``images.save_image`` and the weights files use).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

NAME_MAX = 255     # bytes in one file name on common file systems (ext4, XFS, APFS, NTFS in UTF-16 units)
PATH_MAX = 4096    # bytes in a whole path (Linux)
TEMP_STEM_BYTES = 64  # how much of the result's name its temporary file repeats


class OutputError(OSError):
    """An output exists (without overwrite) or cannot be written; the message says what to do."""


def temporary_prefix(path: Path) -> str:
    """Prefix of the temporary file a result is written to before it is renamed to ``path``:
    a dot and the start of its stem, short enough that the temporary name always fits."""
    stem = os.fsdecode(os.fsencode(path.stem)[:TEMP_STEM_BYTES])
    return f".{stem}-"


def check_name_lengths(path: Path) -> None:
    """``OutputError`` when a part of ``path`` is longer than ``NAME_MAX`` bytes, or the whole
    path longer than ``PATH_MAX``: the file system would refuse to create it."""
    for part in path.parts:
        size = len(os.fsencode(part))
        if size > NAME_MAX:
            shown = part if len(part) <= 40 else part[:24] + "..." + part[-12:]
            raise OutputError(f"The name {shown!r} is {size} bytes long; file systems allow at most {NAME_MAX} "
                              "bytes per name. Choose a shorter output name.")
    if len(os.fsencode(str(path.absolute()))) > PATH_MAX:
        raise OutputError(f"The output path is longer than {PATH_MAX} bytes; choose a shorter one.")


def existing_ancestor(path: Path) -> Path:
    """The nearest folder above ``path`` that exists (the result's own folder, or the one its
    missing folders will be created in); ``OutputError`` when a regular file stands in the way."""
    for ancestor in path.absolute().parents:
        if ancestor.exists():
            if not ancestor.is_dir():
                raise OutputError(f"Cannot write {path}: {ancestor} is a file, not a folder. Choose another output "
                                  "path.")
            return ancestor
    return Path(path.absolute().anchor)


def probe_writable(folder: Path, prefix: str, path: Path) -> None:
    """Create and remove an empty file named like the result's temporary file in ``folder``;
    ``OutputError`` (naming ``path`` and the reason) when the file system refuses."""
    try:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=".png", dir=folder)
    except OSError as error:
        reason = error.strerror or str(error)
        raise OutputError(f"Cannot write {path}: {reason} (in {folder}). Choose another output path, or make "
                          "that folder writable.") from None
    os.close(fd)
    os.unlink(name)


def check_output(path: Path, *, overwrite: bool = False) -> None:
    """Refuse, before any work, an output that could not be written at the end of a run.

    Raises:
        OutputError: a name too long, a regular file where a folder must be, a folder that cannot
            be written, ``path`` is a folder, or ``path`` exists and ``overwrite`` is False.
    """
    check_name_lengths(path)
    try:
        if path.is_dir():
            raise OutputError(f"{path} is a folder; give a .png file name.")
        if os.path.lexists(path) and not overwrite:
            raise OutputError(f"{path} exists; pass --overwrite to replace it, or choose another name.")
        folder = existing_ancestor(path)
    except OutputError:
        raise
    except OSError as error:  # a folder on the way that cannot be entered, a loop of links
        raise OutputError(f"Cannot write {path}: {error.strerror or error}. Choose another output path.") from None
    own_folder = folder == path.absolute().parent
    probe_writable(folder, temporary_prefix(path) if own_folder else ".probe-", path)


def check_free_space(path: Path, need: int) -> None:
    """``OutputError`` when the file system ``path`` will be written to (its nearest existing
    folder) has fewer than ``need`` bytes free; no check where the free space cannot be told."""
    try:
        folder = existing_ancestor(path)
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < need:
        raise OutputError(f"Cannot write {path}: it needs about {_amount(need)}, but only {_amount(free)} is free in "
                          f"{folder}. Free some space, or choose another output path.")


def _amount(size: int) -> str:
    return f"{size / 2**10:.0f} KiB" if size < 2**20 else f"{size / 2**20:.1f} MiB"


def same_file(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name one file (the same path once resolved, or one inode)."""
    try:
        if a.resolve() == b.resolve():
            return True
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def write_atomically(path: Path, data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` so that a reader only ever sees the old file or the complete new one.

    The bytes go to a temporary file of a unique name in ``path``'s folder (``tempfile.mkstemp``
    with ``temporary_prefix``, so two writers to one path never share it), are flushed to disk, and the file is then renamed to ``path``. Whatever fails (a
    full disk, a read-only folder, a signal) removes the temporary and leaves an existing ``path``
    untouched. Missing folders above ``path`` are created, as ``save_image`` does.

    Raises:
        FileExistsError: ``path`` exists (also one created meanwhile) and ``overwrite`` is False.
        OutputError: a name too long for the file system.
        OSError: the write failed (``ENOSPC``, ``EROFS``, ...); nothing was changed.
    """
    check_name_lengths(path)
    exists = f"{path} exists; pass overwrite=True to replace it, or choose another name."
    if os.path.lexists(path) and not overwrite:
        raise FileExistsError(exists)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temporary_prefix(path), suffix=path.suffix, dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; a result should be readable like any file
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            link_new(tmp, path, exists)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def link_new(tmp: str, path: Path, exists: str) -> None:
    """Give the finished file ``tmp`` the name ``path`` only if no file has it (even one created
    meanwhile); FileExistsError with the message ``exists`` otherwise."""
    try:
        os.link(tmp, path)  # atomic, and fails if path exists
    except FileExistsError:
        raise FileExistsError(exists) from None
    except OSError:  # a file system without hard links
        if os.path.lexists(path):
            raise FileExistsError(exists) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)
