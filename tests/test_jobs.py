"""A panel run without widgets: loading and running it, what its PNG records, its command line."""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

import pytest
import torch

from neural_style.app import options
from neural_style.app.cli import main as cli
from neural_style.app.notebook.jobs import (JobSettings, command_line, number, option_arguments, run_settings,
                                            same_value, saved_fields, saved_params, store_upload)
from neural_style.core.images import ImageLoadError, load_image, read_metadata
from neural_style.losses.config import STYLE_LAYERS
from neural_style.net.loading import load_backbone
from neural_style.synthesis.run import synthesize


@pytest.fixture(scope="module")
def net():
    return load_backbone("random", arch="vgg16")


@pytest.fixture()
def images(image_folder) -> Path:
    return image_folder([("chelsea.png", (24, 32, 3)), ("great wave.jpg", (28, 28, 3)), ("brick.png", (16, 16, 3)),
                         ("start.png", (24, 32, 3))])


def parsed_keywords(command: str) -> dict:
    """The synthesize keywords that the real parser reads from ``command``."""
    args = cli.build_parser().parse_args(shlex.split(command)[1:])
    return {o.keyword: getattr(args, o.keyword) for o in options.SYNTHESIS_OPTIONS if hasattr(args, o.keyword)}


def test_run_job_matches_synthesize(net, images: Path) -> None:
    """run_settings loads the images and runs synthesize: the same image as calling synthesize directly."""
    options = {"num_steps": 4, "seed": 3, "statistic": "mean", "style_weight": 100.0}
    steps = []
    result = run_settings(net, JobSettings(styles=[images / "great wave.jpg"], content=images / "chelsea.png", size=32,
                                      options=options), callback=lambda info: steps.append(info.step))
    reference = synthesize(net, style=load_image(images / "great wave.jpg", 32),
                           content=load_image(images / "chelsea.png", 32), **options)
    assert steps == [1, 2, 3, 4]
    torch.testing.assert_close(result.image, reference.image)
    assert result.params == reference.params


def test_run_job_starts_from_an_image_file(net, images: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """init_image replaces options['init']: the first evaluation is at that image, and the metadata
    names it relative to the project (the current folder)."""
    monkeypatch.chdir(images.parent)
    first = []
    settings = JobSettings(styles=[images / "brick.png"], content=images / "chelsea.png", size=32,
                           options={"num_steps": 1, "init": "noise"}, init_image=images / "start.png")
    result = run_settings(net, settings, callback=lambda info: first.append(info.image.detach().clone()))
    torch.testing.assert_close(first[0].cpu(), load_image(images / "start.png", 32))
    assert result.params["init"] == "image"
    assert settings.describe()["init_file"] == f"{images.name}/start.png"
    assert JobSettings(styles=[], init_image=torch.zeros(1, 3, 8, 8)).describe()["init_file"].startswith("the panel")


def test_the_command_renders_the_same_image(net, images: Path, tmp_path: Path) -> None:
    """The command line of a job, run by the real command, writes the image the job produced."""
    settings = JobSettings(
        styles=[images / "great wave.jpg", images / "brick.png"], content=images / "chelsea.png", size=32,
        options={"num_steps": 3, "seed": 5, "style_weight": 300.0, "content_weight": 2.0, "blend_weights": [3.0, 1.0],
                 "style_layers": ["conv1_1", "conv2_1", "conv3_1"], "layer_weights": [0.5, 0.25, 0.25],
                 "tv_weight": 1e-3, "style_scale": 1.5})
    result = run_settings(net, settings)
    out = tmp_path / "out dir" / "cat's.png"
    out.parent.mkdir()
    command, notes = command_line(settings, out, net.info)
    assert notes == [] and "--arch vgg16" in command and "--blend 3 1" in command
    assert cli.main(shlex.split(command)[1:]) == cli.EXIT_OK
    torch.testing.assert_close(load_image(out), result.image, atol=0.5 / 255 + 1e-6, rtol=0)
    assert read_metadata(out)["blend_weights"] == [3.0, 1.0]


def test_command_line_round_trips_through_the_parser(images: Path) -> None:
    """Every kind of option (numbers, lists, a schedule, menus) reads back as the job's value;
    defaults are left out; a texture drops the content-only keywords."""
    options = {"num_steps": 40, "seed": 0, "statistic": "mean_cov", "style_weight": 1e4, "tv_weight": 2.5e-7,
               "style_layers": list(STYLE_LAYERS), "layer_weights": [0.1, 0.2, 0.3, 0.2, 0.2],
               "scales": [(64, 10), (128, 30)], "precision": "fp32", "init": "style", "preserve_colour": "none",
               "content_weight": 1.0}
    settings = JobSettings(styles=[images / "great wave.jpg"], content=images / "chelsea.png", size=96,
                           options=options)
    command, notes = command_line(settings, "out.png", "vgg19")
    assert notes == [] and "'" in command  # the file name with a space is quoted
    back = parsed_keywords(command)
    expected = {k: v for k, v in options.items() if k not in ("seed", "style_layers", "preserve_colour",
                                                              "content_weight")}
    assert back == expected
    assert shlex.split(command)[:5] == ["neural-style", str(images / "chelsea.png"), str(images / "great wave.jpg"),
                                        "-o", "out.png"]
    assert "--backbone vgg19" in command and "--size 96" in command

    texture = JobSettings(styles=[images / "brick.png"], size=64, options={"content_weight": 5.0, "num_steps": 7})
    command, _ = command_line(texture, "t.png")
    assert shlex.split(command)[:3] == ["neural-style", "--texture", str(images / "brick.png")]
    assert parsed_keywords(command) == {"num_steps": 7} and "--backbone" not in command


def test_command_line_says_what_it_cannot_express(images: Path) -> None:
    settings = JobSettings(styles=[images / "brick.png"], options={"masks": [1], "num_steps": 5},
                           init_image=torch.rand(1, 3, 8, 8))
    command, notes = command_line(settings, "t.png")
    assert len(notes) == 2 and "masks" in notes[0] and "previous result" in notes[1]
    assert "--masks" not in command and "--init" not in command


def test_command_line_starts_from_an_image_file(images: Path) -> None:
    settings = JobSettings(styles=[images / "brick.png"], options={"num_steps": 5}, init_image=images / "start.png")
    command, notes = command_line(settings, "t.png")
    assert notes == [] and shlex.split(command)[-2:] == ["--init-image", str(images / "start.png")]


def test_option_words_and_numbers() -> None:
    by_keyword = {o.keyword: o for o in options.SYNTHESIS_OPTIONS}
    assert option_arguments(by_keyword["num_steps"], 300) == ["--steps", "300"]
    assert option_arguments(by_keyword["style_weight"], 1000.0) == ["--style-weight", "1000"]
    assert option_arguments(by_keyword["scales"], "auto") == ["--scales", "auto"]
    switch = options.Option("flip", "a switch", bool)
    assert option_arguments(switch, True) == ["--flip"] and option_arguments(switch, False) == ["--no-flip"]
    for value in (0.1, 1 / 3, 1e-8, 2.5e-7, 123456.789, 1e22):
        assert float(number(value)) == value
    assert number(0.25) == "0.25" and number(1e-4) == "0.0001"
    assert same_value([1, 2], (1, 2)) and not same_value(0, False) and not same_value(None, 0.0)
    assert same_value(1.0, 1) and not same_value(torch.zeros(1), None)


def test_saved_fields_of_a_stopped_run(net, images: Path, tmp_path: Path) -> None:
    """A run stopped after 3 of 50 evaluations is saved with num_steps 3, its budget and why it stopped;
    the fields never replace a parameter (RunResult.save refuses that), the parameters say num_steps 3."""
    settings = JobSettings(styles=[images / "brick.png"], size=32, options={"num_steps": 50})
    result = run_settings(net, settings, callback=lambda info: info.step >= 3)
    fields, params = saved_fields(result, settings, "neural-style ..."), saved_params(result)
    assert params["num_steps"] == 3 and params["num_steps_requested"] == 50 and result.params["num_steps"] == 50
    assert fields["stopped"] == result.stopped != "" and fields["command"] == "neural-style ..."
    assert not set(fields) & set(params)
    path = tmp_path / "stopped.png"
    dataclasses.replace(result, params=params).save(str(path), **fields)
    meta = read_metadata(path)
    # the images lie outside the project (the current folder): their names alone
    assert meta["num_steps"] == 3 and meta["stopped"] == result.stopped and meta["style_files"] == ["brick.png"]
    whole = run_settings(net, JobSettings(styles=[images / "brick.png"], size=32, options={"num_steps": 2}))
    assert saved_params(whole) == whole.params and "stopped" not in saved_fields(whole, settings)


def test_uploads_become_checked_files(images: Path, tmp_path: Path) -> None:
    data = (images / "brick.png").read_bytes()
    folder = tmp_path / "uploads"
    first = store_upload("My Brick.PNG", data, folder)
    assert first == folder / "My_Brick.png"
    torch.testing.assert_close(load_image(first, 16), load_image(images / "brick.png", 16))
    assert store_upload("My Brick.PNG", data, folder) == first  # the same file again: reused
    other = store_upload("My Brick.PNG", (images / "start.png").read_bytes(), folder)
    assert other == folder / "My_Brick_2.png" and first.read_bytes() == data
    with pytest.raises(ImageLoadError) as caught:
        store_upload("notes.png", b"not an image at all", folder)
    assert str(caught.value).startswith("The upload notes.png:") and str(folder) not in str(caught.value)
    assert sorted(p.name for p in folder.iterdir()) == ["My_Brick.png", "My_Brick_2.png"]
