"""The neural-style command: end to end in a subprocess, and main() in-process for its errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
import torch
from PIL import Image

from neural_style import read_metadata
from neural_style.app import options
from neural_style.app.cli import main as cli
from neural_style.core.images import load_image
from neural_style.losses.statistics import STATISTICS

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--backbone", "random", "--size", "32", "--steps", "3"]


@pytest.fixture()
def pictures(tmp_path: Path) -> dict[str, Path]:
    """Two small random RGB images and a folder of two content images."""
    rng = np.random.default_rng(0)
    out: dict[str, Path] = {}
    for name, shape in (("content", (24, 32, 3)), ("style", (30, 30, 3)), ("style2", (20, 28, 3))):
        out[name] = tmp_path / f"{name}.png"
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(out[name])
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(folder / f"{name}.jpg")
    (folder / "notes.txt").write_text("not an image")
    out["folder"] = folder
    return out


def run_cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "neural_style", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_stylization_end_to_end(pictures: dict[str, Path], tmp_path: Path) -> None:
    """python -m neural_style writes the PNG with its parameters, prints its path, exits 0."""
    out = tmp_path / "out.png"
    proc = run_cli(pictures["content"], pictures["style"], pictures["style2"], "-o", out, "--blend", "3", "1",
                   "--seed", "7", "--statistic", "mean_cov", *TINY, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    assert "\r" not in proc.stderr  # no progress bar when stderr is not a terminal
    image = load_image(out)
    assert tuple(image.shape) == (1, 3, 24, 32)  # the content's shape (its long side is already 32)
    meta = read_metadata(out)
    assert meta["backbone"]["name"] == "random"
    assert meta["blend_weights"] == [3.0, 1.0]
    assert meta["statistic"] == "mean_cov" and meta["seed"] == 7 and meta["num_steps"] == 3
    # run from tmp_path, the inputs inside it: recorded relative to it, never as absolute paths
    assert meta["content_file"] == "content.png"
    assert meta["style_files"] == ["style.png", "style2.png"]
    assert meta["command"].startswith("neural-style ")


def test_texture_and_existing_output(pictures: dict[str, Path], tmp_path: Path) -> None:
    """--texture uses every image as a style; an existing output is kept unless --overwrite."""
    out = tmp_path / "texture.png"
    proc = run_cli("--texture", pictures["style"], "-o", out, "--style-size", "24", *TINY, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    meta = read_metadata(out)
    assert meta["content_file"] is None and meta["content_weight"] == 0.0 and meta["init"] == "noise"
    assert tuple(load_image(out).shape[-2:]) == (24, 24)

    before = out.read_bytes()
    proc = run_cli("--texture", pictures["style"], "-o", out, "--seed", "1", *TINY, cwd=tmp_path)
    assert proc.returncode == cli.EXIT_OUTPUT
    assert "exists" in proc.stderr and "--overwrite" in proc.stderr
    assert out.read_bytes() == before

    proc = run_cli("--texture", pictures["style"], "-o", out, "--seed", "1", "--overwrite", *TINY, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert read_metadata(out)["seed"] == 1


def test_folder_of_content_images(pictures: dict[str, Path], tmp_path: Path) -> None:
    """A content folder gives one result per image, named after it, in the output folder."""
    out = tmp_path / "stylized"
    assert cli.main([str(pictures["folder"]), str(pictures["style"]), "-o", str(out), "-q", *TINY]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    assert read_metadata(out / "b.png")["content_file"] == "b.jpg"  # outside the current folder: its name


def test_options_reach_synthesize(pictures: dict[str, Path], tmp_path: Path) -> None:
    """Layers, weights, optimiser, init and TV given on the command line end up in the metadata."""
    out = tmp_path / "o.png"
    code = cli.main([str(pictures["content"]), str(pictures["style"]), "-o", str(out), "-q", *TINY,
                     "--style-layers", "conv1_1", "relu2_1", "--layer-weights", "0.7", "0.3",
                     "--content-layers", "conv3_1", "--content-weight", "2", "--style-weight", "50",
                     "--tv-weight", "0.5", "--tv-exponent", "1", "--optimizer", "adam", "--lr", "0.05",
                     "--init", "noise", "--pooling", "max"])
    assert code == 0
    meta = read_metadata(out)
    assert meta["style_layers"] == ["conv1_1", "relu2_1"] and meta["layer_weights"] == [0.7, 0.3]
    assert meta["content_layers"] == ["conv3_1"]
    assert (meta["content_weight"], meta["style_weight"], meta["tv_weight"], meta["tv_exponent"]) == (2, 50, 0.5, 1)
    assert (meta["optimizer"], meta["lr"], meta["init"]) == ("adam", 0.05, "noise")
    assert meta["backbone"]["pooling"] == "max"


def test_statistic_choices_follow_the_library(monkeypatch: pytest.MonkeyPatch) -> None:
    """A statistic added to STATISTICS becomes a choice of --statistic without touching the CLI."""
    parser = cli.build_parser()
    assert parser.parse_args(["a", "b", "-o", "x.png", "--statistic", "mean"]).statistic == "mean"
    monkeypatch.setitem(STATISTICS, "brand_new", STATISTICS["gram"])
    assert cli.build_parser().parse_args(["a", "b", "-o", "x.png", "--statistic", "brand_new"]).statistic == "brand_new"


def test_help_lists_exit_codes_and_options() -> None:
    text = cli.build_parser().format_help()
    for needle in ("--texture", "--steps", "--backbone", "--seed", "--blend", "--statistic", "--overwrite",
                   "exit codes", "130", "examples"):
        assert needle in text


def test_unset_options_keep_synthesize_defaults(pictures: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    """Only options given on the command line are passed on; the rest are synthesize's defaults."""
    seen: dict = {}

    def fake(net, **kwargs):
        seen.update(kwargs)
        raise ValueError("stop here")

    monkeypatch.setattr(cli, "synthesize", fake)
    code = cli.main([str(pictures["content"]), str(pictures["style"]), "-o", str(tmp_path / "o.png"),
                     "--backbone", "random", "--size", "32", "--steps", "4"])
    assert code == cli.EXIT_INPUT
    assert set(seen) == {"style", "content", "callback", "num_steps"} and seen["num_steps"] == 4


@pytest.mark.parametrize("args, code, message", [
    (["missing.png", "{style}", "-o", "{out}"], cli.EXIT_INPUT, "missing.png: no such file"),
    (["{content}", "{style}", "-o", "{out}", "--style-layers", "conv9_1"], cli.EXIT_INPUT, "Unknown layer 'conv9_1'"),
    (["{content}", "{style}", "-o", "{out}", "--blend", "1", "2"], cli.EXIT_INPUT, "2 blend weights for 1 styles"),
    (["{content}", "{style}", "-o", "{out}", "--style-weight", "-1"], cli.EXIT_INPUT, "style_weight must be"),
    (["{content}", "{style}", "-o", "{out}", "--device", "tpu9"], cli.EXIT_INPUT, "Unknown device 'tpu9'"),
    (["{content}", "{style}", "-o", "{out}", "--backbone", "vgg19", "--weights", "nowhere.pth"],
     cli.EXIT_BACKBONE, "nowhere.pth does not exist"),
    (["{content}", "{folder}", "-o", "{out}"], cli.EXIT_INPUT, "is a directory"),
    (["{content}", "{style}", "-o", "{out}", "--init-image", "nowhere.png"], cli.EXIT_INPUT, "nowhere.png: no such file"),
    (["--texture", "{style}", "-o", "{out}", "--texture-size", "8"], cli.EXIT_INPUT, "The output size is 8x8 px"),
    (["{content}", "{style}", "-o", "{out}", "--save-every", "1"], cli.EXIT_OUTPUT, "for --save-every"),
])
def test_errors_have_messages_and_exit_codes(pictures: dict[str, Path], tmp_path: Path, capsys, args, code,
                                             message) -> None:
    names = {k: str(v) for k, v in pictures.items()} | {"out": str(tmp_path / "o.png")}
    (tmp_path / "o-steps").write_text("a file where --save-every's folder would go")
    argv = [a.format(**names) for a in args] + ["--size", "32", "--steps", "2"]
    if "--backbone" not in args:
        argv += ["--backbone", "random"]
    assert cli.main(argv) == code
    err = capsys.readouterr().err
    assert err.startswith("neural-style: error: ") and message in err
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("args, message", [
    (["only_one.png", "-o", "o.png"], "give a CONTENT image and at least one STYLE"),
    (["a.png", "b.png"], "the following arguments are required: -o/--output"),
    (["a.png", "b.png", "-o", "o.jpg"], "the output must be a .png file"),
    (["a.png", "b.png", "-o", "o.png", "--steps", "many"], "argument --steps: invalid int value: 'many'"),
    (["a.png", "b.png", "-o", "o.png", "--no-such-option"], "unrecognized arguments: --no-such-option"),
    (["a.png", "b.png", "-o", "o.png", "--backbone", "resnet"], "argument --backbone: invalid choice: 'resnet'"),
    (["a.png", "b.png", "-o", "o.png", "--texture-size", "64"], "--texture-size sets the size of a texture"),
    (["a.png", "b.png", "-o", "o.png", "--init", "noise", "--init-image", "a.png"],
     "give either --init noise or --init-image, not both"),
    (["a.png", "b.png", "-o", "o.png", "--save-every", "0"], "argument --save-every: '0' is not a positive whole number of evaluations"),
])
def test_usage_errors_exit_2(args, message, capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(args)
    assert exit_info.value.code == cli.EXIT_USAGE
    assert message in capsys.readouterr().err


def test_usage_error_in_subprocess(tmp_path: Path) -> None:
    proc = run_cli("a.png", "b.png", "-o", "o.png", "--steps", "many", cwd=tmp_path)
    assert proc.returncode == 2
    assert "usage: neural-style" in proc.stderr and "invalid int value: 'many'" in proc.stderr


def test_interrupt_saves_the_best_image(pictures: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                                        tmp_path: Path, capsys) -> None:
    """Ctrl-C during the run: the best image so far is saved and the exit code is 130."""
    real = cli.synthesize

    def interrupted(net, *, callback, **kwargs):
        def press_ctrl_c(info):
            callback(info)
            if info.step == 3:
                raise KeyboardInterrupt
        return real(net, callback=press_ctrl_c, **kwargs)

    monkeypatch.setattr(cli, "synthesize", interrupted)
    out = tmp_path / "o.png"
    code = cli.main([str(pictures["content"]), str(pictures["style"]), "-o", str(out), "--backbone", "random",
                     "--size", "32", "--steps", "50"])
    assert code == cli.EXIT_INTERRUPTED
    meta = read_metadata(out)
    assert meta["stopped"] == "interrupted" and meta["num_steps"] == 50
    assert "stopped early (interrupted)" in capsys.readouterr().err
    assert torch.isfinite(load_image(out)).all()


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_progress_bar_on_a_terminal(pictures: dict[str, Path], tmp_path: Path) -> None:
    """With stderr on a terminal the run draws a tqdm bar; with -q it does not."""
    import pty

    def stderr_on_tty(*extra: str) -> str:
        leader, follower = pty.openpty()
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        args = [sys.executable, "-m", "neural_style", str(pictures["content"]), str(pictures["style"]), "-o",
                str(tmp_path / "o.png"), "--overwrite", *TINY, *extra]
        with subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=follower, env=env) as proc:
            os.close(follower)
            chunks = []
            while True:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:  # the terminal closed when the process ended
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            assert proc.wait(timeout=300) == 0
        os.close(leader)
        return b"".join(chunks).decode(errors="replace")

    assert "eval/s" in stderr_on_tty()  # the bar (unit "eval")
    assert "eval/s" not in stderr_on_tty("-q")


def test_literal_keywords_get_their_values_as_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    """An option whose keyword is annotated Literal[...] takes exactly those values."""
    from neural_style.synthesis import run as synthesis

    def fake(backbone, *, style, preserve_colour: Literal["none", "luminance"] = "none", callback=None):
        raise AssertionError("not called")

    assert options.literal_choices("preserve_colour", fake) == ("none", "luminance")
    assert options.literal_choices("style", fake) is None
    monkeypatch.setattr(synthesis, "synthesize", fake)
    parser = cli.build_parser()
    assert parser.parse_args(["a", "b", "-o", "x.png", "--preserve-colour", "luminance"]).preserve_colour == "luminance"
    with pytest.raises(SystemExit):
        parser.parse_args(["a", "b", "-o", "x.png", "--preserve-colour", "blue"])
    with pytest.raises(SystemExit):  # keywords the function does not take are not offered
        parser.parse_args(["a", "b", "-o", "x.png", "--steps", "3"])


def test_scales_and_precision_reach_synthesize(pictures: dict[str, Path], tmp_path: Path) -> None:
    """A coarse-to-fine schedule given as SIDE:STEPS pairs, and the precision, end up in the metadata."""
    out = tmp_path / "o.png"
    code = cli.main([str(pictures["content"]), str(pictures["style"]), "-o", str(out), "-q", "--backbone", "random",
                     "--size", "32", "--style-layers", "conv1_1", "conv2_1", "--content-layers", "conv2_1",
                     "--scales", "16:2,32:3", "--precision", "fp32"])
    assert code == 0
    meta = read_metadata(out)
    assert meta["scales"] == [[16, 2], [32, 3]] and meta["precision"] == "float32"


@pytest.mark.parametrize("text, expected", [("auto", "auto"), ("single", "single"),
                                            ("64:10,128:20", [(64, 10), (128, 20)])])
def test_parse_scales(text, expected) -> None:
    assert options.parse_scales(text) == expected


def test_bad_scales_are_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["a.png", "b.png", "-o", "o.png", "--scales", "64-10"])
    assert exit_info.value.code == cli.EXIT_USAGE
    assert "like 128:100,256:200" in capsys.readouterr().err


def test_output_written_meanwhile_is_not_replaced(pictures: dict[str, Path], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """A file that appears during the run is kept (the save itself refuses), exit code 5."""
    out = tmp_path / "o.png"
    real = cli.synthesize

    def meanwhile(net, **kwargs):
        out.write_bytes(b"someone else's")  # after the checks, while the run goes on
        return real(net, **kwargs)

    monkeypatch.setattr(cli, "synthesize", meanwhile)
    code = cli.main([str(pictures["content"]), str(pictures["style"]), "-o", str(out), *TINY])
    assert code == cli.EXIT_OUTPUT and out.read_bytes() == b"someone else's"
    assert "--overwrite" in capsys.readouterr().err


def test_masks_assign_each_style_its_region(tmp_path: Path) -> None:
    """--masks: a red style in the white left half of mask 1, a blue one in mask 2's right half."""
    red, blue = tmp_path / "red.png", tmp_path / "blue.png"
    Image.new("RGB", (32, 32), (230, 20, 20)).save(red)
    Image.new("RGB", (32, 32), (20, 20, 230)).save(blue)
    left = np.zeros((16, 16), np.uint8)
    left[:, :8] = 255
    Image.fromarray(left).save(tmp_path / "left.png")  # a smaller mask: resized to the result's size
    Image.fromarray(255 - left).save(tmp_path / "right.png")
    content = tmp_path / "grey.png"
    Image.new("RGB", (32, 32), (128, 128, 128)).save(content)
    out = tmp_path / "masked.png"
    proc = run_cli(content, red, blue, "--masks", tmp_path / "left.png", tmp_path / "right.png", "-o", out,
                   "--content-weight", "0", "--style-layers", "conv1_1", "conv2_1", "--backbone", "random",
                   "--layer-weights", "0.5", "0.5", "--style-weight", "1e3",  # a random network's losses are tiny
                   "--tv-weight", "0",  # ... and the default total variation would outweigh them
                   "--size", "32", "--steps", "30", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    image = load_image(out)[0]
    redness = image[0] - image[2]
    assert redness[:, :12].mean() > redness[:, 20:].mean() + 0.2
    assert read_metadata(out)["masks"] == [pytest.approx(0.5), pytest.approx(0.5)]


def test_normalized_backbone_is_recorded(pictures: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "normalized.png"
    env_cache = tmp_path / "cache"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "NEURAL_STYLE_CACHE": str(env_cache)}
    proc = subprocess.run([sys.executable, "-m", "neural_style", str(pictures["content"]), str(pictures["style"]),
                           "-o", str(out), "--normalized", "--arch", "vgg16", *TINY], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert read_metadata(out)["backbone"]["normalized"] is True


def test_texture_size_init_image_and_snapshots(pictures: dict[str, Path], tmp_path: Path) -> None:
    """--texture-size makes a texture larger than its source (with the source's aspect ratio),
    --save-every N writes the current image every N evaluations beside the result, and
    --init-image starts a run from any image, resized to the result's size."""
    big = tmp_path / "big.png"
    assert cli.main(["--texture", str(pictures["style2"]), "-o", str(big), "-q", "--texture-size", "56",
                     "--save-every", "2", *TINY[:4], "--steps", "4"]) == 0
    assert tuple(load_image(big).shape) == (1, 3, 40, 56)  # style2 is 20 x 28
    frames = sorted((tmp_path / "big-steps").iterdir())
    assert [f.name for f in frames] == ["big-00002.png", "big-00004.png"]
    assert read_metadata(frames[0])["step"] == 2

    seen: dict = {}

    def fake_synthesize(net, **keywords):
        seen.update(keywords)
        raise ValueError("stop here")

    out = tmp_path / "out.png"
    original = cli.synthesize
    cli.synthesize = fake_synthesize
    try:
        assert cli.main([str(pictures["content"]), str(pictures["style"]), "-o", str(out), "-q",
                         "--init-image", str(big), *TINY]) == cli.EXIT_INPUT
    finally:
        cli.synthesize = original
    torch.testing.assert_close(seen["init"], load_image(big))


def test_progress_lines_on_a_log_and_image_k_of_n(pictures: dict[str, Path], tmp_path: Path) -> None:
    """With stderr a file (a log, nohup) the command prints a progress line every tenth of the
    budget; in folder mode each names the image's place in the batch."""
    proc = run_cli(pictures["folder"], pictures["style"], "-o", tmp_path / "out", "--backbone", "random",
                   "--size", "32", "--steps", "20", "--optimizer", "adam", cwd=tmp_path)  # Adam never ends early
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if ": evaluation " in line]
    assert lines[0].startswith("neural-style: a.png (image 1 of 2): evaluation 1 of 20, best loss ")
    assert [line.split(": evaluation ")[1].split(" of")[0] for line in lines if "image 2 of 2" in line] == \
        ["1", "3", "5", "7", "9", "11", "13", "15", "17", "19", "20"]
