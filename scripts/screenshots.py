"""Screenshots of the app's main views for the README: ``python scripts/screenshots.py``.

Starts ``streamlit run`` of the app's router (vrm_app/main.py) on a free port (the embedded demo runs), opens each view in headless
Debian chromium through Playwright, waits until its plots are drawn and writes ``docs/screenshots/<view>.png``.
Needs ``/usr/bin/chromium`` (``apt-get install chromium``); Playwright's own browsers are never downloaded.
"""

from __future__ import annotations

import argparse
import os

from vrm_app.browser import launch_chromium, serve_app

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# view name -> url path (the default page, Runs, is served at the root: /runs answers "Page not found")
VIEWS = {
    "runs": "",
    "graphs": "graphs",
    "compare": "compare",
    "pruned": "pruned",
    "across": "across",
    "learn": "learn",
}


def wait_rendered(page, *, plots: int = 1, timeout_ms: int = 120_000) -> None:
    """Wait until the page has a title, at least ``plots`` drawn plotly graphs and no running spinner."""
    page.wait_for_selector("h1", timeout=timeout_ms)
    if plots:
        page.wait_for_function(
            f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {plots}", timeout=timeout_ms
        )
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout_ms)
    page.wait_for_timeout(800)  # plotly transitions


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--views", nargs="*", default=list(VIEWS), choices=list(VIEWS), help="default: all")
    p.add_argument("--out", default=os.path.join(REPO, "docs", "screenshots"))
    p.add_argument("--width", type=int, default=1400)
    p.add_argument("--height", type=int, default=1300)
    args = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    os.makedirs(args.out, exist_ok=True)
    with serve_app() as url, sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            page = browser.new_page(viewport={"width": args.width, "height": args.height})
            for view in args.views:
                page.goto(f"{url}/{VIEWS[view]}")
                wait_rendered(page)
                path = os.path.join(args.out, f"{view}.png")
                page.screenshot(path=path, full_page=False)
                print(f"wrote {os.path.relpath(path, REPO)}")
        finally:
            browser.close()


if __name__ == "__main__":
    main()
