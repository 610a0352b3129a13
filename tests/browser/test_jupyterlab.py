"""The notebooks in a real browser: JupyterLab on 127.0.0.1, Debian's chromium driven by Playwright
(the system browser through its executable path; Playwright never downloads one). For three
notebooks: run all cells, move a slider, check that the figure changed, save screenshots to
build/screenshots/."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "build" / "screenshots"
CHROMIUM = next((p for p in (os.environ.get("CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium")
                 if p and Path(p).exists()), None)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (Debian: `apt-get install chromium`; `make setup` does "
                             "it when run as root): the browser test cannot run here")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab_url(tmp_path_factory):
    # Serve copies: JupyterLab saves what it runs, and the committed notebooks must stay clean.
    root = tmp_path_factory.mktemp("notebooks")
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        shutil.copy(nb, root / nb.name)
    port, token = _free_port(), "ftcore-test"
    env = {**os.environ, "FTLAB_QUICK": "1", "FTLAB_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
                             f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
                             f"--ServerApp.root_dir={root}", "--LabApp.news_url=",
                             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                             "--allow-root"],  # CI containers run as root
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("JupyterLab did not start within 60 s")
    yield url, token
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def _run_all(page):
    page.click("li.lm-MenuBar-item:has-text('Run')")
    page.click("li.lm-Menu-item:has-text('Run All Cells')")


def _figure_src(page, index: int) -> str:
    return page.locator(".jupyter-widgets-output-area img, .widget-output img").nth(index).get_attribute("src")


CASES = [  # notebook, which slider, keys to press on it, button to click after (if it trains)
    ("02_参数冻结策略.ipynb", 0, "ArrowRight", None),
    ("04_学习率调度策略.ipynb", 0, "ArrowRight", None),
    ("03_任务特定的数据准备.ipynb", 0, "ArrowRight", "训练"),  # the widgets speak the notebook's language
    ("13_指令微调与RLHF.ipynb", 0, "ArrowRight", "RL 训练"),  # the KL coefficient β, then one short RLOO run
]


@pytest.mark.parametrize("notebook,slider,key,button", CASES, ids=[c[0][:2] for c in CASES])
def test_slider_changes_the_figure(lab_url, browser, notebook, slider, key, button):
    url, token = lab_url
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    # a fresh workspace per notebook: JupyterLab would otherwise reopen the previous test's notebook
    page.goto(f"{url}/lab/workspaces/test{notebook[:2]}/tree/{notebook}?reset&token={token}")
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    page.locator(".jp-StatusBar-TextItem:has-text('Idle')").first.wait_for(timeout=60_000)  # kernel ready
    handle = page.locator(".widget-slider .noUi-handle, .widget-hslider .noUi-handle").nth(slider)
    for attempt in range(2):  # a Run All sent while the page is still settling can be lost: retry once
        _run_all(page)
        try:
            handle.wait_for(timeout=90_000)
            break
        except Exception:
            page.screenshot(path=str(SHOTS / f"{notebook[:2]}-no-slider-{attempt}.png"), full_page=True)
            if attempt:
                raise
    imgs = page.locator(".jupyter-widgets-output-area img, .widget-output img")
    if not button:  # a training widget shows no figure before its button is clicked (Run All never trains)
        imgs.first.wait_for(timeout=120_000)
    page.wait_for_timeout(1000)
    handle.scroll_into_view_if_needed()
    # the figure next to this slider: the last image of its widget's output area before moving
    before = [imgs.nth(i).get_attribute("src") for i in range(imgs.count())]
    page.screenshot(path=str(SHOTS / f"{notebook[:2]}-before.png"), full_page=False)
    handle.focus()
    for _ in range(3):
        page.keyboard.press(key)
    if button:
        page.locator(f"button:has-text('{button}')").first.click()
    deadline = time.time() + 120
    while time.time() < deadline:
        after = [imgs.nth(i).get_attribute("src") for i in range(imgs.count())]
        if after != before:
            break
        page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / f"{notebook[:2]}-after.png"), full_page=False)
    page.close()
    _shutdown_kernels(url, token)
    assert after != before, f"{notebook}: moving the slider did not change any figure"


def _shutdown_kernels(url: str, token: str) -> None:
    """Stop this notebook's kernel so the next test has the CPU to itself."""
    import json
    with urllib.request.urlopen(f"{url}/api/kernels?token={token}", timeout=10) as r:
        kernels = json.load(r)
    for k in kernels:
        req = urllib.request.Request(f"{url}/api/kernels/{k['id']}?token={token}", method="DELETE")
        urllib.request.urlopen(req, timeout=10).close()
