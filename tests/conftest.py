"""Fixtures shared by the test modules."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import pytest
from PIL import Image

ImageSpec = tuple[str, tuple[int, int, int]]


@pytest.fixture(autouse=True)
def default_hangup_and_terminate() -> Iterator[None]:
    """SIGHUP and SIGTERM at their default during each test, whatever the test run was started with
    (``nohup`` ignores SIGHUP, and the commands leave an ignored signal ignored)."""
    names = [name for name in ("SIGHUP", "SIGTERM") if hasattr(signal, name)]
    previous = {name: signal.signal(getattr(signal, name), signal.SIG_DFL) for name in names}
    yield
    for name, handler in previous.items():
        signal.signal(getattr(signal, name), handler)


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
