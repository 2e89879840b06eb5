"""The homework notebook's parameters, checked before its first heavy cell.

``style_transfer.ipynb`` takes its parameters from its cell tagged ``parameters`` (papermill's
``-p NAME VALUE`` replaces them). A wrong type or range would otherwise be found only by the
cell that uses it, up to twenty minutes into a CPU run; the first code cell after the parameters
calls ``check_notebook_parameters(globals())`` instead, which refuses every bad value at once,
naming each parameter and what it accepts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping

from ...core.checks import check_integer, check_seed
from ...core.devices import resolve_device
from ...net.vgg import BACKBONES

MIN_SIZE = 16  # conv5_1, the deepest style layer, needs 16 px per side (4 poolings)


class NotebookParameterError(ValueError):
    """One or more of the notebook's parameters are wrong; the message lists each with what it accepts."""


def _choice(choices: tuple[str, ...]) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if value not in choices:
            raise ValueError(f"one of {', '.join(map(repr, choices))}")
    return check


def _device(value: Any) -> None:
    if not isinstance(value, str):
        raise ValueError("'auto', 'cpu', 'cuda' or 'cuda:N'")
    try:
        resolve_device(value)
    except ValueError as error:
        raise ValueError(f"'auto', 'cpu', 'cuda' or 'cuda:N' of a GPU that is there ({error})") from None


def _count(minimum: int, what: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        try:
            check_integer("value", value, minimum=minimum)
        except ValueError:
            raise ValueError(f"a whole number >= {minimum} ({what})") from None
    return check


def _folder(value: Any) -> None:
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise ValueError("a folder path (text)")
    if Path(value).exists() and not Path(value).is_dir():
        raise ValueError("a folder path; this one is a file")


def _seed(value: Any) -> None:
    try:
        check_seed(value)
    except ValueError:
        raise ValueError("a whole number from -2**63 to 2**64 - 1") from None


PARAMETERS: dict[str, Callable[[Any], None]] = {
    "backbone": _choice(BACKBONES),
    "device": _device,
    "image_size": _count(MIN_SIZE, f"long side in px; conv5_1 needs {MIN_SIZE} px per side"),
    "num_steps": _count(1, "loss evaluations"),
    "compare_size": _count(MIN_SIZE, f"long side in px; conv5_1 needs {MIN_SIZE} px per side"),
    "compare_steps": _count(1, "loss evaluations"),
    "texture_net_steps": _count(1, "Adam steps"),
    "results_dir": _folder,
    "seed": _seed,
}
"""Every parameter of the notebook's parameters cell and its check (a ValueError saying what it accepts)."""


def check_notebook_parameters(namespace: Mapping[str, Any]) -> None:
    """Check the notebook's parameters in ``namespace`` (the notebook's ``globals()``).

    Raises ``NotebookParameterError`` listing every parameter that is missing or wrong, with its
    value and the values it accepts; returns None when all are right.
    """
    problems = []
    for name, check in PARAMETERS.items():
        if name not in namespace:
            problems.append(f"{name} is not set: run the parameters cell first")
            continue
        value = namespace[name]
        try:
            check(value)
        except ValueError as accepted:
            problems.append(f"{name} = {value!r}: give {accepted}")
    if problems:
        raise NotebookParameterError(
            "The notebook's parameters are wrong (set them in the parameters cell, or with papermill -p NAME VALUE):\n"
            + "\n".join(f"  - {p}" for p in problems))
