"""The app served for a real browser: ``streamlit run`` on a free loopback port and headless Debian chromium.

Shared by the browser test and ``scripts/screenshots.py``. Playwright's own browsers are never downloaded;
``/usr/bin/chromium`` (``apt-get install chromium``) is driven instead.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from typing import IO

ROUTER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "main.py")  # the app's router script
# The folder that holds the vrm_app package (a checkout, or site-packages when installed).
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def serve_app(main: str = ROUTER, *, timeout: float = 60.0, log: IO[str] | None = None):
    """Run the streamlit app in a subprocess until the block ends; yields its base URL.

    The server's output goes to ``log`` when given (else it is kept and shown if the server dies early).
    Raises RuntimeError when streamlit exits before answering, TimeoutError after ``timeout`` seconds."""
    port = free_port()
    streamlit = os.path.join(os.path.dirname(sys.executable), "streamlit")
    cmd = [streamlit, "run", main, "--server.port", str(port), "--server.headless", "true"]
    cmd += ["--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    out = log if log is not None else subprocess.PIPE
    # The server imports this same copy of vrm_app (the checkout's, when run from one).
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))
    )
    proc = subprocess.Popen(cmd, cwd=PACKAGE_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    where = f"see {log.name}" if log is not None else "its output follows"
    try:
        deadline = time.monotonic() + timeout
        while not _healthy(url):
            if proc.poll() is not None:
                output = "" if log is not None else "\n" + proc.stdout.read()
                raise RuntimeError(f"streamlit exited with code {proc.returncode} ({where}){output}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"streamlit did not answer on {url} within {timeout:.0f} s ({where})")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def launch_chromium(playwright):
    """Headless Debian chromium through a Playwright instance."""
    if not os.path.exists(CHROMIUM):
        raise FileNotFoundError(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
