"""``make lab``: JupyterLab starts for root too, and the address it prints opens the notebook."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("jupyterlab")
ROOT = Path(__file__).resolve().parents[1]
JUPYTER = Path(sys.executable).parent / "jupyter"
if shutil.which("make") is None or not JUPYTER.exists():
    pytest.skip("needs make and this environment's jupyter", allow_module_level=True)


def fake_venv(folder: Path) -> Path:
    """A folder that make takes for a ready .venv with JupyterLab: this environment's jupyter."""
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "jupyter").symlink_to(JUPYTER)
    (folder / ".ready").touch()
    (folder / ".lab-ready").touch()
    return folder


def test_the_lab_command_allows_root_only_for_root(tmp_path: Path) -> None:
    line = subprocess.run(["make", "-s", "-n", "lab", f"VENV={fake_venv(tmp_path / 'venv')}"], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    assert ("--allow-root" in line) == (os.getuid() == 0)
    assert "--LabApp.default_url=/lab/tree/style_transfer.ipynb" in line


def test_make_lab_prints_an_address_that_opens_the_notebook(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = f"--no-browser --port={port} --ServerApp.ip=127.0.0.1 --IdentityProvider.token=make-lab-test"
    log = tmp_path / "lab.log"
    with open(log, "w") as out:
        make = subprocess.Popen(["make", "-s", "lab", f"VENV={fake_venv(tmp_path / 'venv')}", f"LAB_ARGS={args}"],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")})
    try:
        address = None
        deadline = time.monotonic() + 90
        while address is None and time.monotonic() < deadline and make.poll() is None:
            found = re.search(r"http://127\.0\.0\.1:\d+/\S+", log.read_text())
            address = found.group(0) if found else None
            time.sleep(0.5)
        assert address is not None, f"no address printed: {log.read_text()[-2000:]}"
        assert address.startswith(f"http://127.0.0.1:{port}/lab/tree/style_transfer.ipynb?token=")
        assert urllib.request.urlopen(address, timeout=10).status == 200
    finally:
        os.killpg(make.pid, signal.SIGTERM)
        make.wait(timeout=30)
