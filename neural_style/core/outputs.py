"""Where results go: an output that cannot be written is refused before any work starts.

``check_output`` finds, in milliseconds, what would otherwise be discovered only when the result
is saved at the end of a run: a name too long for the file system (or for the temporary file the
result is first written to), a folder on the way that is a regular file, a folder that cannot be
written (permissions, a read-only file system), an existing file or folder. It probes by creating
and removing an empty temporary file where the result will be written; the save itself still
writes atomically (``images.save_image``).
"""

from __future__ import annotations

import os
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


def same_file(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name one file (the same path once resolved, or one inode)."""
    try:
        if a.resolve() == b.resolve():
            return True
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False
