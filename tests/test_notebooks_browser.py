"""The teaching notebooks as a person sees them: JupyterLab in Chromium, Run All, then scroll to the end.

Every HTML table cell of the outputs must show text once it has been scrolled into view: a table
that renders only while its cell is on screen (a Plotly table in JupyterLab's default windowing
mode) would show empty cells here. The notebooks run in a copy under a temporary folder (with the
study's summary.json and curves where notebook 3 looks for them), so JupyterLab's autosave never writes outputs
into notebooks/. The kernel is this environment's Python, which the test checks.

Skipped, with the reason, when Chromium, Playwright or JupyterLab is missing. Deselect with
``pytest -m "not notebooks"``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from web import CHROMIUM, free_port
from web import CHROMIUM_ARGS as ARGS

ROOT = Path(__file__).resolve().parents[1]
# notebook 3 has the tables of captions and scores; notebook 4 a Markdown table built in code
NOTEBOOKS = ["03_alignment_analysis.ipynb", "04_retrieval_and_classification.ipynb"]
RUN_S = 420  # Run All still going after this has hung (notebook 3 takes about 2 minutes on 2 cores)
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium (apt install chromium)"),
    pytest.mark.skipif(importlib.util.find_spec("jupyterlab") is None, reason="needs JupyterLab (pip install jupyterlab)"),
    pytest.mark.notebooks,
    pytest.mark.slow,
]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright (pip install playwright)")

# JupyterLab's own state: no news or update checks (no network), nothing read from or written to ~
CONFIG = """c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.handlers.announcements.NeverCheckForUpdate"
c.LabApp.expose_app_in_browser = True
c.LabApp.extension_manager = "readonly"
c.ServerApp.terminals_enabled = False
"""
SETTINGS = '{"fetchNews": "false", "checkForUpdates": false}'
# the open notebook's model: how many code cells ran, the first error, Plotly tables, kernel status
PROGRESS_JS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const cells = panel.content.model.cells;
  let code = 0, done = 0, error = null, plotlyTables = 0;
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i);
    if (cell.type !== 'code') continue;
    code++;
    if (cell.executionCount) done++;
    for (let j = 0; j < cell.outputs.length; j++) {
      const out = cell.outputs.get(j).toJSON();
      if (out.output_type === 'error' && !error) error = `cell ${i}: ${out.ename}: ${out.evalue}`;
      const fig = (out.data || {})['application/vnd.plotly.v1+json'];
      if (fig) plotlyTables += (fig.data || []).filter(t => t.type === 'table').length;
    }
  }
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return {code, done, error, plotlyTables, status: kernel ? kernel.status : 'none'};
}"""
# the text of every output table cell now in view, keyed by its place among all of them
VISIBLE_CELLS_JS = """() => {
  const panel = window.jupyterapp.shell.currentWidget.node;
  const box = panel.querySelector('.jp-WindowedPanel-outer').getBoundingClientRect();
  const cells = panel.querySelectorAll('.jp-OutputArea-output td');
  const seen = {};
  cells.forEach((td, i) => {
    const r = td.getBoundingClientRect();
    if (r.height > 0 && r.bottom > box.top && r.top < box.bottom) seen[i] = td.innerText.trim();
  });
  return {total: cells.length, seen};
}"""
SCROLL_JS = """() => {
  const outer = window.jupyterapp.shell.currentWidget.node.querySelector('.jp-WindowedPanel-outer');
  const before = outer.scrollTop;
  outer.scrollTop = before + Math.round(0.7 * outer.clientHeight);
  return {moved: outer.scrollTop !== before, bottom: outer.scrollTop + outer.clientHeight >= outer.scrollHeight - 2};
}"""
EXECUTABLE_JS = """async () => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  let text = '';
  const future = kernel.requestExecute({code: 'import sys; print(sys.prefix)', store_history: false});
  future.onIOPub = msg => { if (msg.header.msg_type === 'stream') text += msg.content.text; };
  await future.done;
  return text.trim();
}"""



def _wait_until_up(url: str, server: subprocess.Popen, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/api/status", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"jupyter lab did not answer at {url} within {timeout_s} s")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """(url, log file) of JupyterLab serving a copy of the notebooks, this environment's kernel."""
    home = tmp_path_factory.mktemp("lab")
    for name in NOTEBOOKS:
        (home / "notebooks").mkdir(exist_ok=True)
        shutil.copy(ROOT / "notebooks" / name, home / "notebooks" / name)
    (home / "docs" / "results").mkdir(parents=True)
    for name in ("summary.json", "curves-long.json"):  # what notebook 3 reads
        shutil.copy(ROOT / "docs" / "results" / name, home / "docs" / "results" / name)
    state = {d: home / "state" / d for d in ("config", "data", "runtime", "settings", "workspaces", "ipython")}
    for d in state.values():
        d.mkdir(parents=True)
    (state["config"] / "jupyter_lab_config.py").write_text(CONFIG)
    notifications = state["settings"] / "@jupyterlab" / "apputils-extension"
    notifications.mkdir(parents=True)
    (notifications / "notification.jupyterlab-settings").write_text(SETTINGS)  # no news toast over the outputs
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(state["config"]), "JUPYTER_DATA_DIR": str(state["data"]),
           "JUPYTER_RUNTIME_DIR": str(state["runtime"]), "JUPYTERLAB_SETTINGS_DIR": str(state["settings"]),
           "JUPYTERLAB_WORKSPACES_DIR": str(state["workspaces"]), "IPYTHONDIR": str(state["ipython"]),
           "JUPYTER_PLATFORM_DIRS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # see test_notebooks.py
    port, log = free_port(), home / "jupyter.log"
    with open(log, "w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
             f"--ServerApp.root_dir={home}", "--IdentityProvider.token=", "--ServerApp.password=",
             "--ServerApp.disable_check_xsrf=True", "--allow-root"],
            cwd=home, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, server)
        yield url, log
    finally:
        server.terminate()  # the server shuts its kernels down on SIGTERM
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)  # the group start_new_session gave the server
            server.wait()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


def _run_all(page, log: Path) -> dict:
    """Run > Run All Cells from the menu, then wait until every code cell ran and the kernel is idle."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    deadline = time.monotonic() + RUN_S
    while True:
        progress = page.evaluate(PROGRESS_JS)
        assert progress["error"] is None, progress["error"]
        if progress["done"] == progress["code"] and progress["status"] == "idle":
            return progress
        if time.monotonic() > deadline:
            raise TimeoutError(f"Run All unfinished after {RUN_S} s: {progress}; server log:\n"
                               + log.read_text()[-3000:])
        page.wait_for_timeout(1000)


def _scroll_through(page) -> dict[int, str]:
    """Scroll from the top to the end; the text of each output table cell when it was in view."""
    page.evaluate("() => { window.jupyterapp.shell.currentWidget.node"
                  ".querySelector('.jp-WindowedPanel-outer').scrollTop = 0; }")
    shown: dict[int, str] = {}
    total = 0
    for _ in range(500):
        page.wait_for_timeout(250)  # let the cells brought into view render
        visible = page.evaluate(VISIBLE_CELLS_JS)
        total = visible["total"]
        for i, text in visible["seen"].items():
            shown[int(i)] = text or shown.get(int(i), "")  # empty only if it never showed text
        step = page.evaluate(SCROLL_JS)
        if step["bottom"] and not step["moved"]:
            break
    page.wait_for_timeout(250)
    for i, text in page.evaluate(VISIBLE_CELLS_JS)["seen"].items():
        shown[int(i)] = text or shown.get(int(i), "")
    assert len(shown) == total, f"{total - len(shown)} of {total} table cells never came into view"
    return shown


@pytest.mark.timeout(RUN_S + 240)
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_run_all_in_jupyterlab_shows_every_table_cell(lab, browser, name):
    url, log = lab
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(90_000)
    try:
        page.goto(f"{url}/lab/tree/notebooks/{name}?reset")
        page.wait_for_function("() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
                               " const k = w && w.sessionContext && w.sessionContext.session"
                               " && w.sessionContext.session.kernel; return k && k.status === 'idle'; }")
        progress = _run_all(page, log)
        assert page.evaluate(EXECUTABLE_JS) == sys.prefix  # the kernel is this environment's Python
        assert progress["plotlyTables"] == 0, "tables of captions and scores should be HTML, not Plotly tables"
        shown = _scroll_through(page)
        assert shown, f"{name}: no HTML table in the outputs"
        empty = sorted(i for i, text in shown.items() if not text)
        assert not empty, f"{name}: {len(empty)} of {len(shown)} table cells show nothing (cells {empty[:10]})"
    finally:
        page.close()
