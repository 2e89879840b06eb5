"""The notebooks' parameters, checked before their first heavy cell.

``style_transfer.ipynb`` (the homework) and ``extensions.ipynb`` take their parameters from their
cell tagged ``parameters`` (papermill's ``-p NAME VALUE`` replaces them). A wrong type or range
would otherwise be found only by the cell that uses it, minutes into a CPU run; the first code
cell after the parameters calls ``check_notebook_parameters(globals(), NOTEBOOK)`` instead, which
refuses every bad value at once, naming each parameter and what it accepts.

``quality`` picks the sizes and budgets a parameter left at None takes: ``"full"`` (the pictures
a grader judges, meant for a GPU), ``"cpu"`` (what fits the notebooks' CPU budget) or ``"auto"``
(``resolve_quality``: full on a CUDA device, cpu elsewhere). The values of each setting are in
the notebooks, next to the parameters they fill.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Literal, Mapping

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


def _optional(check: Callable[[Any], None], what: str) -> Callable[[Any], None]:
    def check_optional(value: Any) -> None:
        if value is None:
            return
        try:
            check(value)
        except ValueError as accepted:
            raise ValueError(f"None ({what}) or {accepted}") from None
    return check_optional


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


QUALITIES = ("auto", "cpu", "full")
FROM_QUALITY = "the quality setting's value"

PARAMETERS: dict[str, Callable[[Any], None]] = {
    "backbone": _choice(BACKBONES),
    "device": _device,
    "quality": _choice(QUALITIES),
    "image_size": _optional(_count(MIN_SIZE, f"long side in px; conv5_1 needs {MIN_SIZE} px per side"), FROM_QUALITY),
    "num_steps": _optional(_count(1, "loss evaluations"), FROM_QUALITY),
    "compare_size": _optional(_count(MIN_SIZE, f"long side in px; conv5_1 needs {MIN_SIZE} px per side"),
                              FROM_QUALITY),
    "compare_steps": _optional(_count(1, "loss evaluations"), FROM_QUALITY),
    "table_size": _optional(_count(MIN_SIZE, f"long side in px; conv5_1 needs {MIN_SIZE} px per side"),
                            FROM_QUALITY),
    "table_steps": _optional(_count(1, "loss evaluations"), FROM_QUALITY),
    "adv_size": _optional(_count(MIN_SIZE, f"long side in px; conv5_1 needs {MIN_SIZE} px per side"), FROM_QUALITY),
    "adv_steps": _optional(_count(1, "image steps"), FROM_QUALITY),
    "seeds": _count(1, "noise seeds per table entry"),
    "texture_net_steps": _count(1, "Adam steps"),
    "results_dir": _folder,
    "seed": _seed,
}
"""Every parameter of the notebooks' parameters cells and its check (a ValueError saying what it accepts)."""

NOTEBOOK_PARAMETERS: dict[str, tuple[str, ...]] = {
    "style_transfer.ipynb": ("backbone", "device", "quality", "image_size", "num_steps", "compare_size",
                             "compare_steps", "table_size", "table_steps", "adv_size", "adv_steps", "seeds",
                             "results_dir", "seed"),
    "extensions.ipynb": ("backbone", "device", "quality", "compare_size", "compare_steps", "texture_net_steps",
                         "results_dir", "seed"),
}
"""The parameters of each notebook, in the order of its parameters cell."""


def resolve_quality(quality: str, device: str) -> Literal["cpu", "full"]:
    """``quality`` with ``"auto"`` resolved: ``"full"`` when ``device`` is a CUDA device, else ``"cpu"``."""
    if quality not in QUALITIES:
        raise ValueError(f"quality must be one of {', '.join(map(repr, QUALITIES))}, got {quality!r}.")
    if quality == "auto":
        return "full" if str(device).startswith("cuda") else "cpu"
    return "full" if quality == "full" else "cpu"


def check_notebook_parameters(namespace: Mapping[str, Any], notebook: str = "style_transfer.ipynb") -> None:
    """Check the parameters of ``notebook`` (a key of ``NOTEBOOK_PARAMETERS``) in ``namespace``
    (the notebook's ``globals()``).

    Raises ``NotebookParameterError`` listing every parameter that is missing or wrong, with its
    value and the values it accepts; returns None when all are right.
    """
    problems = []
    if notebook not in NOTEBOOK_PARAMETERS:
        raise ValueError(f"Unknown notebook {notebook!r}; choose one of {', '.join(NOTEBOOK_PARAMETERS)}.")
    for name in NOTEBOOK_PARAMETERS[notebook]:
        check = PARAMETERS[name]
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
