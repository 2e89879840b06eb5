"""Figures for the notebook: image grids and loss curves that say which backbone made them.

Every text is at least ``SMALLEST_TEXT`` points at the figure's size; a figure wider than a
notebook's column (``COLUMN_WIDTH``) is shown scaled down to it, so its texts grow in proportion
and stay that size on the screen.
"""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from torch import Tensor

SMALLEST_TEXT = 9.0  # points: a caption at the figure's size
COLUMN_WIDTH = 12.0  # inches: about what a notebook column shows of a figure (960 px at 80 dpi)


def text_size(fig: Figure, points: float) -> float:
    """``points`` (at least ``SMALLEST_TEXT``), scaled up by how much wider than a column ``fig`` is."""
    return max(points, SMALLEST_TEXT) * max(1.0, fig.get_figwidth() / COLUMN_WIDTH)


def image_grid(rows: Sequence[Sequence[Tensor | None]], *, backbone: str, col_titles: Sequence[str] = (),
               row_titles: Sequence[str] = (), title: str = "", path: str | Path | None = None,
               cell: float = 2.4) -> Figure:
    """A grid of images (each (1, 3, H, W) in [0, 1]; None leaves a cell empty).

    Column titles wrap to their cell's width; the title gets its own band above them. The
    backbone is written under the grid and into the PNG's metadata when ``path`` is given.
    """
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    shapes = [image.shape[-2:] for row in rows for image in row if image is not None]
    aspect = max((w / h for h, w in shapes), default=1.0)  # cells as wide as the widest image
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(cell * aspect * n_cols, cell * n_rows + 0.5), squeeze=False)
    column_size = text_size(fig, 10)
    characters = max(8, int(cell * aspect * 72 / (0.6 * column_size)))  # a character is about 0.6 em wide
    wrapped = ["\n".join(textwrap.wrap(t, characters)) for t in col_titles]
    lines = max((t.count("\n") + 1 for t in wrapped), default=0)
    title_band = 1.6 * text_size(fig, 12) / 72 if title else 0.0
    fig.set_figheight(fig.get_figheight() + 1.4 * column_size / 72 * max(0, lines - 1) + title_band)
    for i, row in enumerate(rows):
        for j in range(n_cols):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            image = row[j] if j < len(row) else None
            if image is not None:
                ax.imshow(image.detach().squeeze(0).permute(1, 2, 0).clamp(0, 1).cpu().numpy())
            if i == 0 and j < len(wrapped):
                ax.set_title(wrapped[j], fontsize=column_size)
            if j == 0 and i < len(row_titles):
                ax.set_ylabel(row_titles[i], fontsize=text_size(fig, 10))
    top = 1.0 - title_band / fig.get_figheight()
    if title:
        fig.text(0.5, 1.0 - 0.2 * title_band / fig.get_figheight(), title, ha="center", va="top",
                 fontsize=text_size(fig, 12))
    caption = fig.text(0.5, 0.005, f"backbone: {backbone}", ha="center", va="bottom", fontsize=text_size(fig, 9),
                       color="0.35")
    for _ in range(2):  # the second pass sees where the images' fixed aspect moved the titles
        fig.tight_layout(rect=(0, caption_height(fig, caption), 1, top))
    if path is not None:
        save_figure(fig, path, backbone)
    return fig


def loss_curves(histories: Mapping[str, Sequence[Mapping[str, float]]], *, backbone: str,
                keys: Sequence[str] = ("total",), title: str = "", path: str | Path | None = None,
                lowest_so_far: bool = True, x_label: str = "loss evaluation") -> Figure:
    """Loss against evaluation number (log scale), one line per run and key.

    With ``lowest_so_far`` the running minimum is drawn: it hides the line search's trial
    points, which can be far above the current loss, and it is the loss of the image a run
    returns at that point. Turn it off for losses that are not minimised (a GAN's). ``x_label``
    names what one step of the histories is (an adversarial run records one per image step).
    """
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for label, history in histories.items():
        for key in keys:
            values = [h[key] for h in history]
            if lowest_so_far:
                values = list(itertools.accumulate(values, min))
            ax.semilogy(range(1, len(values) + 1), values, label=f"{label} {key}" if len(keys) > 1 else label)
    ax.set_xlabel(x_label, fontsize=text_size(fig, 10))
    ax.set_ylabel("lowest loss so far" if lowest_so_far else "loss", fontsize=text_size(fig, 10))
    ax.tick_params(labelsize=text_size(fig, 9))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=text_size(fig, 9))
    ax.set_title(title, fontsize=text_size(fig, 11))
    caption = fig.text(0.99, 0.005, f"backbone: {backbone}", ha="right", va="bottom", fontsize=text_size(fig, 9),
                       color="0.35")
    fig.tight_layout(rect=(0, caption_height(fig, caption), 1, 1))
    if path is not None:
        save_figure(fig, path, backbone)
    return fig


def caption_height(fig: Figure, caption: Any) -> float:
    """The fraction of ``fig``'s height that ``caption`` (a text at its bottom) takes, with a margin."""
    points = caption.get_fontsize() * 1.6
    return min(0.3, points / 72 / fig.get_figheight())


def save_figure(fig: Figure, path: str | Path, backbone: str, dpi: int = 90) -> Path:
    """Save a figure as PNG with the backbone in its metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, metadata={"Description": f"backbone: {backbone}"})
    return path
