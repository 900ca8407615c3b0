#!/bin/sh
# Build the wheel and use it as a new user would: a fresh virtual environment, no checkout importable, the
# current directory somewhere else. Checks `vrm-train` (configs by name, the demo) and the app (`vrm-app`
# serving, every page of the router rendering on the packaged demo runs).
#
#   sh scripts/check_wheel.sh [WORK_DIR]        (default: a new folder under /tmp; kept for inspection)
#
# TORCH_SPEC chooses torch (default torch==2.13.0, the local CPU build); PYTHON the interpreter (python3).
set -eu
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${1:-$(mktemp -d /tmp/vrm-wheel.XXXXXX)}
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
step() { printf '\n== %s\n' "$*"; }

step "build the wheel"
"$PYTHON" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
"$VPY" -m pip install --quiet --upgrade pip
"$VPY" -m pip wheel --quiet --no-deps -w "$WORK/dist" "$REPO"
WHEEL=$(ls "$WORK"/dist/vrm-*.whl)
echo "$WHEEL ($(du -h "$WHEEL" | cut -f1))"

step "install it with the app extra (and $TORCH_SPEC) into a fresh venv"
"$VPY" -m pip install --quiet "$TORCH_SPEC" "$WHEEL[app]"

cd "$WORK"  # nothing of the checkout is importable from here
step "the packages and their data come from site-packages, not the checkout"
"$VPY" - "$REPO" <<'PY'
import importlib.metadata
import os
import sys

import vrm_app
import vrm_train
import vrm_viz
from vrm_train.resources import configs_dir, demo_dir

repo = os.path.realpath(sys.argv[1])
for where in [m.__file__ for m in (vrm_train, vrm_viz, vrm_app)] + [str(configs_dir()), str(demo_dir())]:
    assert "site-packages" in where and not os.path.realpath(where).startswith(repo), where
    assert os.path.exists(where), where
assert importlib.metadata.version("vrm") == vrm_train.__version__
for pkg in ("vrm_train", "vrm_viz"):
    assert os.path.isfile(os.path.join(os.path.dirname(sys.modules[pkg].__file__), "py.typed")), pkg
files = importlib.metadata.files("vrm")
assert any(str(f).endswith("licenses/LICENSE") for f in files), "LICENSE not in the wheel"
assert not any(str(f).startswith("app/") for f in files), "a top-level package 'app' was installed"
print("ok: version", vrm_train.__version__, "| configs", configs_dir(), "| demo", demo_dir())
PY

step "vrm-train: a packaged config by name, then the demo (tiny)"
"$WORK/venv/bin/vrm-train" configs fashion_mnist
"$WORK/venv/bin/vrm-train" demo "$WORK/demo_tiny" --tiny --no-progress >"$WORK/demo.log"
ls "$WORK/demo_tiny"

step "the app: every page of the router renders on the packaged demo runs (AppTest)"
"$VPY" - <<'PY'
import os
import re

from streamlit.testing.v1 import AppTest

import vrm_app

main = os.path.join(os.path.dirname(vrm_app.__file__), "main.py")
pages = re.findall(r"st\.Page\(\s*HERE\s*/\s*[\"'](views/[^\"']+\.py)[\"']", open(main, encoding="utf-8").read())
assert len(pages) >= 8, pages
for page in pages:
    at = AppTest.from_file(main, default_timeout=180)
    at.switch_page(page)
    at.run()
    assert not at.exception, (page, [e.value for e in at.exception])
    assert not at.error, (page, [e.value for e in at.error])
    print("ok:", page)
PY

step "vrm-app serves the app"
PORT=$("$VPY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$WORK/venv/bin/vrm-app" --server.headless true --server.port "$PORT" >"$WORK/vrm-app.log" 2>&1 &
APP_PID=$!
trap 'kill $APP_PID 2>/dev/null || true' EXIT
"$VPY" - "$PORT" <<'PY'
import sys
import time
import urllib.request

url = f"http://127.0.0.1:{sys.argv[1]}"
deadline = time.monotonic() + 90
while True:
    try:
        with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
            assert r.status == 200
        with urllib.request.urlopen(url + "/", timeout=5) as r:
            assert r.status == 200 and b"<html" in r.read().lower()
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit(f"vrm-app did not answer on {url} within 90 s")
        time.sleep(0.5)
print("ok: vrm-app answers on", url)
PY
step "wheel check passed ($WORK)"
