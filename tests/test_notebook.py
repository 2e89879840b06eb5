"""Both notebooks run top to bottom with tiny parameters, write their figures and results, and read
well without running: no progress bar frozen at 0% and no control character, in the notebooks or
in their HTML export."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from neural_style.core.images import read_metadata

papermill = pytest.importorskip("papermill")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ("style_transfer.ipynb", "extensions.ipynb")
HOMEWORK_FIGURES = ["feature_maps.png", "fig_texture.png", "fig_stylized.png", "fig_losses.png",
                    "fig_compare_textures.png", "fig_compare_stylizations.png", "fig_compare_curves.png",
                    "fig_blend.png", "fig_adversarial_textures.png", "fig_adversarial_moments.png",
                    "fig_adversarial_stylized.png", "fig_adversarial_losses.png"]
EXTENSION_FIGURES = ["fig_colour.png", "fig_masks.png", "fig_mmd_kernels.png", "fig_histogram.png",
                     "fig_optimal_transport.png", "fig_style_scale.png", "fig_inversion.png",
                     "fig_normalised_losses.png", "fig_normalised_textures.png", "fig_texture_network_training.png",
                     "fig_texture_network_samples.png", "fig_texture_network_wide.png",
                     "fig_texture_network_vs_optimisation.png", "fig_stylization_network.png",
                     "fig_stylization_network_512.png"]
FROZEN_BAR = re.compile(r"\b0%\|")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # what a lost backslash leaves (\t of \top, \n of \nabla)
TINY: dict[str, dict[str, Any]] = {
    "style_transfer.ipynb": {"backbone": "random", "image_size": 40, "num_steps": 4, "compare_size": 32,
                             "compare_steps": 3, "table_size": 32, "table_steps": 3, "adv_size": 32, "adv_steps": 3,
                             "seeds": 2},
    "extensions.ipynb": {"backbone": "random", "compare_size": 32, "compare_steps": 3, "texture_net_steps": 2},
}


def _static_faults(notebook: dict[str, Any]) -> list[str]:
    """Markdown cells with a control character, and outputs whose saved text is a bar at 0%."""
    faults = [f"markdown cell {i} has a control character" for i, cell in enumerate(notebook["cells"])
              if cell["cell_type"] == "markdown" and CONTROL.search("".join(cell["source"]))]
    faults += [f"cell {i} saves a progress bar at 0%" for i, cell in enumerate(notebook["cells"])
               for output in cell.get("outputs", [])
               if FROZEN_BAR.search("".join(output.get("data", {}).get("text/plain", "")) + "".join(output.get("text", "")))]
    return faults


def _html_faults(path: Path) -> list[str]:
    """What an HTML export (nbconvert, without executing) shows: a bar at 0% or a control character."""
    nbconvert = pytest.importorskip("nbconvert")
    html, _ = nbconvert.HTMLExporter().from_filename(str(path))
    return ([f"{path.name}: HTML shows a progress bar at 0%"] if FROZEN_BAR.search(html) else []) + (
        [f"{path.name}: HTML has control characters {sorted(set(CONTROL.findall(html)))}"] if CONTROL.search(html) else [])


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_reads_well_without_running(name: str) -> None:
    path = ROOT / name
    assert _static_faults(json.loads(path.read_text())) == []
    assert _html_faults(path) == []


def test_homework_links_the_extensions_from_its_last_cell() -> None:
    cells = json.loads((ROOT / "style_transfer.ipynb").read_text())["cells"]
    assert "(extensions.ipynb)" in "".join(cells[-1]["source"])


def test_homework_markdown_stays_within_3000_words() -> None:
    cells = json.loads((ROOT / "style_transfer.ipynb").read_text())["cells"]
    assert sum(len("".join(c["source"]).split()) for c in cells if c["cell_type"] == "markdown") <= 3000


@pytest.mark.parametrize("name, figures, results_count, run_lines", [
    # 1 texture + 1 stylization + 9 + 9 comparisons + 4 blends + the figure's 3 discriminators and 2 baselines
    # + 1 adversarial stylization (the tables' runs are not saved; their lines: 9 x seeds + 8 x seeds)
    ("style_transfer.ipynb", HOMEWORK_FIGURES, 1 + 1 + 9 + 9 + 4 + 3 + 2 + 1, 1 + 1 + 9 + 9 + 4 + 3 + 2 + 1 + 17 * 2),
    # 3 colour + 2 masks + 3 MMD + 2 histogram + 9 optimal-transport textures + 3 style scales + 10 inversions
    # + 3 normalised-VGG runs + 1 optimised gravel texture + 1 optimised cat (the inversions print one line together)
    ("extensions.ipynb", EXTENSION_FIGURES, 3 + 2 + 3 + 2 + 9 + 3 + 10 + 3 + 1 + 1, 3 + 2 + 3 + 2 + 9 + 3 + 3 + 1 + 1),
])
def test_notebook_runs_top_to_bottom(tmp_path: Path, name: str, figures: list[str], results_count: int,
                                     run_lines: int) -> None:
    """Executes the notebook with tiny sizes; every figure and result is written, and what a static view
    (GitHub, nbviewer, an HTML export) shows of each run is its last state."""
    results = tmp_path / "results"
    out = tmp_path / name
    papermill.execute_notebook(str(ROOT / name), str(out), cwd=str(ROOT), kernel_name="python3", progress_bar=False,
                               parameters={**TINY[name], "results_dir": str(results)})
    written = {p.name for p in results.glob("*.png")}
    assert [f for f in figures if f not in written] == []
    made = sorted(n for n in written if not n.startswith(("fig_", "feature_maps")))
    assert len(made) == results_count
    # every result names the files it was made from, relative to the project
    for n in made:
        metadata = read_metadata(results / n)
        named = [metadata["content_file"], *metadata["style_files"], metadata.get("init_file")]
        assert any(named) and all((ROOT / f).is_file() for f in named if f), (n, named)
    executed = json.loads(out.read_text())
    assert _static_faults(executed) == []
    assert _html_faults(out) == []
    # every run leaves one plain line with its budget, time, loss and whether it converged
    text = "".join("".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", []))
    assert len(re.findall(r"\d+/\d+ (evaluations|image steps), \d+ s, .*converged", text)) >= run_lines


def test_the_panel_cell_runs_on_its_own_in_a_fresh_kernel(tmp_path: Path) -> None:
    """The extensions' panel cell alone, in a new kernel: show_panel() finds images/ and results/ by itself
    (head-less here, so it prints its note and builds nothing)."""
    cells = json.loads((ROOT / "extensions.ipynb").read_text())["cells"]
    panel_cell = next(c for c in cells if c["cell_type"] == "code" and "show_panel(" in "".join(c["source"]))
    assert "show_panel()" in "".join(panel_cell["source"])
    alone = {"cells": [{**panel_cell, "outputs": [], "execution_count": None}], "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5}
    source, out = tmp_path / "panel.ipynb", tmp_path / "panel.run.ipynb"
    source.write_text(json.dumps(alone))
    papermill.execute_notebook(str(source), str(out), cwd=str(ROOT), kernel_name="python3", progress_bar=False)
    text = "".join("".join(o.get("text", "")) for o in json.loads(out.read_text())["cells"][0]["outputs"])
    assert "interactive panel is skipped" in text
