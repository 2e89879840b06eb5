"""The notebook's figures (``app/notebook/figures.py``): every text readable at the size the figure
is shown, the backbone caption clear of the images, the backbone in the saved PNG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from PIL import Image  # noqa: E402

from neural_style.app.notebook.figures import image_grid, loss_curves  # noqa: E402

SHOWN_WIDTH = 12.0  # inches of a figure a notebook column shows (wider ones are scaled down to it)


def texts(fig: plt.Figure) -> list[Text]:
    return [t for t in fig.findobj(Text) if t.get_text().strip() and t.get_visible()]


def smallest_on_screen(fig: plt.Figure) -> float:
    """The smallest text, in points, once the figure is scaled to a column's width."""
    shrink = min(1.0, SHOWN_WIDTH / fig.get_figwidth())
    return min(t.get_fontsize() for t in texts(fig)) * shrink


@pytest.mark.parametrize("columns", [1, 3, 8])
def test_image_grid_texts_are_at_least_9_pt_as_shown(columns: int) -> None:
    images = [torch.rand(1, 3, 32, 48) for _ in range(columns)]
    fig = image_grid([images, images], backbone="vgg19 (vgg19, avg pooling)", title="a title",
                     col_titles=[f"column {i}" for i in range(columns)], row_titles=["a", "b"])
    try:
        assert any(t.get_text().startswith("backbone: vgg19") for t in texts(fig))
        assert smallest_on_screen(fig) >= 9.0 - 1e-9
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        caption = next(t for t in texts(fig) if t.get_text().startswith("backbone"))
        lowest_axes = min(ax.get_window_extent(renderer).y0 for ax in fig.axes)
        assert caption.get_window_extent(renderer).y1 <= lowest_axes + 1  # the caption does not cover an image
    finally:
        plt.close(fig)


def test_loss_curves_texts_are_at_least_9_pt(tmp_path: Path) -> None:
    history = [{"total": v} for v in (10.0, 5.0, 50.0, 2.0)]
    fig = loss_curves({"run": history}, backbone="random", title="losses", path=tmp_path / "c.png")
    try:
        assert smallest_on_screen(fig) >= 9.0
        line = fig.axes[0].get_lines()[0]
        assert list(line.get_ydata()) == [10.0, 5.0, 5.0, 2.0]  # the lowest so far
    finally:
        plt.close(fig)
    assert Image.open(tmp_path / "c.png").text["Description"] == "backbone: random"


@pytest.mark.parametrize("rows", [1, 3])
def test_image_grid_titles_do_not_overlap(rows: int) -> None:
    """A row of landscape images with long column titles: each title clear of the others and of the images."""
    images = [torch.rand(1, 3, 64, 96) for _ in range(5)]
    titles = ["content", "style"] + [f"style_scale = {s} (style {w} px wide)"
                                     for s, w in ((0.5, 56), (1, 112), (2, 224))]
    fig = image_grid([images] * rows, backbone="vgg19 (vgg19, avg pooling)", title="Style scale", col_titles=titles,
                     cell=2.2)
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        boxes = [t.get_window_extent(renderer) for t in texts(fig) if not t.get_text().startswith("backbone")]
        boxes += [ax.get_window_extent(renderer) for ax in fig.axes]
        for a in range(len(boxes)):
            for b in range(a + 1, len(boxes)):
                assert not boxes[a].overlaps(boxes[b]), (a, b)
        assert all(0 <= box.y0 and box.y1 <= fig.bbox.y1 + 1 for box in boxes)  # nothing cut off at the top
    finally:
        plt.close(fig)


def test_loss_curves_name_the_step(tmp_path: Path) -> None:
    fig = loss_curves({"run": [{"total": 1.0}, {"total": 0.5}]}, backbone="random", x_label="image step")
    try:
        assert fig.axes[0].get_xlabel() == "image step"
    finally:
        plt.close(fig)
