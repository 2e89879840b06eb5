"""The notebook panel without a browser: widgets, the run function the Run button calls, Stop, Save."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("ipywidgets")

from neural_style import panel as panel_module  # noqa: E402
from neural_style.backbones import load_backbone  # noqa: E402
from neural_style.images import load_image, read_metadata  # noqa: E402
from neural_style.panel import JobSettings, StylePanel, Upload, front_end_connected, run_job  # noqa: E402
from neural_style.statistics import STATISTICS  # noqa: E402
from neural_style.synthesis import STYLE_LAYERS, synthesize  # noqa: E402


@pytest.fixture(scope="module")
def net():
    return load_backbone("random", arch="vgg16")


@pytest.fixture()
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name, shape in (("chelsea.png", (24, 32, 3)), ("great_wave.jpg", (28, 28, 3)), ("brick.png", (16, 16, 3))):
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(folder / name)
    (folder / "README.md").write_text("not an image")
    return folder


def tiny(panel: StylePanel, steps: int = 4) -> StylePanel:
    panel.size.value = 64  # the slider's minimum
    panel.steps.min = 1
    panel.steps.value = steps
    return panel


def test_widgets_offer_the_images_and_every_statistic(net, images: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    panel = StylePanel(net, images, tmp_path / "results")
    assert [label for label, _ in panel.content.options] == ["none: texture", "brick.png", "chelsea.png",
                                                             "great_wave.jpg"]
    assert panel.content.value == images / "chelsea.png" and panel.styles.value == (images / "great_wave.jpg",)
    assert list(panel.statistic.options) == list(STATISTICS)
    assert list(panel.layer_weights) == list(STYLE_LAYERS)
    monkeypatch.setitem(STATISTICS, "brand_new", STATISTICS["gram"])
    assert "brand_new" in StylePanel(net, images, tmp_path).statistic.options


def test_settings_follow_the_widgets(net, images: Path, tmp_path: Path) -> None:
    panel = StylePanel(net, images, tmp_path)
    panel.layer_weights["conv2_1"].value = 0.0
    panel.layer_weights["conv5_1"].value = 0.5
    panel.style_weight.value = 1e4
    panel.statistic.value = "mean_cov"
    settings = panel.settings()
    assert settings.options["style_layers"] == ["conv1_1", "conv3_1", "conv4_1", "conv5_1"]
    assert settings.options["layer_weights"] == pytest.approx([0.2, 0.2, 0.2, 0.5])
    assert settings.options["tv_weight"] == 0.0  # off until the checkbox is ticked
    assert settings.options["style_weight"] == pytest.approx(1e4) and settings.options["statistic"] == "mean_cov"
    panel.tv_on.value = True
    assert panel.settings().options["tv_weight"] == pytest.approx(panel.tv_weight.value)
    panel.content.value = None
    assert panel.settings().content is None


def test_menus_follow_synthesize_keywords(net, images: Path, tmp_path: Path) -> None:
    """precision, scales, preserve_colour: a menu of their Literal values exactly when synthesize has them."""
    parameters = panel_module.inspect.signature(synthesize).parameters
    panel = StylePanel(net, images, tmp_path)
    assert set(panel.choices) == {k for k in panel_module.CHOICE_OPTIONS if k in parameters}
    for keyword, widget in panel.choices.items():
        assert widget.value == parameters[keyword].default
        assert panel.settings().options[keyword] == widget.value
    if "scales" in panel.choices:
        assert {"auto", "single"} <= set(panel.choices["scales"].options)


def test_colour_widget_appears_with_the_option(net, images: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def with_colour(backbone, *, style, content=None, callback=None, preserve_colour: bool = False):
        raise AssertionError("not called")

    assert (StylePanel(net, images, tmp_path).preserve_colour is None) == (
        "preserve_colour" not in panel_module.inspect.signature(synthesize).parameters)
    monkeypatch.setattr(panel_module, "synthesize", with_colour)
    panel = StylePanel(net, images, tmp_path)
    assert panel.preserve_colour is not None
    panel.preserve_colour.value = True
    assert panel.settings().options["preserve_colour"] is True

    def with_modes(backbone, *, style, preserve_colour: Literal["none", "luminance", "match"] = "none"):
        raise AssertionError("not called")

    monkeypatch.setattr(panel_module, "synthesize", with_modes)
    panel = StylePanel(net, images, tmp_path)
    assert list(panel.preserve_colour.options) == ["none", "luminance", "match"]
    assert panel.preserve_colour.value == "none"
    panel.preserve_colour.value = "luminance"
    assert panel.settings().options["preserve_colour"] == "luminance"


def test_run_job_matches_synthesize(net, images: Path) -> None:
    """run_job loads the images and runs synthesize: the same image as calling synthesize directly."""
    options = {"num_steps": 4, "seed": 3, "statistic": "mean", "style_weight": 100.0}
    steps = []
    result = run_job(net, JobSettings(styles=[images / "great_wave.jpg"], content=images / "chelsea.png", size=32,
                                      options=options), callback=lambda info: steps.append(info.step))
    reference = synthesize(net, style=load_image(images / "great_wave.jpg", 32),
                           content=load_image(images / "chelsea.png", 32), **options)
    assert steps == [1, 2, 3, 4]
    torch.testing.assert_close(result.image, reference.image)
    assert result.params == reference.params


def test_uploads_load_like_files(net, images: Path, tmp_path: Path) -> None:
    data = (images / "brick.png").read_bytes()
    torch.testing.assert_close(panel_module.load_source(Upload("b.png", data), 16),
                               load_image(images / "brick.png", 16))
    panel = StylePanel(net, images, tmp_path)
    panel._on_content_upload({"new": ({"name": "mine.png", "content": memoryview(data)},)})
    assert panel.content.value == Upload("mine.png", data)
    panel._on_style_upload({"new": ({"name": "s1.png", "content": memoryview(data)},
                                    {"name": "s2.png", "content": memoryview(data)})})
    assert [u.name for u in panel.styles.value] == ["s1.png", "s2.png"]
    assert panel.settings().describe() == {"content_file": "upload:mine.png",
                                           "style_files": ["upload:s1.png", "upload:s2.png"]}


def test_run_button_path_preview_and_save(net, images: Path, tmp_path: Path) -> None:
    """start() (the Run button) runs in a thread; the preview, progress and Save follow."""
    panel = tiny(StylePanel(net, images, tmp_path / "results", preview_every=2, preview_width=48))
    panel.start()
    panel.wait(timeout=120)
    assert not panel.running and panel.error == ""
    assert panel.result is not None and len(panel.result.history) == 4
    assert panel.progress.value == 4 and panel.status.value.startswith("done")
    preview = Image.open(io.BytesIO(panel.preview.value))
    assert preview.width == 48
    assert panel.run_button.disabled is False and panel.stop_button.disabled and not panel.save_button.disabled

    first = panel.save()
    second = panel.save()
    assert first.name == "panel_chelsea_great_wave.png" and second.name == "panel_chelsea_great_wave_2.png"
    meta = read_metadata(first)
    assert meta["num_steps"] == 4 and meta["content_file"] == str(images / "chelsea.png")
    assert meta["style_files"] == [str(images / "great_wave.jpg")] and meta["backbone"]["name"] == "random"
    torch.testing.assert_close(load_image(first), load_image(second))


def test_stop_keeps_the_image_so_far(net, images: Path, tmp_path: Path) -> None:
    panel = tiny(StylePanel(net, images, tmp_path, preview_every=1), steps=200)
    panel.content.value = None  # a texture
    callback = panel._callback

    def press_stop_at_3(info):
        if info.step == 3:
            panel.stop()
        return callback(info)

    panel._callback = press_stop_at_3
    panel.start()
    panel.wait(timeout=120)
    assert panel.result is not None and panel.result.stopped == "stopped by the callback"
    assert len(panel.result.history) == 3 and panel.status.value.startswith("stopped")
    assert torch.isfinite(panel.result.image).all() and not panel.save_button.disabled


def test_errors_are_shown_in_the_panel(net, images: Path, tmp_path: Path) -> None:
    panel = tiny(StylePanel(net, images, tmp_path))
    panel.styles.value = ()
    panel.start()
    panel.wait(timeout=60)
    assert "Pick at least one style image" in panel.error and "Pick at least one style" in panel.status.value
    for slider in panel.layer_weights.values():
        slider.value = 0.0
    panel.styles.value = (images / "brick.png",)
    panel.start()
    panel.wait(timeout=60)
    assert "at least one style layer" in panel.error and panel.result is None
    with pytest.raises(ValueError, match="press Run first"):
        panel.save()


def test_front_end_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    """No kernel here (pytest): head-less, unless the environment variable says otherwise."""
    monkeypatch.delenv("NEURAL_STYLE_PANEL", raising=False)
    assert front_end_connected() is False
    monkeypatch.setenv("NEURAL_STYLE_PANEL", "1")
    assert front_end_connected() is True
    monkeypatch.setenv("NEURAL_STYLE_PANEL", "0")
    monkeypatch.setenv("JPY_SESSION_NAME", "x.ipynb")
    assert front_end_connected() is False
