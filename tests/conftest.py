"""Fixtures shared by the test modules."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pytest
from PIL import Image

ImageSpec = tuple[str, tuple[int, int, int]]


@pytest.fixture(autouse=True)
def default_signal_handlers() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP at Python's defaults during each test, whatever the test run was
    started with (``nohup`` ignores SIGHUP, a shell's background job SIGINT; the commands leave an
    ignored signal ignored)."""
    defaults: dict[str, Any] = {"SIGINT": signal.default_int_handler, "SIGTERM": signal.SIG_DFL,
                                "SIGHUP": signal.SIG_DFL}
    previous = {}
    for name, handler in defaults.items():
        if hasattr(signal, name):  # no SIGHUP on Windows
            previous[getattr(signal, name)] = signal.signal(getattr(signal, name), handler)
    yield
    for signum, handler in previous.items():
        signal.signal(signum, handler)


@pytest.fixture()
def image_folder(tmp_path: Path) -> Callable[[Sequence[ImageSpec]], Path]:
    """A factory: ``image_folder([(name, (H, W, 3)), ...])`` writes seeded random RGB images into
    ``tmp_path / "images"`` and returns that folder."""

    def make(specs: Sequence[ImageSpec]) -> Path:
        folder = tmp_path / "images"
        folder.mkdir(exist_ok=True)
        rng = np.random.default_rng(1)
        for name, shape in specs:
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(folder / name)
        return folder

    return make
