"""The real app in a real browser: ``streamlit run`` + headless Debian chromium (Playwright, sync API).

A short user journey, each step asserting what is shown: open the demo → pick a run → move the pruning
slider → click an edge in the node-link view → open Pruned edges → follow a shared URL in a new session.
Streamlit draws pages after websocket traffic, so every step waits for text before asserting. Screenshots
of each step are kept in test-artifacts/ (git-ignored). Playwright's own browsers are never downloaded.
"""

import os
import re
from urllib.parse import parse_qs, urlparse

import pytest

from vrm_app.browser import launch_chromium, serve_app

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARTIFACTS = os.path.join(REPO, "test-artifacts")
TIMEOUT_MS = 180_000  # the first render loads torch models and snapshots on two shared cores
IDLE = "!document.querySelector('[data-testid=\"stStatusWidget\"]')"


def _artifacts() -> str:
    os.makedirs(ARTIFACTS, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def server():
    """``streamlit run app/main.py`` on a free port; always stopped at the end of the module."""
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


def settle(page, text: str | None = None) -> None:
    """Wait until ``text`` is on the page (when given) and the script has finished running."""
    if text is not None:
        page.get_by_text(text, exact=False).first.wait_for(timeout=TIMEOUT_MS)
    page.wait_for_timeout(300)  # the status widget appears only after a short delay
    page.wait_for_function(IDLE, timeout=TIMEOUT_MS)
    assert page.locator('[data-testid="stException"]').count() == 0, "the page shows a traceback"


def shot(page, name: str) -> None:
    """Keep a screenshot of a step (an artifact for people, not an assertion: a slow font load on a busy
    machine is reported, not failed)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.screenshot(path=os.path.join(_artifacts(), f"journey_{name}.png"), timeout=90_000)
    except PlaywrightTimeout:
        print(f"screenshot of step {name} timed out (busy machine); the step's assertions ran")


def params(page) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the Streamlit select box labelled ``label``."""
    page.get_by_role("combobox", name=label, exact=True).first.click()
    page.get_by_role("option", name=option, exact=True).first.click()


def click_first_edge(page) -> list[str]:
    """Click the first edge marker of the node-link view; returns its [u, v] vertex ids as strings.
    Streamlit draws a chart when it scrolls into view: every chart is scrolled to first."""
    charts = page.locator('[data-testid="stPlotlyChart"]')
    for i in range(charts.count()):
        charts.nth(i).scroll_into_view_if_needed()
    page.wait_for_function(
        "[...document.querySelectorAll('.js-plotly-plot')].some(gd => gd.layout && "
        "(gd.layout.title.text || '').includes('Node-link view'))",
        timeout=TIMEOUT_MS,
    )
    found = page.evaluate(
        """() => {
        for (const gd of document.querySelectorAll('.js-plotly-plot')) {
            const title = gd.layout && gd.layout.title && (gd.layout.title.text || '');
            if (!title.includes('Node-link view')) continue;
            gd.scrollIntoView({block: 'center'});
            const i = gd.data.findIndex(t => t.name === 'edges (click to inspect)');
            const t = gd.data[i], xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
            const box = gd.getBoundingClientRect();
            return {x: box.left + xa._offset + xa.l2p(t.x[0]), y: box.top + ya._offset + ya.l2p(t.y[0]),
                    ids: t.customdata[0].map(String)};
        }
        return null;
    }"""
    )
    assert found, "no node-link view on the page"
    page.mouse.click(found["x"], found["y"])
    return found["ids"]


def test_user_journey(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        # 1. open the demo: the Runs page lists the demo runs
        page.goto(server)
        settle(page, "runs in")
        assert page.get_by_role("heading", name="Runs").count() >= 1
        assert "vrm_resnet8" in page.inner_text("body")
        shot(page, "1_runs")

        # 2. pick a run in Affinity graphs: the run is named in the URL and described honestly
        page.get_by_role("link", name="Affinity graphs").click()
        settle(page, "Node-link view")
        choose(page, "Run", "kd_resnet8")
        settle(page, "not VRM: it has no VRM options")
        assert params(page)["run"] == "kd_resnet8"
        shot(page, "2_run")

        # 3. move the pruning slider with the keyboard: the pruned count and the URL follow
        pruned_before = page.locator('[data-testid="stMetric"]').filter(has_text="Pruned").first.inner_text()
        ratio_before = params(page)["uep_ratio"]
        slider = page.locator('input[type=range][aria-label="UEP ratio"]').first
        for step in range(1, 6):  # one key at a time: a press during the previous press's rerun can be lost
            slider.focus()
            page.keyboard.press("ArrowRight")
            want = float(ratio_before) + 0.01 * step
            page.wait_for_function(
                "Math.abs(parseFloat(new URLSearchParams(location.search).get('uep_ratio')) - "
                f"{want}) < 1e-6",
                timeout=TIMEOUT_MS,
            )
        settle(page)
        ratio_after = float(params(page)["uep_ratio"])
        assert ratio_after == pytest.approx(float(ratio_before) + 0.05)
        pruned_after = page.locator('[data-testid="stMetric"]').filter(has_text="Pruned").first.inner_text()
        assert pruned_after != pruned_before
        shot(page, "3_slider")

        # 4. click an edge of the node-link view: the inspector shows that edge
        ids = click_first_edge(page)
        page.wait_for_function("location.search.includes('edge=')", timeout=TIMEOUT_MS)
        settle(page)
        # under load the click's rerun can rewrite the URL once more: read it when it holds the edge again
        page.wait_for_function("location.search.includes('edge=')", timeout=TIMEOUT_MS)
        edge = params(page)["edge"]
        u, v = edge.split(",")
        assert page.get_by_text(f"Edge {u} – {v}").count() + page.get_by_text(f"Edge {v} – {u}").count() >= 1
        assert ids[0] != ids[1]
        shared = page.url
        shot(page, "4_edge")

        # 5. open Pruned edges: the top edge is explained with its rule, histogram and endpoints
        page.get_by_role("link", name="Pruned edges").click()
        settle(page, "Why an edge is pruned")
        page.get_by_text("Class probabilities at the two endpoints").first.wait_for(timeout=TIMEOUT_MS)
        body = page.inner_text("body")
        assert re.search(r"Edge r\d+ – v\d+: pruned", body) and "cut-off" in body
        shot(page, "5_pruned")
    finally:
        page.close()

    # 6. follow the shared URL in a new session: the same run, ratio and edge come back
    other = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        other.goto(shared)
        settle(other, "Node-link view")
        settle(other, f"Edge {u} – {v}")
        p = params(other)
        assert p["run"] == "kd_resnet8" and float(p["uep_ratio"]) == pytest.approx(ratio_after)
        assert p["edge"] == edge
        shot(other, "6_shared")
    finally:
        other.close()
