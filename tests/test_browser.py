"""The real app in a real browser: ``streamlit run`` + headless Debian chromium (Playwright, sync API).

Streamlit draws pages in the browser after websocket traffic, so this is the one test that sees what a
user sees: the Affinity graphs page must show its title and a drawn plotly graph. A screenshot is kept in
test-artifacts/ (git-ignored). Playwright's own browsers are never downloaded: Debian's chromium is used.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARTIFACTS = os.path.join(REPO, "test-artifacts")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
APP = "app/main.py"
PAGE, TITLE = "graphs", "Affinity graphs"
TIMEOUT_MS = 180_000  # the first render loads torch models and snapshots on two shared cores


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    """``streamlit run app/main.py`` on a free port; always stopped at the end of the module."""
    port = _free_port()
    streamlit = os.path.join(os.path.dirname(sys.executable), "streamlit")
    cmd = [streamlit, "run", APP, "--server.port", str(port), "--server.headless", "true"]
    cmd += ["--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    log = open(os.path.join(_artifacts(), "streamlit.log"), "w", encoding="utf-8")  # noqa: SIM115
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while not _healthy(url):
            if proc.poll() is not None:
                pytest.fail(f"streamlit exited with code {proc.returncode}; see test-artifacts/streamlit.log")
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not serve {url} within 90 s; see test-artifacts/streamlit.log")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _artifacts() -> str:
    os.makedirs(ARTIFACTS, exist_ok=True)
    return ARTIFACTS


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium with `apt-get install chromium`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def test_graphs_page_draws_a_plot(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"{server}/{PAGE}")
        page.get_by_role("heading", name=TITLE).first.wait_for(timeout=TIMEOUT_MS)
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=TIMEOUT_MS)
        page.wait_for_function(
            "!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=TIMEOUT_MS
        )
        assert page.locator(".js-plotly-plot").count() >= 1
        assert page.locator('[data-testid="stException"]').count() == 0, "the page shows a traceback"
        body = page.inner_text("body")
        assert "Page not found" not in body
    finally:
        page.screenshot(path=os.path.join(_artifacts(), f"browser_{PAGE}.png"))
        page.close()
