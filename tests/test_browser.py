"""The real app in a real browser: ``streamlit run`` + headless Debian chromium (Playwright, sync API).

Streamlit draws pages in the browser after websocket traffic, so this is the one test that sees what a
user sees: the Affinity graphs page must show its title and a drawn plotly graph. A screenshot is kept in
test-artifacts/ (git-ignored). Playwright's own browsers are never downloaded: Debian's chromium is used.
"""

import os

import pytest

from vrm_app.browser import launch_chromium, serve_app

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARTIFACTS = os.path.join(REPO, "test-artifacts")
PAGE, TITLE = "graphs", "Affinity graphs"
TIMEOUT_MS = 180_000  # the first render loads torch models and snapshots on two shared cores


def _artifacts() -> str:
    os.makedirs(ARTIFACTS, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def server():
    """``streamlit run`` of the app's router (vrm_app/main.py) on a free port; always stopped at the end of the module."""
    with (
        open(os.path.join(_artifacts(), "streamlit.log"), "w", encoding="utf-8") as log,
        serve_app(timeout=90, log=log) as url,
    ):
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = launch_chromium(pw)
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
