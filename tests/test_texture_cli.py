"""The ``neural-style-texture-net`` command as a hostile user meets it: outputs checked before any
work (1), saves that never lose or damage a file (2), sizes and memory (3), signals (4).

Tiny runs: the random VGG19, 32 px, 3 scales, 2 steps of one sample; for sample and stylize an
untrained generator of width 4 written by ``save_texture_network``.
"""

from __future__ import annotations

import errno
import os
import signal
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from neural_style.app.cli import texture, texture_preflight
from neural_style.core.images import load_image, read_metadata, save_image
from neural_style.core.outputs import write_atomically
from neural_style.texture_nets.network import (GeneratorConfig, TextureNetwork, load_texture_network,
                                               read_training, save_texture_network)

TRAIN = ["--backbone", "random", "--size", "32", "--steps", "2", "--batch", "1", "--scales", "3"]


def _picture(path: Path, seed: int = 0, shape: tuple[int, int] = (40, 48)) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8)).save(path)
    return path


def _never(name: str):
    def fail(*args, **kwargs):
        raise AssertionError(f"{name} must not be reached")
    return fail


def _cli(*args: str | Path) -> int:
    return texture.main([str(a) for a in args])


@pytest.fixture()
def style(tmp_path: Path) -> Path:
    return _picture(tmp_path / "style.png", 1)


@pytest.fixture()
def texture_net(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return save_texture_network(TextureNetwork(GeneratorConfig(scales=3, width=4)), tmp_path / "tex.pt")


@pytest.fixture()
def stylization_net(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return save_texture_network(TextureNetwork(GeneratorConfig(scales=3, width=4, content=True)), tmp_path / "sty.pt")


@pytest.fixture()
def no_training(monkeypatch):
    """Neither the backbone nor an image may be loaded: every refusal here comes before them."""
    monkeypatch.setattr(texture, "load_backbone", _never("load_backbone"))
    monkeypatch.setattr(texture, "load_image", _never("load_image"))


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------------------------------------------------
# 1. Outputs, checked before any training or sampling


@pytest.mark.parametrize("kind, message", [
    ("exists", "exists; pass --overwrite"),
    ("folder", "is a folder"),
    ("under a file", "is a file, not a folder"),
    ("read-only", "Read-only file system"),
    ("name too long", "bytes long; file systems allow at most 255"),
    ("the style", "would replace the input"),
])
def test_train_output_is_checked_before_training(tmp_path, style, no_training, monkeypatch, capsys, kind, message):
    """Exit 5 before the backbone or the style is loaded; an existing file is unchanged; no traceback."""
    out = tmp_path / "net.pt"
    extra: list[str] = []
    if kind == "exists":
        out.write_bytes(b"old weights")
    elif kind == "folder":
        out.mkdir()
    elif kind == "under a file":
        out = style / "net.pt"
    elif kind == "read-only":
        monkeypatch.setattr(tempfile, "mkstemp", lambda *a, **k: (_ for _ in ()).throw(
            OSError(errno.EROFS, os.strerror(errno.EROFS))))
    elif kind == "name too long":
        out = tmp_path / ("n" * 300 + ".pt")
    else:
        out = style.with_suffix(".pt")
        style.rename(out)
        style, extra = out, ["--overwrite"]
    before = _files(tmp_path)
    assert _cli("train", style, "-o", out, *TRAIN, *extra) == 5
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert _files(tmp_path) == before
    if kind == "exists":
        assert out.read_bytes() == b"old weights"


def test_train_overwrite_replaces_and_a_missing_folder_is_created(tmp_path, style):
    """As ``neural-style -o missing/out.png``: the missing folders are made when the result is written."""
    out = tmp_path / "new" / "sub" / "net.pt"
    assert _cli("train", style, "-o", out, *TRAIN) == 0
    assert load_texture_network(out).config.scales == 3
    out.write_bytes(b"old")
    assert _cli("train", style, "-o", out, *TRAIN, "--overwrite") == 0
    assert len(read_training(out)["history"]) == 2 and _files(out.parent) == ["net.pt"]


def test_stylize_never_writes_over_its_photo(tmp_path, stylization_net, monkeypatch, capsys):
    monkeypatch.setattr(texture, "load_image", _never("load_image"))
    photo = _picture(tmp_path / "photo.png")
    before = photo.read_bytes()
    assert _cli("stylize", stylization_net, photo, "-o", photo, "--overwrite") == 5
    assert "would replace the input" in capsys.readouterr().err and photo.read_bytes() == before


def test_stylize_output_exists_is_refused_then_overwritten(tmp_path, stylization_net, capsys):
    photo, out = _picture(tmp_path / "photo.png"), tmp_path / "out.png"
    out.write_bytes(b"old")
    assert _cli("stylize", stylization_net, photo, "-o", out, "--size", "32") == 5
    assert "--overwrite" in capsys.readouterr().err and out.read_bytes() == b"old"
    assert _cli("stylize", stylization_net, photo, "-o", out, "--size", "32", "--overwrite") == 0
    assert load_image(out).shape == (1, 3, 27, 32)


def test_sample_existing_outputs_refused_skipped_or_replaced(tmp_path, texture_net, capsys):
    """OUT_2 exists: refused (exit 5, kept); --skip-existing makes only OUT_1 and OUT_3 (a complete
    OUT_2 is kept, an unreadable one made again); sample i is the sample of seed SEED + i, so
    --seed 4 remakes OUT_2 of --seed 3 alone."""
    out = tmp_path / "s.png"
    save_image(torch.full((1, 3, 24, 24), 0.5), tmp_path / "s_2.png", {"task": "texture_network_sample"})
    old = (tmp_path / "s_2.png").read_bytes()
    args = ["sample", texture_net, "-o", out, "--size", "24", "--count", "3", "--seed", "3"]
    assert _cli(*args) == 5
    assert "--skip-existing" in capsys.readouterr().err and _files(tmp_path) == ["s_2.png", "tex.pt"]
    assert _cli(*args, "--skip-existing") == 0
    assert (tmp_path / "s_2.png").read_bytes() == old
    assert [read_metadata(tmp_path / f"s_{i}.png")["seed"] for i in (1, 3)] == [3, 5]
    (tmp_path / "s_2.png").write_bytes(b"half a PNG")
    assert _cli(*args, "--skip-existing") == 0 and "made again" in capsys.readouterr().err
    assert read_metadata(tmp_path / "s_2.png")["seed"] == 4
    assert _cli(*args, "--overwrite") == 0
    alone = tmp_path / "alone.png"
    assert _cli("sample", texture_net, "-o", alone, "--size", "24", "--seed", "4") == 0
    assert torch.equal(load_image(alone), load_image(tmp_path / "s_2.png"))
    with pytest.raises(SystemExit) as info:
        _cli(*args, "--overwrite", "--skip-existing")
    assert info.value.code == 2


def test_the_wrong_kind_of_network_is_named(tmp_path, texture_net, stylization_net, capsys):
    photo = _picture(tmp_path / "photo.png")
    assert _cli("stylize", texture_net, photo, "-o", tmp_path / "o.png") == 3
    assert "holds a texture network; use 'neural-style-texture-net sample" in capsys.readouterr().err
    assert _cli("sample", stylization_net, "-o", tmp_path / "o.png") == 3
    assert "holds a stylization network" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


# ------------------------------------------------------------------------------------------------
# 2. Saves: unique temporaries, atomic replace, a failed save reported, the weights rescued


def _failing_fsync(monkeypatch, folder: Path):
    """Simulate a full disk in ``folder``: flushing a file there fails with ENOSPC."""
    real = os.fsync

    def fsync(fd: int) -> None:
        if Path(os.readlink(f"/proc/self/fd/{fd}")).parent == folder:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)
    monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to see where a file is")
@pytest.mark.parametrize("rescue", ["in the temporary folder", "nowhere"])
def test_a_failed_final_save_keeps_the_old_file_and_rescues_the_weights(tmp_path, style, monkeypatch, capsys,
                                                                        rescue):
    """The disk of the output fills during the final save: exit 5, the message names the error and the
    rescue file (written to the system's temporary folder), the old file is unchanged, no temporary is left."""
    folder, spare = tmp_path / "out", tmp_path / "spare"
    folder.mkdir()
    spare.mkdir()
    out = folder / "net.pt"
    out.write_bytes(b"old weights")
    _failing_fsync(monkeypatch, folder)
    monkeypatch.setattr(tempfile, "tempdir", str(spare if rescue != "nowhere" else folder))
    assert _cli("train", style, "-o", out, *TRAIN, "--overwrite") == 5
    err = capsys.readouterr().err
    assert f"Cannot write {out}: No space left on device" in err and "Traceback" not in err
    assert out.read_bytes() == b"old weights" and _files(folder) == ["net.pt"]
    if rescue == "nowhere":
        assert "could not be kept elsewhere either" in err and _files(spare) == []
    else:
        [kept] = spare.iterdir()
        assert f"kept in {kept}" in err and kept.name.startswith("net-rescued-")
        assert len(read_training(kept)["history"]) == 2 and load_texture_network(kept).config.scales == 3


def test_a_failed_sample_save_keeps_those_written(tmp_path, texture_net, monkeypatch, capsys):
    """The disk fills at the third sample: exit 5, the two before it stay, nothing half-written."""
    from neural_style.core import images

    real, calls = images.to_pil, []

    def to_pil(image):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(image)
    monkeypatch.setattr(images, "to_pil", to_pil)
    out = tmp_path / "s" / "s.png"
    assert _cli("sample", texture_net, "-o", out, "--size", "16", "--count", "4") == 5
    err = capsys.readouterr().err
    assert f"Cannot write {out.parent / 's_3.png'}: No space left on device; 2 file(s) written" in err
    assert _files(out.parent) == ["s_1.png", "s_2.png"]


def test_two_writers_to_one_file_never_share_a_temporary(tmp_path):
    """Eight threads each replace one file 20 times with their own bytes: every read finds one writer's
    complete content, and no temporary is left."""
    path, contents = tmp_path / "net.pt", [bytes([i]) * 200_000 for i in range(8)]
    errors: list[BaseException] = []

    def write(data: bytes) -> None:
        try:
            for _ in range(20):
                write_atomically(path, data, overwrite=True)
                assert path.read_bytes() in contents
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
    threads = [threading.Thread(target=write, args=(c,)) for c in contents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and _files(tmp_path) == ["net.pt"]
    with pytest.raises(FileExistsError):
        write_atomically(path, b"new")
    assert path.read_bytes() in contents


# ------------------------------------------------------------------------------------------------
# 3. Sizes, counts and memory, refused before anything is allocated


@pytest.mark.parametrize("args, message", [
    (["--size", "100000"], r"Training on batches of 1 at 100000x100000 px needs about .* GiB .*use a smaller --size"),
    (["--batch", "100000"], r"needs about .* GiB .*or a smaller --batch"),
    (["--scales", "24"], r"24 scales generate at least 16777216x16777216 px .* use fewer --scales"),
    (["--style-size", "200000"], r"The style image at .* needs about .* use a smaller --style-size"),
    (["--size", "8"], "is 8x8 px, too small for layer conv5_1"),
])
def test_train_sizes_are_refused_before_any_work(tmp_path, style, no_training, monkeypatch, capsys, args, message):
    import re

    monkeypatch.setattr(texture_preflight, "save_texture_network", _never("save"))
    argv = [*TRAIN, *args]
    assert _cli("train", style, "-o", tmp_path / "net.pt", *argv) == 3
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "net.pt").exists()


@pytest.mark.parametrize("args, message", [
    (["--size", "100000"], "A sample of 100000x100000 px needs about"),
    (["--size", "40", "100000000"], "A sample of 40x100000000 px needs about"),
    (["--count", "100000000"], "--count 100000000 is more than 10000 samples in one run"),
])
def test_sample_sizes_and_counts_are_refused_before_any_work(tmp_path, texture_net, monkeypatch, capsys, args,
                                                             message):
    """Exit 3 without generating any noise (and, for the count, before even the network is read)."""
    monkeypatch.setattr(TextureNetwork, "noise", _never("noise"))
    if "--count" in args:
        monkeypatch.setattr(texture, "load_texture_network", _never("load_texture_network"))
    assert _cli("sample", texture_net, "-o", tmp_path / "s.png", *args) == 3
    assert message in capsys.readouterr().err
    assert _files(tmp_path) == ["tex.pt"]


def test_stylize_size_is_refused_before_the_photo_is_decoded(tmp_path, stylization_net, monkeypatch, capsys):
    monkeypatch.setattr(texture, "load_image", _never("load_image"))
    photo = _picture(tmp_path / "photo.png")
    assert _cli("stylize", stylization_net, photo, "-o", tmp_path / "o.png", "--size", "100000") == 3
    assert "Stylizing at 83333x100000 px needs about" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["train", "{style}", "-o", "n.pt", "--lr", "nan"], "lr must be a finite number > 0, got nan"),
    (["train", "{style}", "-o", "n.pt", "--seed", str(2**70)], "seed must be an integer from -2**63"),
    (["train", "{style}", "-o", "n.pt", "--photos", "{style}", "--style-weight", "-1"], "style_weight must be"),
    (["sample", "{tex}", "-o", "s.png", "--seed", str(2**64 - 2), "--count", "3"], "seed must be an integer"),
])
def test_bad_values_are_refused_before_any_work(tmp_path, style, texture_net, no_training, monkeypatch, capsys,
                                                argv, message):
    """Exit 3 before the backbone, an image or (for sample) any noise; nothing written."""
    monkeypatch.setattr(TextureNetwork, "noise", _never("noise"))
    monkeypatch.chdir(tmp_path)
    assert texture.main([a.format(style=style, tex=texture_net) for a in argv]) == 3
    assert message in capsys.readouterr().err and _files(tmp_path) == ["style.png", "tex.pt"]


@pytest.mark.parametrize("argv", [["train", "S", "-o", "n.pt", "--steps", "0"], ["sample", "W", "-o", "o.png",
                                  "--count", "0"], ["sample", "W", "-o", "o.png", "--size", "1", "2", "3"],
                                  ["stylize", "W", "P", "-o", "o.txt"]])
def test_bad_values_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as info:
        texture.main(argv)
    assert info.value.code == 2


# ------------------------------------------------------------------------------------------------
# 4. Signals: 128 + the signal's number, what can be kept written completely


def test_signal_before_the_first_step_writes_nothing(tmp_path, style, monkeypatch, capsys):
    """SIGHUP while the backbone loads: exit 129, nothing on disk (not even the output's new folder)."""
    real = texture.load_backbone

    def loading(*args, **kwargs):
        signal.raise_signal(signal.SIGHUP)
        return real(*args, **kwargs)
    monkeypatch.setattr(texture, "load_backbone", loading)
    assert _cli("train", style, "-o", tmp_path / "new" / "net.pt", *TRAIN) == 129
    assert "interrupted (SIGHUP) before anything was written" in capsys.readouterr().err
    assert _files(tmp_path) == ["style.png"]
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL  # the handlers are restored


class _SignalAt:
    """A progress bar that raises ``signum`` at step ``step`` (the training's callback calls update)."""

    def __init__(self, signum: int, step: int) -> None:
        self.signum, self.step = signum, step

    def __call__(self, *args, **kwargs) -> _SignalAt:
        return self

    def update(self, step: int, *args) -> None:
        if step == self.step:
            signal.raise_signal(self.signum)

    def close(self) -> None:
        pass


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_signal_during_training_saves_the_best_weights(tmp_path, style, monkeypatch, capsys, signum, code):
    monkeypatch.setattr(texture, "Bar", _SignalAt(signum, 2))
    out = tmp_path / "net.pt"
    assert _cli("train", style, "-o", out, "--backbone", "random", "--size", "32", "--steps", "50", "--batch", "1",
                "--scales", "3") == code
    training = read_training(out)
    assert training["stopped"] == "interrupted" and len(training["history"]) == 2
    assert f"interrupted ({signal.Signals(signum).name}): the best weights so far" in capsys.readouterr().err
    assert _files(tmp_path) == ["net.pt", "style.png"]


def test_signals_while_the_weights_are_written_wait_for_the_file(tmp_path, style, monkeypatch, capsys):
    """SIGTERM and then SIGINT during the final save: the complete weights are written, then the run
    ends (the order of two pending signals is not known: the lower-numbered, SIGINT, is recorded),
    no temporary left."""
    real = texture_preflight.save_texture_network

    def signalled(*args, **kwargs):
        signal.raise_signal(signal.SIGTERM)
        signal.raise_signal(signal.SIGINT)
        return real(*args, **kwargs)
    monkeypatch.setattr(texture_preflight, "save_texture_network", signalled)
    out = tmp_path / "net.pt"
    assert _cli("train", style, "-o", out, *TRAIN) == 130
    assert len(read_training(out)["history"]) == 2 and load_texture_network(out).config.scales == 3
    assert "interrupted (SIGINT): the best weights so far (step" in capsys.readouterr().err
    assert _files(tmp_path) == ["net.pt", "style.png"]


def test_signal_during_sampling_keeps_the_samples_written(tmp_path, texture_net, monkeypatch, capsys):
    """SIGTERM while the third of five samples is generated: two complete PNGs, exit 143, the rest named."""
    real, calls = TextureNetwork.sample, []

    def sample(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            signal.raise_signal(signal.SIGTERM)
        return real(self, *args, **kwargs)
    monkeypatch.setattr(TextureNetwork, "sample", sample)
    out = tmp_path / "s.png"
    assert _cli("sample", texture_net, "-o", out, "--size", "16", "--count", "5") == 143
    assert "2 sample(s) written, 3 not made (run the same command with --skip-existing" in capsys.readouterr().err
    assert _files(tmp_path) == ["s_1.png", "s_2.png", "tex.pt"]
    assert all(load_image(tmp_path / f"s_{i}.png").shape == (1, 3, 16, 16) for i in (1, 2))


def test_signal_while_a_sample_is_written_completes_it(tmp_path, texture_net, monkeypatch, capsys):
    from neural_style.core import images

    real = images.to_pil

    def to_pil(image):
        signal.raise_signal(signal.SIGINT)
        return real(image)
    monkeypatch.setattr(images, "to_pil", to_pil)
    out = tmp_path / "s.png"
    assert _cli("sample", texture_net, "-o", out, "--size", "16", "--count", "3") == 130
    assert _files(tmp_path) == ["s_1.png", "tex.pt"] and load_image(tmp_path / "s_1.png").shape == (1, 3, 16, 16)


def test_signal_during_stylize_writes_nothing(tmp_path, stylization_net, monkeypatch, capsys):
    real = TextureNetwork.stylize

    def stylize(self, *args, **kwargs):
        signal.raise_signal(signal.SIGTERM)
        return real(self, *args, **kwargs)
    monkeypatch.setattr(TextureNetwork, "stylize", stylize)
    photo = _picture(tmp_path / "photo.png")
    assert _cli("stylize", stylization_net, photo, "-o", tmp_path / "o.png", "--size", "32") == 143
    assert "nothing to keep" in capsys.readouterr().err and _files(tmp_path) == ["photo.png", "sty.pt"]


def test_signal_while_the_stylized_photo_is_written_completes_it(tmp_path, stylization_net, monkeypatch, capsys):
    from neural_style.core import images

    real = images.to_pil

    def to_pil(image):
        signal.raise_signal(signal.SIGHUP)
        return real(image)
    monkeypatch.setattr(images, "to_pil", to_pil)
    photo, out = _picture(tmp_path / "photo.png"), tmp_path / "o.png"
    assert _cli("stylize", stylization_net, photo, "-o", out, "--size", "32") == 129
    assert f"interrupted (SIGHUP) while {out} was written; it is complete" in capsys.readouterr().err
    assert load_image(out).shape == (1, 3, 27, 32) and _files(tmp_path) == ["o.png", "photo.png", "sty.pt"]


def _mount_tmpfs(folder: Path, size: str) -> bool:
    import subprocess

    folder.mkdir()
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True).returncode == 0


def test_a_disk_too_small_for_the_weights_is_refused_before_training(tmp_path, style, no_training, capsys):
    """A real 48 KiB tmpfs (root only): exit 5 before any work, the message says how much is needed."""
    import subprocess

    small = tmp_path / "small"
    if not _mount_tmpfs(small, "48k"):
        pytest.skip("needs root and mount to make a small file system")
    try:
        assert _cli("train", style, "-o", small / "sub" / "net.pt", *TRAIN) == 5
        import re

        assert re.search(r"it needs about \d+ KiB, but only \d+ KiB is free in", capsys.readouterr().err)
        assert _files(small) == []
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_sigterm_from_outside_saves_the_best_weights(tmp_path, style):
    """A real ``kill -TERM`` to a training (on a pseudo-terminal, to see its progress bar start)."""
    import pty
    import select
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "net.pt"
    args = [sys.executable, "-m", "neural_style.app.cli.texture", "train", str(style), "-o", str(out),
            "--backbone", "random", "--size", "32", "--batch", "1", "--scales", "3", "--steps", "100000"]
    leader, follower = pty.openpty()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root)}
    with subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=follower, env=env) as proc:
        os.close(follower)
        seen, deadline = b"", time.monotonic() + 120
        while b"loss=" not in seen and time.monotonic() < deadline:  # the bar shows a step's loss
            if select.select([leader], [], [], 1)[0]:
                seen += os.read(leader, 4096)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 143
    os.close(leader)
    training = read_training(out)
    assert training["stopped"] == "interrupted" and 1 <= len(training["history"]) < 100000
    assert _files(tmp_path) == ["net.pt", "style.png"]
