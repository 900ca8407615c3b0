"""Fault injection: kill -9 at write points of a run (the final writes included), concurrent starts on one run
directory, and the lock of a killed process. Processes are forked, so each costs no new interpreter."""

import multiprocessing as mp
import os
import random
import signal
import sys
import time

import pytest
import torch

from vrm_train.checkpoint import load_file
from vrm_train.cli import main
from vrm_train.rundir import RunDir

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("engine")]
FORK = mp.get_context("fork")
TINY = [
    "teacher",
    "data.name=synthetic",
    "data.synthetic_size=96",
    "data.image_size=16",
    "data.batch_size=32",
    "data.eval_batch_size=96",
    "snapshot.probe_size=8",
    "snapshot.train_batches=1",
    "snapshot.epochs=[0,1]",
    "model.name=resnet8",
    "device=cpu",
    "deterministic=true",
    "optim.epochs=2",
    "--no-progress",
]
TIMING = {"epoch_time", "images_per_s", "peak_mem_mb"}


@pytest.fixture(autouse=True)
def one_thread():
    """Parent and forked children compute with one thread: equal float sums, and no OpenMP pool to fork."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _child(args: list[str], kill_at: int, after: bool, run: str) -> None:
    """Train with ``os.replace`` patched to SIGKILL this process at the ``kill_at``-th write into ``run``."""
    real, count = os.replace, [0]

    def replace(src, dst, *a, **k):
        if not os.path.abspath(dst).startswith(run + os.sep):
            return real(src, dst, *a, **k)
        count[0] += 1
        if count[0] == kill_at and not after:
            os.kill(os.getpid(), signal.SIGKILL)
        real(src, dst, *a, **k)
        if count[0] == kill_at and after:
            os.kill(os.getpid(), signal.SIGKILL)

    os.replace = replace
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - the process ends here
    os._exit(main(args))


def _writes(args: list[str], run: str, monkeypatch) -> list[str]:
    """The targets of every atomic write of an uninterrupted run, in order."""
    real, seen = os.replace, []

    def replace(src, dst, *a, **k):
        if os.path.abspath(dst).startswith(run + os.sep):
            seen.append(os.path.relpath(dst, run))
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", replace)
    assert main(args) == 0
    monkeypatch.undo()
    return seen


def _state(run: str) -> dict:
    r = RunDir(run)
    out = {
        "metrics": [{k: v for k, v in row.items() if k not in TIMING} for row in r.read_metrics()],
        "summary": {
            k: v for k, v in r.read_summary().items() if k not in {"run", "mean_epoch_time", "peak_mem_mb"}
        },
        "files": sorted(
            os.path.relpath(os.path.join(d, f), run)
            for d, _, fs in os.walk(run)
            for f in fs
            if f != "changes.json"
        ),
    }
    for which in ("last", "best", "student"):
        ck = load_file(r.checkpoint(which))
        out[which] = (ck["epoch"], {k: v.clone() for k, v in ck["model"].items()})
    out["probe"] = {e: load_file(p)["s"] for k, e, _, p in r.snapshots() if k == "probe"}
    return out


def _assert_same(a: dict, b: dict) -> None:
    for ra, rb in zip(a["metrics"], b["metrics"], strict=True):
        assert ra == rb, {k: (ra.get(k), rb.get(k)) for k in ra.keys() | rb.keys() if ra.get(k) != rb.get(k)}
    assert a["summary"] == b["summary"]
    assert a["files"] == b["files"]
    for which in ("last", "best", "student"):
        assert a[which][0] == b[which][0], which
        for k, v in a[which][1].items():
            assert torch.equal(v, b[which][1][k]), (which, k)
    assert a["probe"].keys() == b["probe"].keys()
    for e, s in a["probe"].items():
        assert torch.equal(s, b["probe"][e]), e


def test_kill_9_at_write_points_then_resume_gives_the_uninterrupted_run(tmp_path, monkeypatch, capsys):
    ref_run = str(tmp_path / "ref" / "r")
    events = _writes([*TINY, f"out_dir={tmp_path / 'ref'}", "name=r"], ref_run, monkeypatch)
    reference = _state(ref_run)
    last_epoch = [i for i, e in enumerate(events, 1) if e == os.path.join("checkpoints", "last.pt")][-2]
    final = list(range(last_epoch + 1, len(events) + 1))  # every write of the final epoch
    rng = random.Random(os.environ.get("VRM_FAULT_SEED", "0"))
    earlier = rng.sample(range(1, last_epoch + 1), 2)  # two random points before it
    points = [(k, True) for k in final] + [(k, rng.random() < 0.5) for k in earlier]
    points.append((final[0], False))  # a kill before a write: a .tmp-* file is left behind
    for i, (k, after) in enumerate(points):
        out = tmp_path / f"k{i}"
        run = str(out / "r")
        args = [*TINY, f"out_dir={out}", "name=r"]
        child = FORK.Process(target=_child, args=(args, k, after, run))
        child.start()
        child.join(120)
        where = f"kill at write {k} ({'after' if after else 'before'} {events[k - 1]})"
        assert child.exitcode == -signal.SIGKILL, where
        capsys.readouterr()
        code = main(["resume", run, "--no-progress"]) if RunDir(run).exists() else main(args)
        assert code == 0, (where, capsys.readouterr().err)
        err = capsys.readouterr().err
        assert "took over the lock of process" in err, where
        _assert_same(_state(run), reference)
        assert not [f for f in reference["files"] if ".tmp" in f or f.endswith(".lock")]
        assert main(["resume", run, "--no-progress"]) == 0  # and again: nothing left to do, nothing changes
        _assert_same(_state(run), reference)


def _start(args: list[str], go) -> None:
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - the process ends here
    go.wait(60)
    os._exit(main(args))


@pytest.mark.parametrize("trial", range(3))
def test_concurrent_starts_leave_one_consistent_run(trial, tmp_path):
    go = FORK.Event()
    procs = [
        FORK.Process(
            target=_start,
            args=([*TINY, "optim.epochs=1", f"out_dir={tmp_path}", "name=r", f"optim.lr={lr}"], go),
        )
        for lr in (0.01, 0.02)
    ]
    for p in procs:
        p.start()
    go.set()
    for p in procs:
        p.join(180)
    assert sorted(p.exitcode for p in procs) == [0, 2]  # one trains, the other is refused
    run = RunDir(str(tmp_path / "r"))
    lr = load_file(run.checkpoint("last"))["config"]["optim"]["lr"]
    with open(run.config) as f:
        assert f"lr: {lr}" in f.read()
    assert float(run.read_metrics()[0]["lr"]) == lr
    assert sorted(os.listdir(run.path)) == [
        "checkpoints",
        "config.yaml",
        "metrics.csv",
        "snapshots",
        "summary.json",
    ]


def _hold_and_die(folder: str) -> None:
    from vrm_train.runlock import RunLock

    RunLock(folder).acquire()
    os.kill(os.getpid(), signal.SIGKILL)


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path):
    from vrm_train.runlock import RunLock

    child = FORK.Process(target=_hold_and_die, args=(str(tmp_path / "r"),))
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    lock = RunLock(str(tmp_path / "r")).acquire()
    assert lock.took_over.startswith(f"process {child.pid} on host ")
    with open(lock.path) as f:
        assert f.read().startswith(f"pid={os.getpid()} ")
    lock.release()
    assert os.listdir(tmp_path / "r") == []  # released: the lock file is gone


def _hold_via_worker(folder: str, pids) -> None:
    from vrm_train.runlock import RunLock

    RunLock(folder).acquire()
    worker = os.fork()  # a data-loader worker: it inherits the locked file
    if worker == 0:
        signal.pause()
        os._exit(0)
    pids.put(worker)
    pids.close()
    pids.join_thread()
    os._exit(0)


def test_a_lock_left_to_the_workers_of_an_exited_holder_is_explained(tmp_path):
    from vrm_train.runlock import RunLock, RunLockedError

    pids = FORK.Queue()
    child = FORK.Process(target=_hold_via_worker, args=(str(tmp_path / "r"), pids))
    child.start()
    worker = pids.get(timeout=60)
    for _ in range(1200):  # not join(): the worker keeps the child's sentinel pipe open
        if child.exitcode is not None:  # polls waitpid: the exited child is reaped
            break
        time.sleep(0.05)
    assert child.exitcode == 0
    try:
        with pytest.raises(RunLockedError, match=rf"its holder, process {child.pid} on host .* has exited"):
            RunLock(str(tmp_path / "r")).acquire()
    finally:
        os.kill(worker, signal.SIGKILL)
    for _ in range(100):  # the killed worker's files close at once; poll rather than assume
        try:
            RunLock(str(tmp_path / "r")).acquire().release()
            break
        except RunLockedError:
            time.sleep(0.05)
    else:
        pytest.fail("the lock was not free after its last holder was killed")
