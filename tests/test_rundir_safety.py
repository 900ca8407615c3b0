"""Nothing clobbers a run directory, and a folder that cannot take writes gets a clear message: a live run's
lock, `vrm-train demo` on a user's folder, read-only and full output folders (monkeypatched writes)."""

import errno
import os
import socket

import pytest

from vrm_train.checkpoint import load_file
from vrm_train.cli import main
from vrm_train.engine import Trainer
from vrm_train.rundir import RunDir

pytestmark = pytest.mark.xdist_group("engine")

TINY = [
    "teacher",
    "data.name=synthetic",
    "data.synthetic_size=96",
    "data.image_size=16",
    "data.batch_size=32",
    "data.eval_batch_size=96",
    "snapshot.probe_size=8",
    "snapshot.train_batches=1",
    "model.name=resnet8",
    "device=cpu",
    "--no-progress",
]


def test_a_held_lock_names_its_holder(tmp_path):
    from vrm_train.runlock import RunLock, RunLockedError

    with RunLock(str(tmp_path / "r")), pytest.raises(RunLockedError) as e:
        RunLock(str(tmp_path / "r")).acquire()
    assert f"in use by process {os.getpid()} on host {socket.gethostname()}" in str(e.value)
    RunLock(str(tmp_path / "r")).acquire().release()  # free again once released


def test_resume_of_a_run_still_training_is_refused(tmp_path, capsys):
    from vrm_train.runlock import RunLock

    assert main([*TINY, "optim.epochs=1", f"out_dir={tmp_path}", "name=r"]) == 0
    run = tmp_path / "r"
    before = {p: (run / p).read_bytes() for p in ("metrics.csv", "config.yaml", "checkpoints/last.pt")}
    capsys.readouterr()
    with RunLock(str(run)):  # stands for the process that is training it
        assert main(["resume", str(run), "optim.epochs=2", "--no-progress"]) == 2
        assert main([*TINY, "optim.epochs=1", f"out_dir={tmp_path}", "name=r", "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.count(f"is in use by process {os.getpid()} on host {socket.gethostname()}") == 2
    assert "Traceback" not in err
    assert {p: (run / p).read_bytes() for p in before} == before


def _failing(monkeypatch, code: int, inside: str, when=lambda: True):
    """Make every rename into ``inside`` (and folder creation there) fail with ``code`` while ``when()``."""
    real_replace, real_makedirs = os.replace, os.makedirs

    def replace(src, dst, *a, **k):
        if os.path.abspath(dst).startswith(inside) and when():
            raise OSError(code, os.strerror(code), dst)
        return real_replace(src, dst, *a, **k)

    def makedirs(path, *a, **k):
        if os.path.abspath(path).startswith(inside) and when() and not os.path.isdir(path):
            raise OSError(code, os.strerror(code), path)
        return real_makedirs(path, *a, **k)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "makedirs", makedirs)


def test_a_read_only_output_folder_is_named(tmp_path, monkeypatch, capsys):
    ro = str(tmp_path / "ro")
    os.mkdir(ro)
    _failing(monkeypatch, errno.EROFS, ro)
    assert main([*TINY, "optim.epochs=1", f"out_dir={ro}", "name=r"]) == 2
    err = capsys.readouterr().err
    assert f"cannot write {ro}/r: read-only file system" in err and "out_dir=" in err, err
    assert "Traceback" not in err and os.listdir(ro) == []


def test_a_full_disk_loses_nothing_and_resume_continues(tmp_path, monkeypatch, capsys):
    run = str(tmp_path / "r")
    full = {"on": False}
    original = Trainer.train_epoch

    def epoch(self, n):
        full["on"] = n == 2  # the disk fills up during epoch 2
        return original(self, n)

    monkeypatch.setattr(Trainer, "train_epoch", epoch)
    _failing(monkeypatch, errno.ENOSPC, run, lambda: full["on"])
    args = [*TINY, "optim.epochs=2", "snapshot.epochs=[1,2]", f"out_dir={tmp_path}", "name=r"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "no space left on device" in err and "free space on the disk holding" in err
    assert (
        f"the last checkpoint {run}/checkpoints/last.pt (epoch 1) is intact" in err and "Traceback" not in err
    )
    assert load_file(os.path.join(run, "checkpoints", "last.pt"))["epoch"] == 1
    assert not [f for d, _, fs in os.walk(run) for f in fs if f.startswith(".tmp-")]  # no half-written files
    monkeypatch.undo()
    assert main(["resume", run, "--no-progress"]) == 0
    assert [r["epoch"] for r in RunDir(run).read_metrics()] == ["1", "2"]
    assert load_file(os.path.join(run, "checkpoints", "student.pt"))["epoch"] == 2


def test_demo_refuses_a_folder_that_is_not_a_demo(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    assert main(["demo", str(mine), "--tiny", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "thesis.tex" in err and "--force" in err and ".vrm-demo" in err and "Traceback" not in err
    assert (mine / "thesis.tex").read_text() == "years of work"
    (tmp_path / "afile").write_text("x")
    assert main(["demo", str(tmp_path / "afile"), "--tiny"]) == 2
    assert (tmp_path / "afile").read_text() == "x"


def test_demo_replaces_empty_folders_earlier_demos_and_anything_with_force(tmp_path):
    from vrm_train.demo import MARKER, prepare_output

    empty = tmp_path / "empty"
    empty.mkdir()
    prepare_output(str(empty))
    assert os.listdir(empty) == [MARKER]
    (empty / "old_run").mkdir()  # an earlier demo's content goes
    prepare_output(str(empty))
    assert os.listdir(empty) == [MARKER]
    forced = tmp_path / "forced"
    forced.mkdir()
    (forced / "x.txt").write_text("x")
    prepare_output(str(forced), force=True)
    assert os.listdir(forced) == [MARKER]
    prepare_output(str(tmp_path / "new" / "demo"))
    assert os.listdir(tmp_path / "new" / "demo") == [MARKER]


def test_a_student_checkpoint_is_refused_not_ignored(tmp_path, capsys):
    assert main([*TINY, f"out_dir={tmp_path}", "model.checkpoint=/some/student.pt"]) == 2
    err = capsys.readouterr().err
    assert "'model.checkpoint' (/some/student.pt) is not used" in err and "vrm-train resume" in err
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "args, option",
    [
        (["eval", "x.pt", "--arch", "resnet9"], "--arch resnet9"),
        (
            ["snapshot", "--teacher", "t.pt", "--teacher-arch", "resnet9", "--out", "o"],
            "--teacher-arch resnet9",
        ),
        (
            ["snapshot", "--teacher", "t.pt", "--student-arch", "Resnet8", "--out", "o"],
            "--student-arch Resnet8",
        ),
        (
            ["distill", "method=kd", "teacher.name=resnet9", "teacher.checkpoint=t.pt"],
            "'teacher.name': unknown",
        ),
        (["teacher", "model.name=resnet9"], "'model.name': unknown"),
    ],
)
def test_unknown_model_names_are_named_in_every_verb(args, option, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert option in err and "available: resnet8" in err and "Traceback" not in err
    assert os.listdir(tmp_path) == []


def test_atomic_writes_use_unique_temporary_names_and_the_usual_permissions(tmp_path, monkeypatch):
    from vrm_train.fileio import atomic_write_text

    names = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: names.append(os.path.basename(src)) or real(src, dst))
    for _ in range(3):
        atomic_write_text(str(tmp_path / "config.yaml"), "a: 1\n")
    assert len(set(names)) == 3 and all(n.startswith(".tmp-") for n in names)  # never config.yaml.tmp
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(tmp_path / "config.yaml").st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's 0600
    assert os.listdir(tmp_path) == ["config.yaml"]
