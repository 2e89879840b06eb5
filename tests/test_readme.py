"""The README and the docs: every command in the README is run (here, by another test, or by CI),
the README stays short, and every link between the pages leads to a file."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from neural_style.app.cli import main as cli
from neural_style.core.images import read_metadata

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TINY = ["--backbone", "random", "--size", "32", "--steps", "2"]  # later options win: a tiny run of the same line


def readme_commands() -> list[str]:
    """Each command line of the README's shell blocks, without its comment."""
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    lines = [line.split(" #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line]


def test_the_readme_is_short() -> None:
    """What a newcomer reads in two minutes: the details live in docs/."""
    assert len(README) < 6000 and len(README.split()) < 800


def test_every_readme_command_is_known() -> None:
    """A new command in the README needs a test that runs it (add it to the tests below)."""
    known = {"make notebook", "make test", "make lab"}
    others = [c for c in readme_commands() if c not in known and not c.startswith(".venv/bin/neural-style ")]
    assert others == [], f"README commands no test runs: {others}"
    assert known <= set(readme_commands())


def test_ci_runs_the_readme_test_command() -> None:
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert "make test" in ci


def test_make_lab_and_make_notebook_are_run_by_their_tests() -> None:
    """make lab is run by test_make_lab.py; make notebook's recipe executes both notebooks with
    papermill (which test_notebook.py does at tiny sizes) and publishes them (test_publish.py)."""
    assert '"make", "-s", "lab"' in (ROOT / "tests" / "test_make_lab.py").read_text()
    recipe = subprocess.run(["make", "-s", "-n", "notebook", "VENV=/nonexistent-venv", "READY="], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    for notebook in ("style_transfer", "extensions"):
        assert f"papermill --cwd . -p quality auto {notebook}.ipynb {notebook}.run.ipynb" in recipe
        assert f"neural_style.app.notebook.publish {notebook}.run.ipynb" in recipe


@pytest.mark.parametrize("line", [c for c in readme_commands() if c.startswith(".venv/bin/neural-style ")])
def test_readme_shell_commands_run(line: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's command as written, from a copy of the project's folder, made tiny."""
    (tmp_path / "images").symlink_to(ROOT / "images")
    monkeypatch.chdir(tmp_path)
    args = shlex.split(line)[1:]
    assert cli.main([*args, *TINY]) == 0
    output = tmp_path / args[args.index("-o") + 1]
    meta = read_metadata(output)
    assert meta["content_file"] == args[0] and meta["style_files"] == [args[1]]  # relative, as given


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_lead_to_files(page: Path) -> None:
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text())
    missing = [t for t in targets if not t.startswith("http") and not (page.parent / t).exists()]
    assert missing == [], f"{page.name} links to missing files: {missing}"


def test_library_docs_keep_a_defaults_section() -> None:
    assert "\n## Defaults\n" in (ROOT / "docs" / "library.md").read_text()
