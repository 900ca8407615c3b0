#!/bin/sh
# Install every declared dependency at its floor (the ">=" version of pyproject.toml, as "==") into a fresh
# virtual environment and run tests of this checkout there, so the floors we declare are ones that work.
#
#   sh scripts/check_floors.sh [WORK_DIR] [PYTEST ARGS...]
#
# torch is the exception: older torch builds on PyPI are multi-GB CUDA wheels, so TORCH_SPEC (default
# torch==2.13.0, the local CPU build) is installed instead; the torch floor rests on the release in which
# the APIs we use first appeared (see README, "Dependency floors").
set -eu
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${1:-$(mktemp -d /tmp/vrm-floors.XXXXXX)}
[ $# -gt 0 ] && shift
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
mkdir -p "$WORK"

PINS=$("$PYTHON" - "$REPO/pyproject.toml" <<'PY'
import re
import sys
import tomllib

with open(sys.argv[1], "rb") as f:
    project = tomllib.load(f)["project"]
for req in project["dependencies"] + project["optional-dependencies"]["app"]:
    name, floor = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9][0-9A-Za-z.]*)", req.split(";")[0].strip()).groups()
    if name != "torch":
        print(f"{name}=={floor}")
PY
)
echo "floors: $(echo $PINS)"
[ -x "$WORK/venv/bin/python" ] || "$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install --quiet --upgrade pip
# shellcheck disable=SC2086  # one argument per pin
# pyarrow (streamlit's dependency, not ours) declares no numpy requirement, but its newest releases refuse
# numpy 1.x at import; with our numpy floor it has to be one that still supports numpy 1.x.
"$WORK/venv/bin/python" -m pip install --quiet "$TORCH_SPEC" $PINS "pyarrow<20" pytest pytest-xdist
"$WORK/venv/bin/python" -m pip list --format freeze >"$WORK/installed.txt"
cd "$REPO"
PYTHONPATH="$REPO" "$WORK/venv/bin/python" -m pytest -p no:cacheprovider "$@"
