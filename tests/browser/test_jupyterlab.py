"""The notebooks in a real browser: JupyterLab on 127.0.0.1, Debian's chromium driven by Playwright
(the system browser through its executable path; Playwright never downloads one), quick mode
(FTLAB_QUICK=1). Screenshots go to build/screenshots/.

* ``test_run_all_cells``: every notebook, Run All, every code cell executed, no error or traceback
  in any output, each ``chapter.draw(...)`` cell showing exactly one figure (``<nn>-runall.png``).
* ``test_slider_changes_the_figure``: a slider moved (and, for a training widget, its button
  clicked) changes a figure (``<nn>-before.png`` / ``<nn>-after.png``).
* ``test_widget_responds``: for the notebooks whose widgets have no slider to move, one button
  clicked or one text typed, and the widget shows its result (same screenshots)."""
from __future__ import annotations

import json
import os
import re
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
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
CHROMIUM = next((p for p in (os.environ.get("CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium")
                 if p and Path(p).exists()), None)

RUN_ALL_TIMEOUT_S = 240  # per notebook, quick mode, on a busy 2-core machine
ERROR_MIME = "application/vnd.jupyter.error"
STDERR_MIME = "application/vnd.jupyter.stderr"

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
    # Own settings and workspaces (the user's are left alone): every cell attached to the page, so
    # that the checks below see every output (JupyterLab 4 may otherwise window long notebooks), and
    # no news pop-up over the screenshots.
    settings = tmp_path_factory.mktemp("lab-settings")
    for name, values in {"notebook-extension/tracker": {"windowingMode": "none"},
                         "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False}}.items():
        path = settings / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port, token = _free_port(), "ftcore-test"
    env = {**os.environ, "FTLAB_QUICK": "1", "FTLAB_THREADS": "1",
           "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path_factory.mktemp("lab-workspaces")),
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


# ------------------------------------------------------------------------------ shared helpers
def _open_notebook(browser, url: str, token: str, notebook: str):
    """A new page with ``notebook`` open in a fresh workspace (JupyterLab would otherwise reopen the
    previous test's notebook) and its kernel ready."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{url}/lab/workspaces/test{notebook[:2]}/tree/{notebook}?reset&token={token}")
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    _wait_idle(page, 60_000)
    return page


def _wait_idle(page, timeout_ms: int) -> None:
    page.locator(".jp-StatusBar-TextItem:has-text('Idle')").first.wait_for(timeout=timeout_ms)


def _run_all(page):
    page.click("li.lm-MenuBar-item:has-text('Run')")
    page.click("li.lm-Menu-item:has-text('Run All Cells')")


# Every code cell's execution prompt, the number of images in its output area and the text of its
# error / stderr outputs. JupyterLab 4 renders an error as stderr text (no renderer takes the error
# mime type itself, but look for it too), each rendered output carrying its mime type in data-mime-type.
_CELLS_JS = """() => Array.from(document.querySelectorAll('.jp-Notebook .jp-CodeCell')).map(cell => {
  const outputs = Array.from(cell.querySelectorAll('.jp-OutputArea-output'));
  const text = el => (el.innerText || el.textContent || '');
  return {
    prompt: (cell.querySelector('.jp-InputArea-prompt') || {}).textContent || '',
    images: cell.querySelectorAll('.jp-Cell-outputArea img').length,
    errors: Array.from(cell.querySelectorAll('[data-mime-type="%s"]')).map(text),
    stderr: outputs.filter(o => o.getAttribute('data-mime-type') === '%s').map(text),
    tracebacks: outputs.map(text).filter(t => t.includes('Traceback')),
  };
})""" % (ERROR_MIME, STDERR_MIME)


def _cells(page) -> list[dict]:
    return page.evaluate(_CELLS_JS)


def _busy(cells: list[dict]) -> bool:
    return any("*" in c["prompt"] for c in cells)


def _executed(cell: dict) -> bool:
    return re.fullmatch(r"\[\d+\]:?", cell["prompt"].strip()) is not None


def _run_all_and_wait(page, timeout_s: float = RUN_ALL_TIMEOUT_S) -> list[dict]:
    """Run All, then wait until no cell is queued or running ([*]) and the kernel is idle; returns
    the cells (executed or not: a cell that raised stops the rest, which the caller reports)."""
    for attempt in range(2):  # a Run All sent while the page is still settling can be lost: retry once
        _run_all(page)
        try:  # Run All marks every code cell [*] at once
            page.wait_for_function("() => Array.from(document.querySelectorAll("
                                   "'.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')).some("
                                   "p => p.textContent.includes('*'))", timeout=30_000)
            break
        except Exception:
            if attempt:
                raise
    deadline = time.time() + timeout_s
    while True:
        cells = _cells(page)
        if not _busy(cells):
            break
        if time.time() > deadline:
            pytest.fail(f"Run All did not finish within {timeout_s:.0f} s: "
                        f"{sum(_busy([c]) for c in cells)} code cells still queued or running")
        page.wait_for_timeout(1000)
    _wait_idle(page, 60_000)
    return _cells(page)


def _output_problems(cells: list[dict]) -> list[str]:
    """Error outputs, tracebacks and stderr mentioning an error, one line each (code cells from 1)."""
    problems = []
    for n, c in enumerate(cells, 1):
        for kind in ("errors", "tracebacks"):
            problems += [f"code cell {n}: {kind[:-1]}: {t.strip()[-600:]}" for t in c[kind]]
        problems += [f"code cell {n}: stderr: {t.strip()[-600:]}" for t in c["stderr"]
                     if "Error" in t and not c["tracebacks"]]
    return problems


def _code_sources(notebook: str) -> list[str]:
    nb = json.loads((ROOT / "notebooks" / notebook).read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def _full_screenshot(page, path: Path, max_height: int = 16_000) -> None:
    """The whole notebook in one picture: the notebook scrolls inside the page, so grow the
    viewport to its height first (capped), then restore it."""
    height = page.evaluate("() => { const s = document.querySelector('.jp-NotebookPanel .jp-WindowedPanel-outer')"
                           " || document.querySelector('.jp-NotebookPanel-notebook'); return s ? s.scrollHeight : 0 }")
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(height + 200, max_height))})
    page.wait_for_timeout(1000)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)


def _images(page):
    return page.locator(".jupyter-widgets-output-area img, .widget-output img")


def _srcs(page) -> list[str]:
    imgs = _images(page)
    return [imgs.nth(i).get_attribute("src") for i in range(imgs.count())]


def _wait_until(check, timeout_s: float, page) -> bool:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if check():
            return True
        page.wait_for_timeout(500)
    return check()


def _shutdown_kernels(url: str, token: str) -> None:
    """Stop this notebook's kernel so the next test has the CPU to itself."""
    with urllib.request.urlopen(f"{url}/api/kernels?token={token}", timeout=10) as r:
        kernels = json.load(r)
    for k in kernels:
        req = urllib.request.Request(f"{url}/api/kernels/{k['id']}?token={token}", method="DELETE")
        urllib.request.urlopen(req, timeout=10).close()


def _close(page, url: str, token: str) -> None:
    page.close()
    _shutdown_kernels(url, token)


# ------------------------------------------------------------------------------ every notebook, Run All
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n[:2] for n in NOTEBOOKS])
def test_run_all_cells(lab_url, browser, notebook):
    url, token = lab_url
    page = _open_notebook(browser, url, token, notebook)
    try:
        cells = _run_all_and_wait(page)
        _full_screenshot(page, SHOTS / f"{notebook[:2]}-runall.png")
    finally:
        _close(page, url, token)
    sources = _code_sources(notebook)
    assert len(cells) == len(sources), f"{notebook}: {len(cells)} code cells on the page, {len(sources)} in the file"
    problems = _output_problems(cells)
    not_run = [n for n, c in enumerate(cells, 1) if not _executed(c)]
    assert not problems, f"{notebook}: errors in the outputs:\n" + "\n".join(problems)
    assert not not_run, f"{notebook}: code cells not executed by Run All: {not_run}"
    wrong = [f"code cell {n} ({src.splitlines()[0]}): {c['images']} images"
             for n, (src, c) in enumerate(zip(sources, cells), 1)
             if src.startswith("chapter.draw(") and c["images"] != 1]
    assert not wrong, f"{notebook}: each chapter.draw cell must show exactly one figure:\n" + "\n".join(wrong)


# ------------------------------------------------------------------------------ a slider moves a figure
CASES = [  # notebook, which slider, keys to press on it, button to click after (if it trains)
    ("02_参数冻结策略.ipynb", 0, "ArrowRight", None),
    ("04_学习率调度策略.ipynb", 0, "ArrowRight", None),
    ("03_任务特定的数据准备.ipynb", 0, "ArrowRight", "训练"),  # the widgets speak the notebook's language
    ("05_常见问题和解决方案.ipynb", 0, "ArrowRight", "训练"),  # the learning rate, then a short run
    ("06_本节总结.ipynb", 0, "ArrowRight", "训练"),  # the doctor's run: learning rate, then train
    ("07_持续学习与遗忘.ipynb", 0, "ArrowLeft", "训练两任务序列"),  # EWC λ, then the two-task sequence
    ("13_指令微调与RLHF.ipynb", 0, "ArrowRight", "RL 训练"),  # the KL coefficient β, then one short RLOO run
]


@pytest.mark.parametrize("notebook,slider,key,button", CASES, ids=[c[0][:2] for c in CASES])
def test_slider_changes_the_figure(lab_url, browser, notebook, slider, key, button):
    url, token = lab_url
    page = _open_notebook(browser, url, token, notebook)
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
    imgs = _images(page)
    if not button:  # a training widget shows no figure before its button is clicked (Run All never trains)
        imgs.first.wait_for(timeout=120_000)
    page.wait_for_timeout(1000)
    handle.scroll_into_view_if_needed()
    # the figure next to this slider: the last image of its widget's output area before moving
    before = _srcs(page)
    page.screenshot(path=str(SHOTS / f"{notebook[:2]}-before.png"), full_page=False)
    handle.focus()
    for _ in range(3):
        page.keyboard.press(key)
    if button:
        page.locator(f"button:has-text('{button}')").first.click()
    changed = _wait_until(lambda: _srcs(page) != before, 180, page)
    page.screenshot(path=str(SHOTS / f"{notebook[:2]}-after.png"), full_page=False)
    problems = _output_problems(_cells(page))
    _close(page, url, token)
    assert changed, f"{notebook}: moving the slider did not change any figure"
    assert not problems, f"{notebook}: errors in the outputs:\n" + "\n".join(problems)


# ------------------------------------------------------------------------------ a click or a text
INTERACTIONS = [  # notebook, what to do ("click" a button / "type" into the text box), its label or text, what must appear
    ("01_全参数微调基础.ipynb", "click", "训练", "测试准确率"),  # LiveRun: the test accuracy and verdict
    ("08_参数高效微调.ipynb", "click", "训练", "可训练参数占比"),  # LoraRank (a dropdown): the trainable share
    ("09_预训练目标.ipynb", "type", "这部电影很好看。 A gentle film.", "变成了 [UNK]"),  # CollatorBox: its [UNK] note
    ("10_训练监控.ipynb", "click", "用 HF Trainer 训练", "运行医生"),  # HF Trainer: accuracy and the doctor
    ("11_从头预训练.ipynb", "click", "训练分词器", "词元"),  # TokenizerExplorer: the sentence split
    ("12_量化.ipynb", "click", "微调并量化", "与 fp32 预测一致"),  # QuantizeLive: the measured table
]


def _widget_cell(page, selector: str):
    """The code cell whose output holds the first element matching ``selector``."""
    return page.locator(".jp-CodeCell", has=page.locator(selector)).first


@pytest.mark.parametrize("notebook,action,target,expect", INTERACTIONS, ids=[c[0][:2] for c in INTERACTIONS])
def test_widget_responds(lab_url, browser, notebook, action, target, expect):
    url, token = lab_url
    page = _open_notebook(browser, url, token, notebook)
    selector = f"button:has-text('{target}')" if action == "click" else ".widget-textarea textarea"
    _run_all_and_wait(page)  # a click waits for the kernel anyway: let Run All finish first
    cell = _widget_cell(page, selector)
    output = cell.locator(".jp-Cell-outputArea")
    control = cell.locator(selector).first
    control.scroll_into_view_if_needed()
    before = output.inner_text()
    page.screenshot(path=str(SHOTS / f"{notebook[:2]}-before.png"), full_page=False)
    if action == "click":
        control.click()
    else:  # the text box updates when it loses focus (continuous_update=False)
        control.fill(target)
        control.blur()
    responded = _wait_until(lambda: expect in (now := output.inner_text()) and now != before
                            and not control.is_disabled(), 180, page)
    control.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / f"{notebook[:2]}-after.png"), full_page=False)
    after = output.inner_text()
    problems = _output_problems(_cells(page))
    _close(page, url, token)
    assert expect not in before, f"{notebook}: {expect!r} was shown before the interaction"
    assert not problems, f"{notebook}: errors in the outputs:\n" + "\n".join(problems)
    assert responded, (f"{notebook}: after {action} {target!r}, {expect!r} did not appear in the widget within "
                       f"180 s; it shows:\n{after[-1500:]}")
