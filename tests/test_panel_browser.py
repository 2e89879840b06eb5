"""The panel in a real browser: JupyterLab from this environment and headless Chromium driven by
Selenium, in a laptop's 1366 x 768 window with the file browser open. The panel's cell runs alone
in a fresh kernel, the preview sits beside the controls (also under a long error), the buttons,
Save's file name and the loss curve fit the screen, Stop ends a run and says so, the command box
never breaks an option, running the cell again ends the old panel's run, and a published notebook
opens unmodified. With ``NEURAL_STYLE_SCREENSHOTS=FOLDER`` the test leaves screenshots there.

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

from ipykernel.ipkernel import IPythonKernel  # noqa: E402

from neural_style.app.notebook.publish import publish  # noqa: E402

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
const save = [...document.querySelectorAll('button')].find(b => b.textContent.trim() === 'Save PNG');
return {width: window.innerWidth, height: window.innerHeight, tabs: box(document.querySelector('.widget-tab')),
        preview: box([...document.querySelectorAll('.widget-image')].find(i => i.offsetWidth)),
        curve: box(document.querySelector("svg[aria-label='loss curve']")), save: box(save),
        name: box(save && save.parentElement.querySelector('input')),
        files: box(document.querySelector('.jp-FileBrowser'))};
"""
# Every word of the command box on one line: a word split by the browser has two client rectangles.
BROKEN_WORDS = """
return [...document.querySelectorAll('.neural-style-command span')]
    .filter(s => s.getClientRects().length > 1).map(s => s.textContent);
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
    cells = [{"cell_type": "code", "execution_count": None, "id": f"cell{i}", "metadata": {}, "outputs": [],
              "source": s} for i, s in enumerate(CELLS)]
    # the language_info this environment's kernel reports, as an executed notebook holds it
    notebook = {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                             "language_info": IPythonKernel.language_info}}
    (folder / "unpublished.ipynb").write_text(json.dumps(notebook))
    (folder / "panel.ipynb").write_text(json.dumps(publish(notebook)))


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
             if "overflow-wrap:anywhere" in (e.get_attribute("style") or "").replace(" ", "")]
    return lines[0] if lines else ""


def screenshot(driver: Any, name: str) -> None:
    """Leave a screenshot in $NEURAL_STYLE_SCREENSHOTS, when set, to look at."""
    folder = os.environ.get("NEURAL_STYLE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"{name}.png"))


def panel_at_the_top(driver: Any) -> dict[str, Any]:
    """The panel's boxes once its top is scrolled to the top of the notebook."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'start'})",
                          driver.find_element(By.CSS_SELECTOR, ".widget-tab"))
    time.sleep(0.5)
    return driver.execute_script(GEOMETRY)


def open_notebook(driver: Any, url: str) -> None:
    driver.get(url)
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell .cm-content"), 120)
    wait_for(lambda: "Idle" in driver.find_element(By.CSS_SELECTOR, ".jp-StatusBar-Widget").text, 60)


def modified(driver: Any, name: str) -> bool:
    """Whether JupyterLab marks the notebook ``name``'s tab as modified."""
    return bool(driver.execute_script(
        "return [...document.querySelectorAll('.lm-TabBar-tab.jp-mod-dirty')].some(t => t.textContent.includes("
        "arguments[0]))", name))


def side_by_side(driver: Any) -> bool:
    """The preview starts right of the controls and ends inside the window."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'start'})",
                          driver.find_element(By.CSS_SELECTOR, ".widget-tab"))
    box = driver.execute_script(GEOMETRY)
    return box["preview"][0] >= box["tabs"][2] and box["preview"][2] <= box["width"]


def test_a_published_notebook_opens_unmodified(lab: str, browser: Any) -> None:
    """JupyterLab writes the kernel's kernelspec on opening: the published one is already that, the
    one papermill leaves ("Python 3") is not (the control that shows the check can fail)."""
    open_notebook(browser, lab)
    time.sleep(3)  # the kernel's info has come back: what JupyterLab changes is changed by now
    assert not modified(browser, "panel.ipynb")
    open_notebook(browser, lab.replace("panel.ipynb", "unpublished.ipynb"))
    assert wait_for(lambda: modified(browser, "unpublished.ipynb"), 20)


def test_panel_in_a_browser_at_1366_px(lab: str, browser: Any) -> None:
    open_notebook(browser, lab)
    run_cell(browser, 0)  # alone, in a fresh kernel
    wait_for(lambda: button(browser, "Run"), 120)
    run_cell(browser, 1)
    time.sleep(2)
    button(browser, "Run").click()
    wait_for(lambda: status(browser).startswith("evaluation") and "evaluation 1 " not in status(browser), 180)
    assert side_by_side(browser)
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "svg[aria-label='loss curve']"), 60)
    box = panel_at_the_top(browser)
    screenshot(browser, "panel_running")
    assert box["files"] is not None and box["files"][2] > box["files"][0] > -1  # the file browser is open
    for part in ("curve", "save", "name"):  # on the screen without scrolling past the panel's top
        assert box[part] is not None and box[part][3] <= box["height"], (part, box)
    button(browser, "Stop").click()
    assert wait_for(lambda: status(browser).startswith("stopped"), 60)
    assert "callback" not in status(browser)

    tab = next(t for t in browser.find_elements(By.CSS_SELECTOR, ".widget-tab .lm-TabBar-tab")
               if t.text.strip() == "Command")
    tab.click()
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".neural-style-command span"), 30)
    panel_at_the_top(browser)
    screenshot(browser, "panel_command")
    words = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".neural-style-command span")]
    assert "--size" in words and browser.execute_script(BROKEN_WORDS) == []

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
