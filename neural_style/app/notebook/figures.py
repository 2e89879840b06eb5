"""Figures for the notebook: image grids and loss curves that say which backbone made them."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from torch import Tensor


def image_grid(rows: Sequence[Sequence[Tensor | None]], *, backbone: str, col_titles: Sequence[str] = (),
               row_titles: Sequence[str] = (), title: str = "", path: str | Path | None = None,
               cell: float = 2.4) -> Figure:
    """A grid of images (each (1, 3, H, W) in [0, 1]; None leaves a cell empty).

    The backbone is written under the grid and into the PNG's metadata when ``path`` is given.
    """
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    shapes = [image.shape[-2:] for row in rows for image in row if image is not None]
    aspect = max((w / h for h, w in shapes), default=1.0)  # cells as wide as the widest image
    height = cell * n_rows + (0.8 if title else 0.5)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(cell * aspect * n_cols, height), squeeze=False)
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
            if i == 0 and j < len(col_titles):
                ax.set_title(col_titles[j], fontsize=10)
            if j == 0 and i < len(row_titles):
                ax.set_ylabel(row_titles[i], fontsize=10)
    if title:
        fig.suptitle(title, fontsize=12)
    fig.text(0.5, 0.005, f"backbone: {backbone}", ha="center", va="bottom", fontsize=7, color="0.4")
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    if path is not None:
        save_figure(fig, path, backbone)
    return fig


def loss_curves(histories: Mapping[str, Sequence[Mapping[str, float]]], *, backbone: str,
                keys: Sequence[str] = ("total",), title: str = "", path: str | Path | None = None,
                lowest_so_far: bool = True) -> Figure:
    """Loss against evaluation number (log scale), one line per run and key.

    With ``lowest_so_far`` the running minimum is drawn: it hides the line search's trial
    points, which can be far above the current loss, and it is the loss of the image a run
    returns at that point. Turn it off for losses that are not minimised (a GAN's).
    """
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for label, history in histories.items():
        for key in keys:
            values = [h[key] for h in history]
            if lowest_so_far:
                values = list(itertools.accumulate(values, min))
            ax.semilogy(range(1, len(values) + 1), values, label=f"{label} {key}" if len(keys) > 1 else label)
    ax.set_xlabel("loss evaluation")
    ax.set_ylabel("lowest loss so far" if lowest_so_far else "loss")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=11)
    fig.text(0.99, 0.01, f"backbone: {backbone}", ha="right", va="bottom", fontsize=7, color="0.4")
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path, backbone)
    return fig


def save_figure(fig: Figure, path: str | Path, backbone: str, dpi: int = 90) -> Path:
    """Save a figure as PNG with the backbone in its metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, metadata={"Description": f"backbone: {backbone}"})
    return path
