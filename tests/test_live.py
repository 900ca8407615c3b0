"""vrm-train snapshot: relation snapshots from checkpoints, equal to what the trainer wrote."""

import datetime
import json
import os

import pytest
import torch

from vrm_train.checkpoint import CheckpointError, atomic_save
from vrm_train.cli import main
from vrm_train.config import ConfigError, DataConfig
from vrm_train.live import LiveSpec, compute_live_snapshots
from vrm_train.models import create_model
from vrm_viz.runs import DEMO_DIR, open_run

pytestmark = pytest.mark.xdist_group("engine")
KD_RUN = os.path.join(DEMO_DIR, "kd_resnet8")
TEACHER_RUN = os.path.join(DEMO_DIR, "teacher_resnet20")
TENSORS = ("s", "s_v", "t", "t_v", "feat_s", "feat_t", "targets", "index", "image", "image_v")


def test_live_probe_equals_the_trainers_snapshot(tmp_path):
    out = compute_live_snapshots(
        LiveSpec(teacher=TEACHER_RUN, student=KD_RUN, out=str(tmp_path / "live"), batches=1, batch_size=16),
        progress=False,
    )
    run = open_run(KD_RUN)
    final = max(run.snapshot_epochs("probe"))
    assert out["epoch"] == final
    want = torch.load(os.path.join(KD_RUN, "snapshots", f"probe_e{final:03d}.pt"), weights_only=True)
    got = torch.load(os.path.join(out["out"], "snapshots", f"probe_e{final:03d}.pt"), weights_only=True)
    for k in TENSORS:
        torch.testing.assert_close(got[k], want[k], atol=1e-5, rtol=1e-5, msg=k)
    assert set(want) - {"format"} <= set(got)  # same keys: the app reads both alike
    live = open_run(out["out"])
    assert live.snapshot("train", final, 0).batch_size == 16


def test_same_seed_same_batches(tmp_path):
    kw = dict(teacher=TEACHER_RUN, student=KD_RUN, batches=2, batch_size=8)
    a = compute_live_snapshots(LiveSpec(out=str(tmp_path / "a"), seed=3, **kw), progress=False)
    b = compute_live_snapshots(LiveSpec(out=str(tmp_path / "b"), seed=3, **kw), progress=False)
    c = compute_live_snapshots(LiveSpec(out=str(tmp_path / "c"), seed=4, **kw), progress=False)
    load = [torch.load(r["snapshots"][1], weights_only=True) for r in (a, b, c)]
    assert torch.equal(load[0]["index"], load[1]["index"]) and torch.equal(
        load[0]["image_v"], load[1]["image_v"]
    )
    assert not torch.equal(load[0]["index"], load[2]["index"])
    assert load[0]["seed"] == 3


def test_published_teacher_and_fresh_student(reference_dir, tmp_path):
    ckpt = os.path.join(reference_dir, "compat", "resnet20_ckpt.pth")
    data = DataConfig(name="synthetic", synthetic_size=64, synthetic_classes=100, image_size=32)
    out = compute_live_snapshots(
        LiveSpec(
            teacher=ckpt,
            teacher_arch="resnet20",
            student_arch="resnet8",
            data=data,
            out=str(tmp_path / "init"),
            batches=1,
            batch_size=8,
            probe_size=8,
        ),
        progress=False,
    )
    snap = torch.load(out["snapshots"][0], weights_only=True)
    assert snap["t"].shape == (8, 100) and snap["epoch"] == 0 and snap["student_arch"] == "resnet8"
    # the published teacher's logits on these images are the real ones
    teacher = create_model("resnet20", num_classes=100)
    teacher.load_state_dict(torch.load(ckpt, weights_only=True)["model"])
    mean, std = torch.tensor(snap["mean"])[:, None, None], torch.tensor(snap["std"])[:, None, None]
    with torch.no_grad():
        logits = teacher.eval()((snap["image"].float() / 255 - mean) / std)
    torch.testing.assert_close(logits, snap["t"], atol=1e-5, rtol=1e-5)


def test_mismatches_are_named(reference_dir, tmp_path):
    ckpt = os.path.join(reference_dir, "compat", "resnet20_ckpt.pth")
    fm = DataConfig(name="fashion_mnist")
    with pytest.raises(ConfigError, match=r"teacher checkpoint has 100 classes.*fit the teacher: cifar100"):
        compute_live_snapshots(
            LiveSpec(
                teacher=ckpt,
                teacher_arch="resnet20",
                student_arch="resnet8",
                data=fm,
                out=str(tmp_path / "x"),
            ),
            progress=False,
        )
    with pytest.raises(CheckpointError, match="holds a 'resnet8', not the requested 'resnet20'"):
        compute_live_snapshots(
            LiveSpec(teacher=TEACHER_RUN, student=KD_RUN, student_arch="resnet20", out=str(tmp_path / "y")),
            progress=False,
        )
    with pytest.raises(ConfigError, match="--teacher-arch"):
        bare = str(tmp_path / "bare.pt")
        atomic_save({"model": create_model("resnet8", num_classes=10).state_dict()}, bare)
        compute_live_snapshots(
            LiveSpec(teacher=bare, student_arch="resnet8", data=fm, out=str(tmp_path / "z")), progress=False
        )


def test_cli_snapshot_and_errors(tmp_path, capsys):
    code = main(
        [
            "snapshot",
            "--teacher",
            TEACHER_RUN,
            "--student",
            KD_RUN,
            "--out",
            str(tmp_path / "cli"),
            "--batches",
            "1",
            "--batch-size",
            "8",
            "--no-progress",
        ]
    )
    assert code == 0
    assert len(json.loads(capsys.readouterr().out)["snapshots"]) == 2
    evil = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.ones(1)}, "when": datetime.datetime(2026, 1, 1)}, evil)
    code = main(
        [
            "snapshot",
            "--teacher",
            str(evil),
            "--teacher-arch",
            "resnet8",
            "--student-arch",
            "resnet8",
            "--data",
            "digits",
            "--out",
            str(tmp_path / "e"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "refusing to load" in err and "Traceback" not in err


def test_images_of_a_snapshot_reproduce_it(tmp_path):
    run = open_run(KD_RUN)
    final = max(run.snapshot_epochs("probe"))
    source = os.path.join(KD_RUN, "snapshots", f"probe_e{final:03d}.pt")
    out = compute_live_snapshots(
        LiveSpec(teacher=TEACHER_RUN, student=KD_RUN, out=str(tmp_path / "p"), images_from=source),
        progress=False,
    )
    assert len(out["snapshots"]) == 1
    got = torch.load(out["snapshots"][0], weights_only=True)
    want = torch.load(source, weights_only=True)
    for k in TENSORS:
        torch.testing.assert_close(got[k], want[k], atol=1e-5, rtol=1e-5, msg=k)


def test_image_folder_dataset(tmp_path):
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    for split in ("train", "val"):
        for c in ("cat", "dog"):
            os.makedirs(tmp_path / "imgs" / split / c)
            for i in range(3):
                pixels = torch.randint(0, 256, (40, 48, 3), generator=g, dtype=torch.uint8).numpy()
                Image.fromarray(pixels).save(tmp_path / "imgs" / split / c / f"{i}.png")
    ckpt = str(tmp_path / "t.pt")
    atomic_save({"model": create_model("resnet8", num_classes=2).state_dict()}, ckpt)
    data = DataConfig(name="imagefolder", root=str(tmp_path / "imgs"), image_size=32)
    out = compute_live_snapshots(
        LiveSpec(
            teacher=ckpt,
            teacher_arch="resnet8",
            student_arch="resnet8",
            data=data,
            out=str(tmp_path / "f"),
            split="test",
            batches=1,
            batch_size=4,
            probe_size=4,
        ),
        progress=False,
    )
    snap = torch.load(out["snapshots"][1], weights_only=True)
    assert (
        snap["image"].shape == (4, 3, 32, 32)
        and snap["classes"] == ["cat", "dog"]
        and snap["split"] == "test"
    )
