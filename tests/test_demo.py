"""The committed demo (data/demo) has the structure that ``vrm-train demo`` builds today.

A tiny demo is regenerated through the same console command; both must hold the same runs, the same
files and the same snapshot kinds and keys (epochs differ by design: the tiny demo trains one epoch).
"""

import os
import subprocess
import sys

import pytest
import torch
from filelock import FileLock

from vrm_train.rundir import RunDir
from vrm_viz.runs import DEMO_DIR

# xdist_group does not hold with pytest 9.2 + xdist 3.8 (items keep their node id): the fixture's lock does
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("demo_tiny")]

RUN_FILES = ("config.yaml", "metrics.csv", "summary.json", os.path.join("checkpoints", "student.pt"))
MAX_DEMO_MB = 30


def run_names(root) -> list[str]:
    return sorted(d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, "config.yaml")))


def snapshots(root, name) -> dict[str, list[str]]:
    """kind -> snapshot paths of one run."""
    out: dict[str, list[str]] = {}
    for kind, _, _, path in RunDir(os.path.join(root, name)).snapshots():
        out.setdefault(kind, []).append(path)
    return out


def snapshot_keys(path) -> set[str]:
    obj = torch.load(path, map_location="cpu", weights_only=True)
    assert isinstance(obj, dict), path
    return set(obj)


@pytest.fixture(scope="module")
def committed():
    if not os.path.isdir(DEMO_DIR) or not run_names(DEMO_DIR):
        pytest.fail(f"no committed demo at {DEMO_DIR}: build it with `vrm-train demo data/demo`")
    return DEMO_DIR


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny demo built once per test session, even when several xdist workers ask for it."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # one session's shared folder
    out, done = shared / "demo_tiny", shared / "demo_tiny.done"
    with FileLock(str(shared / "demo_tiny.lock")):
        if not done.exists():
            build_tiny(str(out))
            done.write_text("ok")
    return str(out)


def build_tiny(out: str) -> None:
    exe = os.path.join(os.path.dirname(sys.executable), "vrm-train")
    if not os.path.isfile(exe):
        pytest.fail(f"console script {exe} missing: install the project (pip install -e .)")
    proc = subprocess.run(
        [exe, "demo", out, "--tiny", "--no-progress"], capture_output=True, text=True, timeout=1200
    )
    assert proc.returncode == 0, (
        f"vrm-train demo --tiny failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )


def test_committed_demo_is_small(committed):
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(committed) for f in files)
    assert total < MAX_DEMO_MB * 2**20, f"data/demo holds {total / 2**20:.1f} MB (limit {MAX_DEMO_MB} MB)"


def test_same_runs(committed, tiny):
    names = run_names(committed)
    assert names == run_names(tiny)
    assert {"teacher_resnet20", "vrm_resnet8", "vrm_resnet8_s1", "kd_resnet8"} <= set(names)


def test_every_run_has_its_files(committed, tiny):
    for root in (committed, tiny):
        for name in run_names(root):
            missing = [f for f in RUN_FILES if not os.path.isfile(os.path.join(root, name, f))]
            assert not missing, f"{root}/{name} lacks {missing}"
            # only the student export is kept (last/best carry optimizer state)
            assert sorted(os.listdir(os.path.join(root, name, "checkpoints"))) == ["student.pt"], (root, name)


def test_same_snapshot_kinds(committed, tiny):
    for name in run_names(committed):
        kinds = set(snapshots(committed, name))
        assert kinds == {"probe", "train"}, f"{name}: snapshot kinds {kinds}"
        assert set(snapshots(tiny, name)) == kinds, name


def test_snapshots_load_safely_with_the_committed_keys(committed, tiny):
    for name in run_names(committed):
        theirs = snapshots(tiny, name)
        for kind, paths in snapshots(committed, name).items():
            keys = snapshot_keys(paths[0])
            assert {"s", "s_v", "targets", "image", "image_v", "kind", "epoch"} <= keys, (name, kind)
            for path in paths[1:] + theirs[kind]:
                assert snapshot_keys(path) == keys, f"{path} differs in keys from {paths[0]}"


def test_student_exports_load_safely(committed, tiny):
    for root in (committed, tiny):
        for name in run_names(root):
            obj = torch.load(os.path.join(root, name, "checkpoints", "student.pt"), weights_only=True)
            assert isinstance(obj, dict) and "model" in obj and obj["model"], (root, name)


def test_same_metrics_columns(committed, tiny):
    """A demo built before a trainer change to what metrics.csv logs is stale: rebuild it."""
    for name in run_names(committed):
        with open(os.path.join(committed, name, "metrics.csv")) as f:
            ours = f.readline().strip().split(",")
        with open(os.path.join(tiny, name, "metrics.csv")) as f:
            theirs = f.readline().strip().split(",")
        assert ours == theirs, f"{name}: committed metrics.csv columns differ; run `vrm-train demo data/demo`"
