"""Resume as a user types it: relative/absolute/moved run folders, schedule changes, retries of failed starts,
runs killed between their final writes, leftover temporary files, and metrics.csv files that are not ours."""

import json
import os
import shutil

import pytest
import torch
import yaml

from vrm_train.checkpoint import load_file
from vrm_train.cli import main
from vrm_train.engine import Trainer
from vrm_train.rundir import RunDir

pytestmark = pytest.mark.xdist_group("engine")

TINY = [
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
DEFAULT_RUN = os.path.join("runs", "vanilla_resnet8_synthetic_s0")  # default out_dir and name


def epochs_of(run) -> list[str]:
    return [r["epoch"] for r in RunDir(str(run)).read_metrics()]


def test_resume_with_relative_absolute_and_moved_run_dirs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["teacher", *TINY, "optim.epochs=1"]) == 0  # out_dir: runs, no name (the README's case)
    assert main(["resume", DEFAULT_RUN, "optim.epochs=2", "--no-progress"]) == 0, capsys.readouterr().err
    assert main(["resume", str(tmp_path / DEFAULT_RUN), "optim.epochs=3", "--no-progress"]) == 0
    moved = tmp_path / "elsewhere" / "kept"
    moved.parent.mkdir()
    shutil.move(str(tmp_path / DEFAULT_RUN), moved)
    monkeypatch.chdir(moved.parent)
    assert main(["resume", "kept", "optim.epochs=4", "--no-progress"]) == 0, capsys.readouterr().err
    assert epochs_of(moved) == ["1", "2", "3", "4"]
    saved = yaml.safe_load((moved / "config.yaml").read_text())
    assert saved["out_dir"] == "runs" and saved["name"] is None  # the saved config is left as it was
    assert json.loads(capsys.readouterr().out.split("\n}\n")[-2] + "\n}")["epochs_done"] == 4


def test_a_moved_project_finds_its_relative_teacher(tmp_path, monkeypatch, capsys):
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    assert main(["teacher", *TINY, "optim.epochs=1", "name=t"]) == 0
    assert (
        main(["distill", *TINY, "method=kd", "--teacher", "runs/t", "teacher.name=resnet8", "optim.epochs=1"])
        == 0
    )
    run = "runs/kd_resnet8_resnet8_synthetic_s0"
    assert yaml.safe_load((project / run / "config.yaml").read_text())["teacher"]["checkpoint"] == "runs/t"
    shutil.move(str(project), tmp_path / "renamed")
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["resume", f"renamed/{run}", "optim.epochs=2", "--no-progress"]) == 0, capsys.readouterr().err
    assert epochs_of(tmp_path / "renamed" / run) == ["1", "2"]
    changes = json.loads((tmp_path / "renamed" / run / "changes.json").read_text())
    assert list(changes[0]["changes"]) == ["optim.epochs"]  # the teacher is the same file: no change


def test_schedule_changes_need_the_flag_and_are_recorded(tmp_path, capsys):
    run = tmp_path / "r"
    assert main(["teacher", *TINY, "optim.epochs=1", f"out_dir={tmp_path}", "name=r"]) == 0
    config_before = (run / "config.yaml").read_bytes()
    last_before = (run / "checkpoints" / "last.pt").read_bytes()
    capsys.readouterr()
    new = ["optim.lr=0.01", "optim.clip_grad_norm=5", "optim.epochs=2"]
    assert main(["resume", str(run), *new, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "optim.lr: 0.05 -> 0.01" in err and "optim.clip_grad_norm: None -> 5" in err
    assert "--change-schedule" in err and "optim.epochs" not in err.split("Pass")[0]  # epochs needs no flag
    assert main(["resume", str(run), "seed=3", "optim.lr=0.01", "--change-schedule", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "shaped the saved training state: seed: 0 -> 3" in err and "Traceback" not in err
    assert (run / "config.yaml").read_bytes() == config_before  # refusals write nothing
    assert (run / "checkpoints" / "last.pt").read_bytes() == last_before

    assert main(["resume", str(run), *new, "--change-schedule", "--no-progress"]) == 0
    changes = json.loads((run / "changes.json").read_text())
    assert len(changes) == 1 and changes[0]["from_epoch"] == 2
    assert changes[0]["changes"] == {
        "optim.clip_grad_norm": {"old": None, "new": 5.0},
        "optim.epochs": {"old": 1, "new": 2},
        "optim.lr": {"old": 0.05, "new": 0.01},
    }
    rows = RunDir(str(run)).read_metrics()
    assert [float(r["lr"]) for r in rows] == [0.05, 0.01]  # the new rate from the next epoch on
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["optim"]["lr"] == 0.01 and saved["name"] == "r" and saved["out_dir"] == str(tmp_path)
    assert load_file(str(run / "checkpoints" / "last.pt"))["config"]["optim"]["lr"] == 0.01


def test_a_start_that_finished_no_epoch_does_not_block_its_retry(tmp_path, monkeypatch, capsys):
    def dies(self, epoch):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "train_epoch", dies)
    args = ["teacher", *TINY, "optim.epochs=1", f"out_dir={tmp_path}", "name=r", "snapshot.epochs=[0]"]
    with pytest.raises(KeyboardInterrupt):
        main(args)
    monkeypatch.undo()
    run = RunDir(str(tmp_path / "r"))
    assert run.exists() and not run.has_finished_epoch() and run.snapshots()  # config + probe_e000 only
    (tmp_path / "r" / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert main([*args, "optim.lr=0.1"]) == 0  # retried with another config, without --resume
    assert "finished no epoch (no checkpoint): starting it afresh" in capsys.readouterr().err
    assert epochs_of(run.path) == ["1"] and (tmp_path / "r" / "notes.txt").read_text() == "mine"
    assert yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["optim"]["lr"] == 0.1


def test_unusable_starts_write_nothing(tmp_path, capsys):
    assert main(["teacher", *TINY, "data.subset_per_class=2", f"out_dir={tmp_path}", "name=small"]) == 2
    err = capsys.readouterr().err
    assert "fewer than one batch (data.batch_size=32)" in err and "Traceback" not in err
    assert main(["teacher", *TINY, "model.name=resnet9", f"out_dir={tmp_path}"]) == 2
    assert "unknown model 'resnet9'" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == []


@pytest.fixture
def finished(tmp_path):
    """A deterministic 2-epoch run, and a copy of its folder per test."""
    out = tmp_path / "ref"
    args = ["teacher", *TINY, "optim.epochs=2", f"out_dir={out}", "name=r", "deterministic=true"]
    assert main([*args, "snapshot.epochs=[1]"]) == 0
    return out / "r"


def test_resume_completes_what_a_kill_after_last_pt_left_stale(finished, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(finished, run)
    ref = {n: load_file(str(finished / "checkpoints" / n)) for n in ("student.pt", "best.pt")}
    # the state an older write order left after a kill between last.pt and the final exports:
    stale = dict(ref["student.pt"], epoch=1, accuracy=0.0)
    torch.save(stale, run / "checkpoints" / "student.pt")
    os.remove(run / "checkpoints" / "best.pt")
    os.remove(run / "snapshots" / "probe_e002.pt")
    (run / "summary.json").write_text(json.dumps({"epochs_done": 1}))
    assert main(["resume", str(run), "--no-progress"]) == 0
    student = load_file(str(run / "checkpoints" / "student.pt"))
    assert student["epoch"] == 2 and student["accuracy"] == ref["student.pt"]["accuracy"]
    for k, v in ref["student.pt"]["model"].items():
        assert torch.equal(student["model"][k], v), k
    best = json.loads((finished / "summary.json").read_text())["best_epoch"]
    if best == 2:
        assert load_file(str(run / "checkpoints" / "best.pt"))["epoch"] == 2
    probe = load_file(str(run / "snapshots" / "probe_e002.pt"))
    assert torch.equal(probe["s"], load_file(str(finished / "snapshots" / "probe_e002.pt"))["s"])
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs_done"] == 2
    assert summary["last_top1"] == json.loads((finished / "summary.json").read_text())["last_top1"]


def test_leftover_temporary_files_are_removed_on_the_next_start(finished, tmp_path, capsys):
    run = tmp_path / "copy"
    shutil.copytree(finished, run)
    leftovers = [
        run / "checkpoints" / ".tmp-k1ll3d.pt",
        run / "config.yaml.tmp",
        run / "snapshots" / ".tmp-x.pt",
    ]
    for p in leftovers:
        p.write_bytes(b"\0" * 4096)
    (run / "notes.tmp").write_text("mine")
    capsys.readouterr()
    assert main(["resume", str(run), "--no-progress"]) == 0
    assert "removed 3 temporary file(s)" in capsys.readouterr().err
    assert not any(p.exists() for p in leftovers)
    assert (run / "notes.tmp").read_text() == "mine"  # a user's file is not ours to clean


GARBAGE = {
    "no epoch column": b"step,loss\n1,0.5\n",
    "not utf-8": bytes(range(128, 256)) * 8,
    "epoch not a number": b"epoch,loss\n1,0.5\nzwei,0.4\n",
    "history without the saved epoch": b"epoch,loss\n1,0.5\n",
}


@pytest.mark.parametrize("case", sorted(GARBAGE))
def test_a_metrics_file_that_is_not_ours_is_refused_and_kept(case, finished, tmp_path, capsys):
    run = tmp_path / "copy"
    shutil.copytree(finished, run)
    (run / "metrics.csv").write_bytes(GARBAGE[case])
    capsys.readouterr()
    assert main(["resume", str(run), "optim.epochs=3", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "metrics.csv" in err and "othing was changed" in err, err
    assert "Traceback" not in err and "UnicodeDecodeError" not in err
    assert (run / "metrics.csv").read_bytes() == GARBAGE[case]
    assert load_file(str(run / "checkpoints" / "last.pt"))["epoch"] == 2


def test_fewer_epochs_than_done_is_refused(finished, tmp_path, capsys):
    assert main(["resume", str(finished), "optim.epochs=1", "--no-progress"]) == 2
    assert "already finished 2 epochs" in capsys.readouterr().err


def test_the_non_finite_stop_advice_works_as_written(tmp_path, monkeypatch, capsys):
    """A NaN stop says: lower optim.lr, then resume with the schedule flag. Doing exactly that continues."""
    from vrm_train.distillers.vanilla import Vanilla

    original = Vanilla.forward

    def blows_up(self, x, x_v, y, epoch):
        out = original(self, x, x_v, y, epoch)
        if epoch == 2:
            out["losses"]["ce"] = out["losses"]["ce"] * float("inf")
        return out

    monkeypatch.setattr(Vanilla, "forward", blows_up)
    run = tmp_path / "r"
    assert main(["teacher", *TINY, "optim.epochs=3", "log_every=1", f"out_dir={tmp_path}", "name=r"]) == 2
    err = capsys.readouterr().err
    assert "non-finite loss at epoch 2" in err and "optim.lr" in err
    monkeypatch.undo()
    assert main(["resume", str(run), "optim.lr=0.01", "--change-schedule", "--no-progress"]) == 0
    assert epochs_of(run) == ["1", "2", "3"]
    changes = json.loads((run / "changes.json").read_text())
    assert changes[0]["from_epoch"] == 2 and changes[0]["changes"]["optim.lr"] == {"old": 0.05, "new": 0.01}
