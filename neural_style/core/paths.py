"""Paths as they are published (PNG metadata, printed lines): relative to the project, or a bare
file name for a file outside it, so that nothing written for others names this machine's folders.

The project is the current working folder: the notebooks, ``make`` and the commands all run from
the project's root.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePath
from typing import Any, Sequence


def portable_path(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> str:
    """``path`` relative to ``root`` (default: the current folder) with ``/`` separators when it
    lies inside it, else the file's name alone. Links are not followed: ``images/x.png`` stays that
    when ``images`` links elsewhere.

    >>> portable_path("/home/ada/project/images/cat.png", "/home/ada/project")
    'images/cat.png'
    >>> portable_path("/home/ada/Downloads/cat.png", "/home/ada/project")
    'cat.png'
    """
    base = Path(os.path.abspath(root if root is not None else Path.cwd()))
    full = Path(os.path.abspath(base / Path(path).expanduser()))  # ``..`` folded, links kept as named
    try:
        return full.relative_to(base).as_posix()
    except ValueError:
        return full.name


def metadata_value(value: Any) -> Any:
    """What JSON gets for a value it cannot encode itself: a path as ``portable_path`` writes it,
    anything else as its text (``json.dumps(..., default=metadata_value)``)."""
    return portable_path(value) if isinstance(value, PurePath) else str(value)



def input_files(content: str | Path | None, styles: Sequence[str | Path], init: str | Path | None = None
                ) -> dict[str, Any]:
    """``content_file``, ``style_files`` (and ``init_file`` when given) as a result's metadata records
    them: paths relative to the project, or file names for files outside it (``portable_path``), so
    that a PNG says which inputs made it without naming a machine's folders. A ``str`` that is not a
    path (the panel's "previous result") is kept as it is; the notebooks pass this to ``result.save``."""
    def name(value: str | Path) -> str:
        return portable_path(value) if isinstance(value, Path) else value

    files: dict[str, Any] = {"content_file": None if content is None else name(Path(content)),
                             "style_files": [name(Path(s)) for s in styles]}
    if init is not None:
        files["init_file"] = name(init)
    return files
