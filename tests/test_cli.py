"""The vrm-train command line: real runs through the entry point, and clear errors (exit 2, no traceback)."""

import json
import os
import subprocess
import sys

import pytest

from vrm_train.cli import main

pytestmark = pytest.mark.xdist_group("engine")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = [
    "data.name=synthetic",
    "data.synthetic_size=128",
    "data.image_size=16",
    "data.batch_size=32",
    "snapshot.probe_size=8",
    "optim.epochs=1",
]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli")
    assert main(["teacher", *TINY, "model.name=resnet8", f"out_dir={out}", "name=t", "--no-progress"]) == 0
    return out


def test_fashion_mnist_configs_run_through_the_console_script(tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "vrm-train")
    small = [
        "data.subset_per_class=10",
        "data.val_per_class=5",
        "optim.epochs=1",
        "snapshot.probe_size=8",
        f"out_dir={tmp_path}",
        "--no-progress",
    ]
    t = subprocess.run(
        [exe, "teacher", "--config", os.path.join(REPO, "configs/fashion_mnist/teacher.yaml"), *small],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert t.returncode == 0, t.stderr
    teacher_run = json.loads(t.stdout)["run"]
    s = subprocess.run(
        [
            exe,
            "distill",
            "--config",
            os.path.join(REPO, "configs/fashion_mnist/vrm.yaml"),
            "--teacher",
            teacher_run,
            *small,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert s.returncode == 0, s.stderr
    summary = json.loads(s.stdout)
    assert summary["method"] == "vrm" and summary["epochs_done"] == 1
    with open(os.path.join(summary["run"], "metrics.csv")) as f:
        header = f.readline()
    assert "val_top1" in header and "test_top1" in header  # the held-out validation split is evaluated


def test_eval_reproduces_the_logged_accuracy(teacher, capsys):
    run = os.path.join(teacher, "t")
    capsys.readouterr()
    assert main(["eval", os.path.join(run, "checkpoints", "student.pt")]) == 0
    result = json.loads(capsys.readouterr().out)
    with open(os.path.join(run, "summary.json")) as f:
        assert result["top1"] == pytest.approx(json.load(f)["last_top1"])
    assert main(["eval", run]) == 0  # a run directory works too


def test_resume_extends_a_finished_run(teacher, capsys):
    run = os.path.join(teacher, "t")
    assert main(["resume", run, "optim.epochs=2", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["epochs_done"] == 2
    assert main(["resume", run, "optim.lr=1"]) == 2
    err = capsys.readouterr().err
    assert "optim.lr: 0.05 -> 1" in err and "--change-schedule" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["distill", "--config", "nope.yaml"], "config file not found"),
        (["distill", "optim.lrr=1"], "unknown config key 'optim.lrr'"),
        (["distill", "method=kd", "teacher.name=resnet8"], "needs a teacher"),
        (
            ["distill", "method=kd", "--teacher", "/no/such/file.pt", "--teacher-arch", "resnet8", *TINY],
            "checkpoint not found",
        ),
        (["eval", "/no/such/file.pt", "--arch", "resnet8"], "checkpoint not found"),
        (["teacher", "data.name=fashion_mnist", "data.root=/no/such/dir", "optim.epochs=1"], "/no/such/dir"),
    ],
)
def test_errors_are_clear(args, message, capsys, tmp_path):
    assert main([*args, f"out_dir={tmp_path}"] if args[0] != "eval" else args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_wrong_teacher_architecture_is_named(teacher, capsys, tmp_path):
    code = main(
        [
            "distill",
            "method=kd",
            "--teacher",
            os.path.join(teacher, "t"),
            "--teacher-arch",
            "resnet20",
            *TINY,
            f"out_dir={tmp_path}",
        ]
    )
    assert code == 2
    assert "holds a 'resnet8'" in capsys.readouterr().err


def test_wrong_arch_for_a_bare_checkpoint_is_named(teacher, capsys, tmp_path):
    ckpt = os.path.join(teacher, "t", "checkpoints", "student.pt")
    code = main(
        [
            "distill",
            "method=kd",
            "--teacher",
            ckpt,
            "--teacher-arch",
            "resnet20",
            *TINY,
            f"out_dir={tmp_path}",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "does not fit architecture 'resnet20'" in err and "match 'resnet8'" in err


def test_help_documents_every_command():
    out = subprocess.run([sys.executable, "-m", "vrm_train.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for word in ("teacher", "distill", "resume", "eval", "key=value"):
        assert word in out.stdout
