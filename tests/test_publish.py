"""Executed notebooks made ready to commit (``app/notebook/publish.py``): JupyterLab finds nothing to
change when it opens them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neural_style.app.notebook.publish import KERNELSPEC, main, publish, shows_widgets

ROOT = Path(__file__).resolve().parents[1]


def executed(outputs: list[dict]) -> dict:
    """A notebook as papermill leaves it: the kernelspec it was given and the widgets' state."""
    return {"nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                         "language_info": {"name": "python"}, "papermill": {"duration": 1.0},
                         "widgets": {"application/vnd.jupyter.widget-state+json": {"state": {"a": {}}}}},
            "cells": [{"cell_type": "code", "id": "x", "metadata": {}, "execution_count": 1, "source": "1",
                       "outputs": outputs}]}


def test_publish_writes_the_kernels_kernelspec_and_drops_unshown_widget_state() -> None:
    bar_as_text = {"output_type": "display_data", "metadata": {}, "data": {"text/plain": ["100%|###| 4/4"]}}
    notebook = executed([bar_as_text])
    published = publish(notebook)
    assert published["metadata"]["kernelspec"] == {"display_name": "Python 3 (ipykernel)", "language": "python",
                                                   "name": "python3"}
    assert "widgets" not in published["metadata"] and published["cells"] == notebook["cells"]
    assert published["metadata"]["language_info"] == {"name": "python"}
    assert notebook["metadata"]["kernelspec"]["display_name"] == "Python 3"  # the input is left alone


def test_widget_state_stays_when_an_output_shows_a_widget() -> None:
    view = {"output_type": "display_data", "metadata": {},
            "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "a"}}}
    assert shows_widgets(executed([view])) and "widgets" in publish(executed([view]))["metadata"]


def test_publish_refuses_an_old_format() -> None:
    with pytest.raises(ValueError, match="nbformat 4"):
        publish({"nbformat": 3, "metadata": {}})


def test_the_command_rewrites_files_in_place(tmp_path: Path) -> None:
    path = tmp_path / "n.ipynb"
    path.write_text(json.dumps(executed([])))
    assert main([str(path)]) == 0
    assert json.loads(path.read_text())["metadata"]["kernelspec"] == KERNELSPEC
    assert main([]) == 2


@pytest.mark.parametrize("notebook", sorted(p.name for p in ROOT.glob("*.ipynb")))
def test_committed_notebooks_are_published(notebook: str) -> None:
    """What make notebook commits: opening it in JupyterLab marks nothing modified."""
    content = json.loads((ROOT / notebook).read_text())
    assert publish(content) == content, f"run: python -m neural_style.app.notebook.publish {notebook}"


def test_publish_writes_the_machines_paths_relative_to_the_project(tmp_path: Path) -> None:
    """A warning's file name and papermill's paths, as an execution records them, name no machine's folders."""
    project = tmp_path / "clone"
    warning = {"output_type": "stream", "name": "stderr",
               "text": [f"{project}/neural_style/synthesis/run.py:177: SynthesisNotice: stopped early\n",
                        "/tmp/ipykernel_12637/2560132580.py:9: SynthesisNotice: stopped early\n"]}
    plain = {"output_type": "execute_result", "metadata": {}, "execution_count": 1,
             "data": {"text/plain": f"PosixPath('{project}/results/a.png')"}}
    notebook = executed([warning, plain])
    notebook["metadata"]["papermill"].update(input_path=str(project / "style_transfer.ipynb"),
                                             output_path=str(tmp_path / "elsewhere" / "style_transfer.run.ipynb"))
    published = publish(notebook, project)
    outputs = published["cells"][0]["outputs"]
    assert outputs[0]["text"] == ["neural_style/synthesis/run.py:177: SynthesisNotice: stopped early\n",
                                  "<notebook cell>:9: SynthesisNotice: stopped early\n"]
    assert outputs[1]["data"]["text/plain"] == "PosixPath('results/a.png')"
    assert published["metadata"]["papermill"]["input_path"] == "style_transfer.ipynb"
    assert published["metadata"]["papermill"]["output_path"] == "style_transfer.run.ipynb"
    assert str(tmp_path) not in json.dumps(published)
    assert notebook["cells"][0]["outputs"][0] is warning  # the input is left alone
