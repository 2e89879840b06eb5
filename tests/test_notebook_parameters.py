"""The notebook's parameters: every line of its parameters cell parses for papermill, and a wrong value
is refused by its first code cell, before any work, naming the parameter and what it accepts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from neural_style.app.notebook.parameters import (NOTEBOOK_PARAMETERS, NotebookParameterError,
                                                  check_notebook_parameters, resolve_quality)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "style_transfer.ipynb"


def _defaults(notebook: Path = NOTEBOOK) -> dict[str, Any]:
    """The parameters cell's values, as the notebook defines them."""
    cells = json.loads(notebook.read_text())["cells"]
    cell = next(c for c in cells if "parameters" in c["metadata"].get("tags", []))
    namespace: dict[str, Any] = {}
    exec("".join(cell["source"]), namespace)
    return {name: namespace[name] for name in NOTEBOOK_PARAMETERS[notebook.name] if name in namespace}


@pytest.mark.parametrize("name", list(NOTEBOOK_PARAMETERS))
def test_every_parameter_parses_for_papermill_and_is_checked(name):
    """papermill lists every parameter of each notebook's cell, and each is one the check knows."""
    papermill = pytest.importorskip("papermill")
    listed = papermill.inspect_notebook(str(ROOT / name))
    assert list(listed) == list(NOTEBOOK_PARAMETERS[name])
    assert all(p["inferred_type_name"] in ("str", "int", "Optional[int]") and p["help"] for p in listed.values())


@pytest.mark.parametrize("name", list(NOTEBOOK_PARAMETERS))
def test_the_defaults_pass(name):
    defaults = _defaults(ROOT / name)
    assert set(defaults) == set(NOTEBOOK_PARAMETERS[name])
    check_notebook_parameters({**defaults, "device": "cpu"}, name)
    assert defaults["quality"] == "auto"


def test_quality_auto_is_full_on_cuda_and_cpu_elsewhere():
    assert [resolve_quality("auto", d) for d in ("cuda", "cuda:1", "cpu")] == ["full", "full", "cpu"]
    assert [resolve_quality(q, "cuda") for q in ("cpu", "full")] == ["cpu", "full"]
    with pytest.raises(ValueError, match="quality must be one of 'auto', 'cpu', 'full'"):
        resolve_quality("high", "cpu")


def test_a_size_left_at_none_is_taken_from_quality_and_a_bad_quality_is_named():
    check_notebook_parameters({**_defaults(), "device": "cpu", "image_size": None, "num_steps": 500})
    with pytest.raises(NotebookParameterError, match="quality = 'best': give one of 'auto', 'cpu', 'full'"):
        check_notebook_parameters({**_defaults(), "device": "cpu", "quality": "best"})
    with pytest.raises(NotebookParameterError, match="image_size = 8: give None .*or a whole number >= 16"):
        check_notebook_parameters({**_defaults(), "device": "cpu", "image_size": 8})


@pytest.mark.parametrize("name, value, accepted", [
    ("seeds", 0, "a whole number >= 1 \\(noise seeds per table entry\\)"),
    ("num_steps", 2.5, "None \\(the quality setting's value\\) or a whole number >= 1"),
    ("num_steps", True, "None \\(the quality setting's value\\) or a whole number >= 1"),
    ("compare_steps", "100", "None \\(the quality setting's value\\) or a whole number >= 1"),
    ("image_size", 8, "None \\(the quality setting's value\\) or a whole number >= 16 "
                      "\\(long side in px; conv5_1 needs 16 px per side\\)"),
    ("compare_size", -1, "None \\(the quality setting's value\\) or a whole number >= 16"),
    ("backbone", "vgg16", "one of 'auto', 'vgg19', 'vgg19-torchvision', 'random'"),
    ("device", "tpu", "'auto', 'cpu', 'cuda' or 'cuda:N' of a GPU that is there \\(Unknown device 'tpu'"),
    ("seed", 2**70, "a whole number from -2\\*\\*63 to 2\\*\\*64 - 1"),
    ("results_dir", 3, "a folder path"),
])
def test_a_bad_value_is_named_with_what_it_accepts(name, value, accepted):
    with pytest.raises(NotebookParameterError, match=f"  - {name} = {value!r}: give {accepted}".replace("[", "\\[")):
        check_notebook_parameters({**_defaults(), "device": "cpu", name: value})


def test_every_bad_value_is_listed_in_one_error(tmp_path):
    """Two wrong values and a file where the results folder should be: one error with three lines."""
    afile = tmp_path / "results"
    afile.write_text("not a folder")
    bad = {**_defaults(), "device": "cpu", "seeds": 0, "image_size": 0, "results_dir": str(afile)}
    with pytest.raises(NotebookParameterError) as info:
        check_notebook_parameters(bad)
    lines = [line for line in str(info.value).splitlines() if line.startswith("  - ")]
    assert [line.split(" = ")[0] for line in lines] == ["  - image_size", "  - seeds", "  - results_dir"]
    assert "this one is a file" in lines[2] and "papermill -p NAME VALUE" in str(info.value)


def test_cuda_without_a_gpu_is_refused(monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with pytest.raises(NotebookParameterError, match="device = 'cuda': .*no CUDA GPU is available"):
        check_notebook_parameters({**_defaults(), "device": "cuda"})


def test_notebook_fails_fast_in_its_first_code_cell(tmp_path):
    """papermill -p seeds 0: the run stops in the first code cell after the parameters, which
    names the parameter; no later cell runs and no network is loaded (nothing written to results)."""
    papermill = pytest.importorskip("papermill")
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    first = next(i for i, c in enumerate(cells) if "parameters" in c["metadata"].get("tags", []))
    after = next(c for c in cells[first + 1:]  # an executed notebook keeps papermill's injected cell
                 if c["cell_type"] == "code" and "injected-parameters" not in c["metadata"].get("tags", []))
    # checked first, so that without the check the test fails here rather than after a whole run
    assert "\ncheck_notebook_parameters(globals(), " in "".join(after["source"])
    out, results = tmp_path / "executed.ipynb", tmp_path / "results"
    with pytest.raises(papermill.PapermillExecutionError) as info:
        papermill.execute_notebook(str(NOTEBOOK), str(out), cwd=str(ROOT), kernel_name="python3", progress_bar=False,
                                   parameters={"backbone": "random", "seeds": 0,
                                               "results_dir": str(results)})
    assert info.value.ename == "NotebookParameterError"
    assert "seeds = 0: give a whole number >= 1 (noise seeds per table entry)" in info.value.evalue
    cells = [c for c in json.loads(out.read_text())["cells"] if c["cell_type"] == "code"]
    ran = [i for i, c in enumerate(cells) if c.get("execution_count") is not None]
    failed = next(i for i, c in enumerate(cells) if any(o.get("output_type") == "error" for o in c["outputs"]))
    assert "check_notebook_parameters(globals(), " in "".join(cells[failed]["source"])
    assert ran[-1] == failed and not results.exists()
