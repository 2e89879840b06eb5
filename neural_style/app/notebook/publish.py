"""A notebook made ready to commit after an execution, so that opening it changes nothing.

JupyterLab rewrites a notebook's ``kernelspec`` with the kernel's own as soon as the kernel
starts: a notebook that says ``"display_name": "Python 3"`` (what papermill keeps) is marked
modified on opening, and its autosave rewrites the whole file. ``publish`` writes the kernelspec
that the project's kernel reports (``ipykernel install`` names it ``Python 3 (ipykernel)``), and
drops the widget state that no output shows (the progress bars leave their last line as text, so
their widgets' state is dead weight). It also writes the paths of this machine that an execution
records as ``paths.portable_path`` does: the project's folder is dropped from the outputs' text
(a warning names ``neural_style/synthesis/run.py``, not where the clone lies), a warning raised by
a cell's own code names ``<notebook cell>`` instead of the kernel's temporary file, and papermill's
``input_path`` and ``output_path`` become relative, or bare file names. Run it on each executed
notebook before it replaces the committed one (``make notebook`` does)::

    python -m neural_style.app.notebook.publish style_transfer.run.ipynb
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from ...core.paths import portable_path

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
WIDGET_STATE = "widgets"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
KERNEL_CELL_FILE = re.compile(r"(?:[A-Za-z]:)?[/\\][^\s\"':]*ipykernel_\d+[/\\]\d+\.py")  # /tmp/ipykernel_1/2.py


def shows_widgets(notebook: dict[str, Any]) -> bool:
    """Whether any output of ``notebook`` displays a widget (and so needs the saved widget state)."""
    return any(WIDGET_VIEW in output.get("data", {})
               for cell in notebook.get("cells", []) for output in cell.get("outputs", []))


def _portable_outputs(cell: dict[str, Any], prefix: str) -> dict[str, Any]:
    """``cell`` with ``prefix`` (the project's folder and a separator) removed from its outputs' text
    (streams and plain text), and the kernel's temporary files of cells named ``<notebook cell>``."""
    if "outputs" not in cell:
        return cell

    def strip(text: Any) -> Any:
        if isinstance(text, list):
            return [strip(line) for line in text]
        return KERNEL_CELL_FILE.sub("<notebook cell>", text.replace(prefix, "")) if isinstance(text, str) else text

    outputs = []
    for output in cell["outputs"]:
        output = dict(output)
        if "text" in output:
            output["text"] = strip(output["text"])
        if "text/plain" in output.get("data", {}):
            output["data"] = {**output["data"], "text/plain": strip(output["data"]["text/plain"])}
        outputs.append(output)
    return {**cell, "outputs": outputs}


def publish(notebook: dict[str, Any], project: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """``notebook`` (nbformat 4 JSON) as it is committed: the kernel's own kernelspec, no widget
    state unless an output shows a widget, and the paths of ``project`` (default: the current
    folder, the one the notebooks run in) written relative to it in the outputs and in papermill's
    metadata. The cells' sources are not touched."""
    if notebook.get("nbformat") != 4:
        raise ValueError(f"Expected an nbformat 4 notebook, got nbformat {notebook.get('nbformat')!r}.")
    root = os.path.abspath(project if project is not None else os.getcwd())
    metadata = dict(notebook.get("metadata", {}))
    metadata["kernelspec"] = dict(KERNELSPEC)
    if not shows_widgets(notebook):
        metadata.pop(WIDGET_STATE, None)
    if "papermill" in metadata:
        metadata["papermill"] = {key: portable_path(value, root) if key in ("input_path", "output_path") and value
                                 else value for key, value in metadata["papermill"].items()}
    cells = [_portable_outputs(cell, root.rstrip(os.sep) + os.sep) for cell in notebook.get("cells", [])]
    return {**notebook, "metadata": metadata, "cells": cells}


def publish_file(path: str | Path) -> Path:
    """Rewrite the notebook at ``path`` in place with ``publish`` (one-space indent, as Jupyter writes)."""
    path = Path(path)
    notebook = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(publish(notebook), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m neural_style.app.notebook.publish NOTEBOOK...``: publish each file in place."""
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print("usage: python -m neural_style.app.notebook.publish NOTEBOOK...", file=sys.stderr)
        return 2
    for path in paths:
        publish_file(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
