"""End-to-end training on a tiny synthetic dataset: every method, resume, NaN stop, run-dir safety."""

import csv
import os

import pytest
import torch

from vrm_train.checkpoint import load_file
from vrm_train.config import load_config
from vrm_train.distillers import REGISTRY
from vrm_train.engine import NonFiniteLossError, Trainer, train
from vrm_train.optim import lr_at
from vrm_train.rundir import RunDir

pytestmark = pytest.mark.xdist_group("engine")

TINY = [
    "data.name=synthetic",
    "data.synthetic_size=256",
    "data.image_size=16",
    "data.batch_size=32",
    "data.eval_batch_size=128",
    "optim.milestones=[2]",
    "snapshot.probe_size=16",
    "snapshot.train_batches=1",
]


def tiny(out_dir, name, *extra):
    return load_config(None, [*TINY, f"out_dir={out_dir}", f"name={name}", *extra])


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher")
    cfg = tiny(out, "teacher", "method=vanilla", "model.name=resnet14", "optim.epochs=2")
    train(cfg, progress=False)
    return os.path.join(out, "teacher")


def distill(out, name, method, teacher_dir, *extra):
    return tiny(
        out,
        name,
        f"method={method}",
        "model.name=resnet8",
        "teacher.name=resnet14",
        f"teacher.checkpoint={teacher_dir}",
        *extra,
    )


def read_rows(run):
    with open(os.path.join(run, "metrics.csv")) as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("method", sorted(REGISTRY))
def test_every_method_trains_and_writes_its_run(method, teacher_dir, tmp_path):
    small = ["crd.nce_k=64"] if method == "crd" else []  # the published 16384 negatives: slow on a CPU
    cfg = distill(tmp_path, method, method, teacher_dir, "optim.epochs=1", "snapshot.epochs=[0]", *small)
    summary = train(cfg, progress=False)
    run = RunDir(summary["run"])
    rows = read_rows(run.path)
    assert [r["epoch"] for r in rows] == ["1"]
    terms = {"ce", "vrm"} if method == "vrm" else {"ce", method} if method != "vanilla" else {"ce"}
    assert terms <= set(rows[0]) and {"train_top1", "test_top1", "test_top5", "lr", "epoch_time"} <= set(
        rows[0]
    )
    if method == "vrm":  # the undefined-edge diagnostics (spec §2.4); a relative gap lies in [0, √2]
        for side in "st":
            assert 0 <= float(rows[0][f"view_gap_{side}_min"]) <= 2**0.5
        assert float(rows[0]["undefined_edges"]) >= 0
    for which in ("last", "best", "student"):
        assert os.path.isfile(run.checkpoint(which))
    kinds = {(k, e) for k, e, _, _ in run.snapshots()}
    assert kinds == {("probe", 0), ("probe", 1), ("train", 1)}
    snap = load_file(run.probe_snapshot(1))
    assert snap["method"] == method and snap["s"].shape == (16, 10) and snap["image_v"].dtype == torch.uint8
    assert ("t" in snap) == (method != "vanilla")
    export = load_file(run.checkpoint("student"))
    assert export["arch"] == "resnet8" and export["epoch"] == 1


def test_probe_snapshot_is_the_final_student(teacher_dir, tmp_path):
    summary = train(distill(tmp_path, "kd", "kd", teacher_dir, "optim.epochs=1"), progress=False)
    run = RunDir(summary["run"])
    snap = load_file(run.probe_snapshot(1))
    from vrm_train.models import create_model

    model = create_model("resnet8", num_classes=10)
    model.load_state_dict(load_file(run.checkpoint("student"))["model"])
    mean = torch.tensor(snap["mean"])[:, None, None]
    std = torch.tensor(snap["std"])[:, None, None]
    with torch.no_grad():
        logits = model.eval()(((snap["image"].float() / 255) - mean) / std)
    torch.testing.assert_close(logits, snap["s"], atol=1e-4, rtol=1e-4)
    # the probe is the same test images every epoch, spread over classes
    assert len(set(snap["targets"].tolist())) == 10


def _comparable(rows):
    skip = {"epoch_time", "images_per_s", "peak_mem_mb"}
    return [{k: v for k, v in r.items() if k not in skip} for r in rows]


def test_resume_after_interruption_is_exact(teacher_dir, tmp_path, monkeypatch):
    extra = ("optim.epochs=3", "deterministic=true")
    full = train(distill(tmp_path / "a", "run", "vrm", teacher_dir, *extra), progress=False)

    calls = {"n": 0}
    original = Trainer.evaluate

    def interrupted(self):
        calls["n"] += 1
        if calls["n"] == 2:  # epoch 2 trained but not yet saved: the process dies here
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Trainer, "evaluate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(distill(tmp_path / "b", "run", "vrm", teacher_dir, *extra), progress=False)
    monkeypatch.setattr(Trainer, "evaluate", original)
    assert [r["epoch"] for r in read_rows(tmp_path / "b" / "run")] == ["1"]
    resumed = train(distill(tmp_path / "b", "run", "vrm", teacher_dir, *extra), resume=True, progress=False)
    assert _comparable(read_rows(full["run"])) == _comparable(read_rows(resumed["run"]))
    a = load_file(os.path.join(full["run"], "checkpoints", "last.pt"))["model"]
    b = load_file(os.path.join(resumed["run"], "checkpoints", "last.pt"))["model"]
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(teacher_dir, tmp_path, monkeypatch):
    from vrm_train.distillers.kd import KD

    original = KD.forward

    def poisoned(self, x, x_v, y, epoch):
        out = original(self, x, x_v, y, epoch)
        if epoch == 2:
            out["losses"]["kd"] = out["losses"]["kd"] * float("nan")
        return out

    monkeypatch.setattr(KD, "forward", poisoned)
    cfg = distill(tmp_path, "nan", "kd", teacher_dir, "optim.epochs=3", "log_every=2")
    with pytest.raises(
        NonFiniteLossError, match=r"non-finite loss at epoch 2.*last good checkpoint \(epoch 1\)"
    ):
        train(cfg, progress=False)
    run = RunDir(os.path.join(tmp_path, "nan"))
    assert load_file(run.checkpoint("last"))["epoch"] == 1
    assert [r["epoch"] for r in read_rows(run.path)] == ["1"]


def test_existing_run_is_never_overwritten(teacher_dir, tmp_path):
    cfg = distill(tmp_path, "once", "kd", teacher_dir, "optim.epochs=1")
    train(cfg, progress=False)
    before = os.path.getmtime(os.path.join(tmp_path, "once", "checkpoints", "last.pt"))
    with pytest.raises(FileExistsError, match="vrm-train resume <run dir>"):
        train(cfg, progress=False)
    changed = distill(tmp_path, "once", "kd", teacher_dir, "optim.epochs=1", "kd.temperature=2")
    with pytest.raises(ValueError, match=r"shaped the saved training state: kd.temperature: 4.0 -> 2"):
        train(changed, resume=True, progress=False)
    assert os.path.getmtime(os.path.join(tmp_path, "once", "checkpoints", "last.pt")) == before


def test_lr_schedules():
    cfg = load_config(None, ["method=vanilla", "optim.lr=0.1", "optim.milestones=[2,4]", "optim.epochs=6"])
    assert [round(lr_at(cfg, e), 6) for e in (0, 1.5, 2, 3.9, 4)] == [0.1, 0.1, 0.01, 0.01, 0.001]
    cfg = load_config(
        None,
        [
            "method=vanilla",
            "optim.lr=0.1",
            "optim.schedule=cosine",
            "optim.epochs=10",
            "optim.warmup_epochs=2",
        ],
    )
    assert lr_at(cfg, 1.0) == pytest.approx(0.05)  # half-way through warm-up
    assert lr_at(cfg, 2.0) == pytest.approx(0.1)
    assert lr_at(cfg, 6.0) == pytest.approx(0.05)  # half-way through the cosine
    assert lr_at(cfg, 10.0) == pytest.approx(0.0, abs=1e-12)


def test_published_teacher_checkpoint_distils(reference_dir, tmp_path):
    ckpt = os.path.join(reference_dir, "compat", "resnet20_ckpt.pth")
    cfg = load_config(
        None,
        [
            "data.name=synthetic",
            "data.synthetic_size=200",
            "data.synthetic_classes=100",
            "data.image_size=32",
            "data.batch_size=50",
            "method=kd",
            "model.name=resnet8",
            "teacher.name=resnet20",
            f"teacher.checkpoint={ckpt}",
            "optim.epochs=1",
            f"out_dir={tmp_path}",
            "name=pub",
            "snapshot.probe_size=8",
        ],
    )
    summary = train(cfg, progress=False)
    assert summary["epochs_done"] == 1


def test_gradient_norm_is_logged_before_clipping(teacher_dir, tmp_path):
    """metrics.csv carries the epoch's mean and largest gradient norm, measured before clipping."""
    clip = 1e-3  # far below any real gradient norm of an untrained network
    free = train(distill(tmp_path, "free", "kd", teacher_dir, "optim.epochs=1"), progress=False)["run"]
    clipped = train(
        distill(tmp_path, "clipped", "kd", teacher_dir, "optim.epochs=1", f"optim.clip_grad_norm={clip}"),
        progress=False,
    )["run"]
    row_free, row_clip = read_rows(free)[-1], read_rows(clipped)[-1]
    mean_free, max_free = float(row_free["grad_norm"]), float(row_free["grad_norm_max"])
    assert 0 < mean_free <= max_free < float("inf")
    # logged after clipping, the norm could not exceed the clip value
    assert float(row_clip["grad_norm_max"]) > 100 * clip
    # and the clip did act: the two runs trained differently
    assert float(row_clip["train_loss"]) != pytest.approx(float(row_free["train_loss"]), rel=1e-6)


def _nan_logits(module, args, output):
    """Forward hook: the student's logits become NaN (its features stay as they are)."""
    if isinstance(output, tuple):
        return (output[0] * float("nan"), *output[1:])
    return output * float("nan")


@pytest.mark.parametrize("method", sorted(REGISTRY))
def test_non_finite_logits_stop_cleanly_for_every_method(method, teacher_dir, tmp_path, monkeypatch):
    """NaN student logits from epoch 2 on: the engine's stop, whatever the method (VRM included, whose
    relation maths used to raise its own ValueError), with the epoch-1 checkpoint intact and advice that
    names a command."""
    original = Trainer.train_epoch

    def poisoned_from_epoch_2(self, epoch):
        if epoch == 2:
            self.student.register_forward_hook(_nan_logits)
        return original(self, epoch)

    monkeypatch.setattr(Trainer, "train_epoch", poisoned_from_epoch_2)
    cfg = distill(tmp_path, "nan", method, teacher_dir, "optim.epochs=3", "log_every=2")
    with pytest.raises(NonFiniteLossError) as err:
        train(cfg, progress=False)
    msg = str(err.value)
    assert msg.startswith("non-finite loss at epoch 2, step 2 ")
    run = RunDir(os.path.join(tmp_path, "nan"))
    assert f"the last good checkpoint (epoch 1) is intact at {run.checkpoint('last')}" in msg
    assert f"vrm-train resume {run.path} optim.lr=0.005 optim.clip_grad_norm=5 --change-schedule" in msg
    state = load_file(run.checkpoint("last"))
    assert state["epoch"] == 1 and all(torch.isfinite(v).all() for v in state["model"].values())
    assert [r["epoch"] for r in read_rows(run.path)] == ["1"]


def test_vrm_divergence_stops_with_the_clear_message(teacher_dir, tmp_path):
    """The issue's reproduction: a schedule that multiplies the learning rate by 1e8 after epoch 1."""
    schedule = (
        "optim.schedule=multistep",
        "optim.warmup_epochs=0",
        "optim.milestones=[1]",
        "optim.gamma=1e8",
    )
    cfg = distill(tmp_path, "boom", "vrm", teacher_dir, "optim.epochs=2", "log_every=1", *schedule)
    with pytest.raises(NonFiniteLossError, match=r"^non-finite loss at epoch 2, step \d+ ") as err:
        train(cfg, progress=False)
    assert "optim.gamma=0.1 --change-schedule" in str(err.value)
    assert load_file(RunDir(os.path.join(tmp_path, "boom")).checkpoint("last"))["epoch"] == 1
