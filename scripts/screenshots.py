"""Screenshots of the app's main views for the README: ``python scripts/screenshots.py``.

Starts ``streamlit run app/main.py`` on a free port (the embedded demo runs), opens each view in headless
Debian chromium through Playwright, waits until its plots are drawn and writes ``docs/screenshots/<view>.png``.
Needs ``/usr/bin/chromium`` (``apt-get install chromium``); Playwright's own browsers are never downloaded.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
# view name -> url path (the default page, Runs, is served at the root: /runs answers "Page not found")
VIEWS = {"runs": "", "graphs": "graphs", "compare": "compare", "pruned": "pruned", "learn": "learn"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_app(main: str = "app/main.py", *, port: int | None = None, timeout: float = 60.0):
    """Run the streamlit app in a subprocess until the block ends; yields its base URL."""
    port = port or free_port()
    streamlit = os.path.join(os.path.dirname(sys.executable), "streamlit")
    cmd = [streamlit, "run", main, "--server.port", str(port), "--server.headless", "true"]
    cmd += ["--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{proc.stdout.read()}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"streamlit did not answer on {url} within {timeout:.0f} s")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def launch_chromium(playwright):
    if not os.path.exists(CHROMIUM):
        raise FileNotFoundError(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


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
