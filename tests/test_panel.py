"""The notebook panel without a browser: widgets, settings, Run in its thread, Stop, Save, uploads,
the command it gives, and a new panel stopping the old one's run."""

from __future__ import annotations

import datetime
import html
import inspect
import io
import itertools
import math
import re
import shlex
import threading
from pathlib import Path
from typing import Literal

import pytest
import torch
from PIL import Image

pytest.importorskip("ipywidgets")

from neural_style.app.cli import main as cli  # noqa: E402
from neural_style.app.notebook import form as panel_form  # noqa: E402
from neural_style.app.notebook import panel as panel_module  # noqa: E402
from neural_style.app.notebook.form import PREVIOUS, TEXTURE  # noqa: E402
from neural_style.app.notebook.panel import StylePanel, show_panel  # noqa: E402
from neural_style.app.notebook.view import command_html, copy_button, front_end_connected, loss_curve_svg, status_html, uploaded_files  # noqa: E402
from neural_style.core.images import load_image, read_metadata  # noqa: E402
from neural_style.losses.config import STYLE_LAYERS, LossConfig
from neural_style.losses.statistics import STATISTICS  # noqa: E402
from neural_style.net.loading import load_backbone  # noqa: E402
from neural_style.synthesis import run as synthesis  # noqa: E402
from neural_style.synthesis.run import synthesize  # noqa: E402


@pytest.fixture(scope="module")
def net():
    return load_backbone("random", arch="vgg16")


@pytest.fixture()
def images(image_folder) -> Path:
    folder = image_folder([("chelsea.png", (24, 32, 3)), ("great_wave.jpg", (28, 28, 3)), ("brick.png", (16, 16, 3))])
    (folder / "README.md").write_text("not an image")
    return folder


def tiny(panel: StylePanel, steps: int = 4) -> StylePanel:
    panel.size.value = 64  # the slider's minimum
    panel.steps.min = 1
    panel.steps.value = steps
    return panel


def upload_value(name: str, data: bytes) -> tuple[dict, ...]:
    """What ipywidgets 8's FileUpload holds after one file was picked."""
    return ({"name": name, "type": "image/png", "size": len(data), "content": memoryview(data),
             "last_modified": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)},)


def stop_at(panel: StylePanel, step: int) -> None:
    """Make the panel press its own Stop button at evaluation ``step``."""
    callback = panel._callback

    def press_stop(info):
        if info.step == step:
            panel.stop()
        return callback(info)

    panel._callback = press_stop


def test_widgets_offer_the_images_and_every_statistic(net, images: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    panel = StylePanel(net, images, tmp_path / "results")
    assert [label for label, _ in panel.content.options] == ["none: texture", "brick.png", "chelsea.png",
                                                             "great_wave.jpg"]
    assert panel.content.value == images / "chelsea.png" and panel.styles.value == (images / "great_wave.jpg",)
    assert list(panel.statistic.options) == list(STATISTICS)
    assert list(panel.layer_weights) == list(STYLE_LAYERS)
    assert [value for _, value in panel.init.options] == ["auto", "content", "noise", "style",
                                                          images / "brick.png", images / "chelsea.png",
                                                          images / "great_wave.jpg"]
    monkeypatch.setitem(STATISTICS, "brand_new", STATISTICS["gram"])
    assert "brand_new" in StylePanel(net, images, tmp_path).statistic.options


def test_texture_choice_shows_its_label_and_switches_content_weight_off(net, images: Path, tmp_path: Path) -> None:
    """'none: texture' is a real menu value (None would leave the menu blank in the browser)."""
    panel = StylePanel(net, images, tmp_path)
    panel.content.value = TEXTURE
    assert panel.content.label == "none: texture" and panel.content.index == 0
    assert panel.content_weight.disabled and panel.settings().content is None
    assert "content_weight" not in panel.settings().options
    panel.content.value = images / "brick.png"
    assert not panel.content_weight.disabled and panel.settings().options["content_weight"] == 1.0


def test_settings_follow_the_widgets(net, images: Path, tmp_path: Path) -> None:
    panel = StylePanel(net, images, tmp_path)
    assert "layer_weights" not in panel.settings().options  # synthesize's default weights
    panel.layer_weights["conv2_1"].value = 0.0
    panel.layer_weights["conv5_1"].value = 0.5
    panel.style_weight.value = 1e4
    panel.statistic.value = "mean_cov"
    settings = panel.settings()
    assert settings.options["style_layers"] == ["conv1_1", "conv3_1", "conv4_1", "conv5_1"]
    inverse_squares = [1 / 64**2, 1 / 256**2, 1 / 512**2, 1 / 512**2]  # N_l of the four layers left
    defaults = [w / sum(inverse_squares) for w in inverse_squares]
    assert settings.options["layer_weights"] == pytest.approx([defaults[0], defaults[1], defaults[2], 0.5 * defaults[3]],
                                                              rel=5e-3)  # 3 significant digits
    assert settings.options["tv_weight"] == LossConfig.tv_weight  # on, at synthesize's default
    assert settings.options["style_weight"] == pytest.approx(1e4) and settings.options["statistic"] == "mean_cov"
    assert "style_scale" not in settings.options and "blend_weights" not in settings.options


def test_switches_enable_their_sliders(net, images: Path, tmp_path: Path) -> None:
    """TV weight and style scale are greyed out (and not used) while their boxes are unticked."""
    panel = StylePanel(net, images, tmp_path)
    assert not panel.tv_weight.disabled and panel.style_scale.disabled  # TV is on by default
    panel.tv_on.value = False
    assert panel.tv_weight.disabled and panel.settings().options["tv_weight"] == 0.0
    panel.tv_on.value = True
    panel.tv_weight.value = 125892541.17941673  # a log slider's value, shown as 1.26e+08
    assert not panel.tv_weight.disabled and panel.settings().options["tv_weight"] == 1.26e8
    panel.scale_on.value = True
    panel.style_scale.value = 1.5
    assert not panel.style_scale.disabled and panel.settings().options["style_scale"] == 1.5
    panel.tv_on.value = panel.scale_on.value = False
    assert panel.tv_weight.disabled and panel.settings().options["tv_weight"] == 0.0
    assert "style_scale" not in panel.settings().options


def test_blend_weights_one_slider_per_chosen_style(net, images: Path, tmp_path: Path) -> None:
    panel = StylePanel(net, images, tmp_path)
    assert panel.blend_box.children == ()  # one style: nothing to blend
    two = (images / "great_wave.jpg", images / "brick.png")
    panel.styles.value = two
    sliders = [panel.blend[p] for p in two]
    assert list(panel.blend_box.children[1:]) == sliders
    assert "blend_weights" not in panel.settings().options  # equal weights are the default
    sliders[0].value = 3.0
    assert panel.settings().options["blend_weights"] == [3.0, 1.0]
    assert "--blend 3 1" in panel.command_text
    panel.styles.value = (images / "brick.png",)
    assert panel.blend_box.children == () and "blend_weights" not in panel.settings().options
    panel.styles.value = two
    assert panel.blend[two[0]].value == 3.0  # kept while the style was unselected


def test_menus_follow_synthesize_keywords(net, images: Path, tmp_path: Path) -> None:
    """precision, scales, preserve_colour: a menu of their Literal values exactly when synthesize has them."""
    parameters = inspect.signature(synthesize).parameters
    panel = StylePanel(net, images, tmp_path)
    assert set(panel.choices) == {k for k in panel_form.CHOICE_OPTIONS if k in parameters}
    for keyword, widget in panel.choices.items():
        assert widget.value == parameters[keyword].default
        assert panel.settings().options[keyword] == widget.value
    if "scales" in panel.choices:
        assert {"auto", "single"} <= set(panel.choices["scales"].options)


def test_colour_widget_appears_with_the_option(net, images: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def with_modes(backbone, *, style, preserve_colour: Literal["none", "luminance", "match"] = "none"):
        raise AssertionError("not called")

    monkeypatch.setattr(synthesis, "synthesize", with_modes)  # what options.synthesize_defaults reads
    panel = StylePanel(net, images, tmp_path)
    assert list(panel.preserve_colour.options) == ["none", "luminance", "match"]
    assert panel.preserve_colour.value == "none"
    panel.preserve_colour.value = "luminance"
    assert panel.settings().options["preserve_colour"] == "luminance"
    assert [value for _, value in panel.init.options][0] == "auto"  # no init keyword: only 'auto' and files


def test_uploads_are_stored_and_offered_everywhere(net, images: Path, tmp_path: Path) -> None:
    data = (images / "brick.png").read_bytes()
    panel = StylePanel(net, images, tmp_path / "results")
    panel.content_upload.value = upload_value("mine.png", data)
    stored = tmp_path / "results" / "uploads" / "mine.png"
    assert panel.content.value == stored and stored.read_bytes() == data
    assert stored in dict(panel.styles.options).values() and stored in dict(panel.init.options).values()
    panel.init_upload.value = upload_value("start.png", data)
    assert panel.init.value == tmp_path / "results" / "uploads" / "start.png"
    assert panel.settings().init_image == panel.init.value and "init" not in panel.settings().options
    assert f"--init-image {panel.init.value}" in panel.command_text
    panel.style_upload.value = upload_value("s1.png", data) + upload_value("s2.png", data)
    assert [p.name for p in panel.styles.value] == ["s1.png", "s2.png"]
    assert panel.settings().describe()["style_files"] == ["s1.png", "s2.png"]  # outside the project: names


def test_a_bad_upload_names_the_upload_not_a_file(net, images: Path, tmp_path: Path) -> None:
    panel = StylePanel(net, images, tmp_path / "results")
    before = panel.content.options
    panel.content_upload.value = upload_value("holiday.png", b"this is text, not a picture")
    assert "The upload holiday.png" in panel.status.value and "#b00" in panel.status.value
    assert "uploads" not in panel.status.value and panel.content.options == before
    assert list((tmp_path / "results" / "uploads").iterdir()) == []


def test_run_button_path_preview_curve_and_save(net, images: Path, tmp_path: Path) -> None:
    """start() (the Run button) runs in a thread; the preview, loss curve, progress and Save follow."""
    panel = tiny(StylePanel(net, images, tmp_path / "results", preview_every=2, preview_width=48))
    assert panel.preview.layout.display == "none" and panel.curve.value == ""  # no broken image before a run
    panel.start()
    panel.wait(timeout=120)
    assert not panel.running and panel.error == ""
    assert panel.result is not None and len(panel.result.history) == 4
    assert panel.progress.value == 4 and "done" in panel.status.value
    assert panel.preview.layout.display is None and Image.open(io.BytesIO(panel.preview.value)).width == 48
    assert panel.curve.value.count("<polyline") == 1 and "after 4 evaluations" in panel.curve.value
    assert panel.run_button.disabled is False and panel.stop_button.disabled and not panel.save_button.disabled
    panel.preview_width.value = 256
    assert Image.open(io.BytesIO(panel.preview.value)).width == 256

    proposed = shlex.split(panel.command_text)
    first = panel.save()
    assert proposed[proposed.index("-o") + 1] == str(first)  # the Command tab names the file Save writes
    proposed = shlex.split(panel.command_text)
    second = panel.save()
    assert proposed[proposed.index("-o") + 1] == str(second)
    assert first.name == "panel_chelsea_great_wave_64px.png" and second.name == "panel_chelsea_great_wave_64px_2.png"
    meta = read_metadata(first)
    # the images lie outside the project (the current folder): the metadata names the files alone
    assert meta["num_steps"] == 4 and "stopped" not in meta and meta["content_file"] == "chelsea.png"
    assert meta["style_files"] == ["great_wave.jpg"] and meta["backbone"]["name"] == "random"
    assert shlex.split(meta["command"])[-4:] == ["--arch", "vgg16", "--steps", "4"]
    torch.testing.assert_close(load_image(first), load_image(second))


def test_stopped_run_is_saved_with_the_evaluations_done(net, images: Path, tmp_path: Path) -> None:
    panel = tiny(StylePanel(net, images, tmp_path, preview_every=1), steps=200)
    panel.content.value = TEXTURE
    stop_at(panel, 3)
    panel.start()
    panel.wait(timeout=120)
    assert panel.result is not None and panel.result.stopped == "stopped by the user"
    assert len(panel.result.history) == 3 and panel.status.value.count("stopped") == 1
    assert "callback" not in panel.status.value
    assert torch.isfinite(panel.result.image).all() and not panel.save_button.disabled
    meta = read_metadata(panel.save())
    assert meta["num_steps"] == 3 and meta["num_steps_requested"] == 200 and meta["stopped"] == panel.result.stopped


def test_the_previous_result_can_start_the_next_run(net, images: Path, tmp_path: Path) -> None:
    """After a run, 'the previous result' appears among the starts and is the next run's first image."""
    panel = tiny(StylePanel(net, images, tmp_path), steps=2)
    assert PREVIOUS not in dict(panel.init.options).values()
    panel.start()
    panel.wait(timeout=120)
    panel.init.value = PREVIOUS
    panel.steps.value = 1
    first = []
    callback = panel._callback
    panel._callback = lambda info: first.append(info.image.detach().cpu().clone()) or callback(info)
    previous = panel.result.image
    panel.start()
    panel.wait(timeout=120)
    assert panel.error == "" and panel.result.params["init"] == "image"
    torch.testing.assert_close(first[0], previous)


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


def test_long_errors_wrap_inside_the_panel() -> None:
    """A long message is escaped and wraps (and scrolls) inside its column instead of widening it."""
    line = status_html("ValueError: " + "x" * 2000 + " <b>", error=True)
    assert "overflow-wrap:anywhere" in line and "max-height" in line and "&lt;b&gt;" in line


def test_the_command_tab_follows_the_widgets(net, images: Path, tmp_path: Path) -> None:
    panel = StylePanel(net, images, tmp_path / "results")
    panel.statistic.value = "mean"
    command = panel.command_text
    assert "--statistic mean" in command and "--size 192" in command
    args = cli.build_parser().parse_args(shlex.split(command)[1:])
    assert args.statistic == "mean" and args.output == tmp_path / "results" / "panel_chelsea_great_wave_192px.png"
    panel.command_size.value = 1024
    assert "--size 1024" in panel.command_text and "_1024px.png" in panel.command_text
    data_text = re.search(r'data-text="([^"]*)"', panel.copy.value).group(1)
    assert html.unescape(data_text) == panel.command_text
    panel.save_name.value = "my cat.png"  # a typed name: Save writes my_cat.png, and the command says so
    assert panel.save_path() == tmp_path / "results" / "my_cat.png"
    assert f"-o {tmp_path / 'results' / 'my_cat_1024px.png'} " in panel.command_text
    panel.command_size.value = 0
    assert f"-o {panel.save_path()} " in panel.command_text


def test_panel_loads_its_own_network(images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no network given, the first run loads the named backbone (once per process)."""
    loads = []
    real = panel_module.load_backbone
    monkeypatch.setattr(panel_module, "_networks", {})
    monkeypatch.setattr(panel_module, "load_backbone",
                        lambda name, **kw: loads.append(name) or real(name, arch="vgg16", **kw))
    panel = tiny(StylePanel(None, images, tmp_path, backbone="random"), steps=2)
    assert "--backbone random" in panel.command_text and "--arch" not in panel.command_text
    panel.start()
    panel.wait(timeout=120)
    assert panel.error == "" and panel.net is not None and "--arch vgg16" in panel.command_text
    again = tiny(StylePanel(None, images, tmp_path, backbone="random"), steps=1)
    again.start()
    again.wait(timeout=120)
    assert again.net is panel.net and loads == ["random"]


def test_showing_a_panel_again_stops_the_old_run(net, images: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Re-running the notebook cell: the old panel's run ends and its widgets close."""
    monkeypatch.setattr(panel_module, "front_end_connected", lambda: True)
    monkeypatch.setattr(panel_module, "_shown", [])
    old = show_panel(images, tmp_path, net=net, preview_every=1)
    tiny(old, steps=1000)
    running = threading.Event()
    callback = old._callback
    old._callback = lambda info: running.set() or callback(info)
    old.start()
    assert running.wait(timeout=60)
    new = show_panel(images, tmp_path, net=net)
    assert not old.running and old.result is not None and old.result.stop.kind == "callback"
    assert len(old.result.history) < 1000 and old.widget.comm is None  # closed
    assert panel_module._shown == [new]
    monkeypatch.setattr(panel_module, "front_end_connected", lambda: False)
    assert show_panel(images, tmp_path, net=net) is None and panel_module._shown == []


def test_loss_curve_svg_draws_the_lowest_loss_so_far_on_a_log_axis() -> None:
    """A line search's trial (1e6 here) neither shows nor sets the axis: the curve is the running
    minimum (itertools.accumulate as reference), the axis spans the first to the lowest loss."""
    assert loss_curve_svg([]) == "" and loss_curve_svg([5.0]) == ""
    losses = [100.0, 10.0, math.nan, 1e6, 1.0]
    svg = loss_curve_svg(losses, width=200, height=100)
    points = [tuple(map(float, p.split(","))) for p in
              re.search(r"<polyline points='([^']*)'", svg).group(1).split()]
    best = list(itertools.accumulate([100.0, 10.0, math.inf, 1e6, 1.0], min))
    assert len(points) == len(best) == 5
    ys = [y for _, y in points]
    assert ys[1] == ys[2] == ys[3] and ys[0] < ys[1] < ys[4]  # flat through the NaN and the trial
    assert ys[1] - ys[0] == pytest.approx(ys[4] - ys[1])  # log axis: each factor 10 the same height
    assert ">100<" in svg and ">1<" in svg and "1e+06" not in svg and "after 5 evaluations" in svg
    assert min(y for _, y in points) >= 8 and max(y for _, y in points) <= 100 - 18  # inside the frame


def test_command_box_breaks_lines_only_between_words() -> None:
    """Each word of the command is one unbreakable span, and the words read back as the command."""
    text = "neural-style images/chelsea.png 'my style.jpg' -o results/x_1024px.png --size 1024 --tv-weight 1e-4"
    box = command_html(text)
    words = re.findall(r"<span style='white-space:nowrap'>([^<]*)</span>", box)
    assert shlex.split(html.unescape(" ".join(words))) == shlex.split(text)
    assert "--size" in words and "--tv-weight" in words and "word-break:normal" in box


def test_copy_button_carries_any_text() -> None:
    text = """neural-style 'a b.png' "c".png -o x.png && echo <done>"""
    button = copy_button(text)
    assert html.unescape(re.search(r'data-text="([^"]*)"', button).group(1)) == text
    assert "navigator.clipboard.writeText" in html.unescape(button)


def test_upload_values_of_both_widget_versions() -> None:
    assert uploaded_files(upload_value("a.png", b"12")) == [("a.png", b"12")]
    assert uploaded_files({"b.jpg": {"metadata": {}, "content": b"34"}}) == [("b.jpg", b"34")]


def test_front_end_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    """No kernel here (pytest): head-less, unless the environment variable says otherwise."""
    monkeypatch.delenv("NEURAL_STYLE_PANEL", raising=False)
    assert front_end_connected() is False
    monkeypatch.setenv("NEURAL_STYLE_PANEL", "1")
    assert front_end_connected() is True
    monkeypatch.setenv("NEURAL_STYLE_PANEL", "0")
    monkeypatch.setenv("JPY_SESSION_NAME", "x.ipynb")
    assert front_end_connected() is False
