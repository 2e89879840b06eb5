"""The panel in a real browser: JupyterLab from this environment and headless Chromium driven by
Selenium, in a laptop's 1366 x 768 window. The panel's cell runs alone in a fresh kernel, the
preview sits beside the controls (also under a long error), Stop ends a run, and running the
cell again ends the old panel's run.

Needs ``jupyterlab`` (``make lab`` installs it), ``selenium``, and Chromium with its driver
(Debian: ``apt-get install chromium chromium-driver``); skipped where any of them is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow
pytest.importorskip("jupyterlab")
webdriver = pytest.importorskip("selenium.webdriver")
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
CHROMEDRIVER = shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip("no Chromium and chromedriver on PATH", allow_module_level=True)

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "panel-test"
CELLS = [
    'from neural_style.app.notebook.panel import show_panel\n\npanel = show_panel("images", "results", backbone="random")',
    "panel.size.value, panel.steps.value, panel.preview_every = 64, 1000, 1",
    'import threading\nprint("runs:", sum(t.name.endswith("(_work)") for t in threading.enumerate()))',
    'from neural_style.app.notebook.view import status_html\n'
    'panel.status.value = status_html("ImageLoadError: " + "/a/long/folder_name" * 40, error=True)',
]
GEOMETRY = """
const box = e => { if (!e) return null; const b = e.getBoundingClientRect();
                   return [b.left, b.top, b.right, b.bottom]; };
return {width: window.innerWidth, tabs: box(document.querySelector('.widget-tab')),
        preview: box([...document.querySelectorAll('.widget-image')].find(i => i.offsetWidth))};
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_notebook(folder: Path) -> None:
    (folder / "images").mkdir()
    rng = np.random.default_rng(0)
    for name, shape in (("chelsea.png", (48, 64, 3)), ("great_wave.jpg", (64, 64, 3))):
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(folder / "images" / name)
    cells = [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": s}
             for s in CELLS]
    notebook = {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}
    (folder / "panel.ipynb").write_text(json.dumps(notebook))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A JupyterLab server on a scratch notebook holding the panel's cell; its notebook URL."""
    folder = tmp_path_factory.mktemp("lab")
    write_notebook(folder)
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("NEURAL_STYLE_PANEL", None)
    with open(folder / "lab.log", "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--allow-root",
             f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={folder}"],
            cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/lab/tree/panel.ipynb?token={TOKEN}&reset"
        wait_for(lambda: urllib.request.urlopen(url, timeout=5).status == 200, 90)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1366,768"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(condition: Callable[[], Any], timeout: float) -> Any:
    """Poll ``condition`` until it returns something true (exceptions count as not yet)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            value = condition()
        except Exception:  # the page is still changing under the query
            value = None
        if value:
            return value
        time.sleep(0.5)
    raise TimeoutError(f"waited {timeout} s")


def run_cell(driver: Any, index: int) -> None:
    cell = driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell .cm-content")[index]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", cell)
    cell.click()
    ActionChains(driver).key_down(Keys.CONTROL).send_keys(Keys.ENTER).key_up(Keys.CONTROL).perform()


def button(driver: Any, label: str) -> Any:
    return next(b for b in driver.find_elements(By.TAG_NAME, "button") if b.text.strip() == label)


def status(driver: Any) -> str:
    lines = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".widget-html-content div")
             if "overflow-wrap" in (e.get_attribute("style") or "")]
    return lines[0] if lines else ""


def side_by_side(driver: Any) -> bool:
    """The preview starts right of the controls and ends inside the window."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'start'})",
                          driver.find_element(By.CSS_SELECTOR, ".widget-tab"))
    box = driver.execute_script(GEOMETRY)
    return box["preview"][0] >= box["tabs"][2] and box["preview"][2] <= box["width"]


def test_panel_in_a_browser_at_1366_px(lab: str, browser: Any) -> None:
    browser.get(lab)
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell .cm-content"), 120)
    wait_for(lambda: "Idle" in browser.find_element(By.CSS_SELECTOR, ".jp-StatusBar-Widget").text, 60)
    run_cell(browser, 0)  # alone, in a fresh kernel
    wait_for(lambda: button(browser, "Run"), 120)
    run_cell(browser, 1)
    time.sleep(2)
    button(browser, "Run").click()
    wait_for(lambda: status(browser).startswith("evaluation") and "evaluation 1 " not in status(browser), 180)
    assert side_by_side(browser)
    button(browser, "Stop").click()
    assert wait_for(lambda: status(browser).startswith("stopped"), 60)

    run_cell(browser, 3)  # a long error line must not push the preview below the controls
    wait_for(lambda: "ImageLoadError" in status(browser), 30)
    assert side_by_side(browser)

    button(browser, "Run").click()
    wait_for(lambda: status(browser).startswith("evaluation"), 180)
    run_cell(browser, 0)  # running the cell again ends the old panel's run
    wait_for(lambda: "Pick images" in status(browser), 120)
    run_cell(browser, 2)
    output = wait_for(lambda: [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output")
                               if e.text.startswith("runs:")], 60)
    assert output == ["runs: 0"]
