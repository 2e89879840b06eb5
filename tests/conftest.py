"""Fixtures shared by the panel's test modules."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pytest
from PIL import Image

ImageSpec = tuple[str, tuple[int, int, int]]


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
