"""Foreign checkpoints on image folders: the input size and normalisation are inferred, shown and changeable,
and a checkpoint that does not fit the data is refused before anything is computed."""

import os

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from vrm_train.checkpoint import atomic_save
from vrm_train.cli import main
from vrm_train.config import ConfigError, DataConfig
from vrm_train.live import LiveSpec, compute_live_snapshots
from vrm_train.live_inputs import check_fit, fitting_datasets, plan_inputs
from vrm_train.models import create_model

# CIFAR-100's published per-channel statistics (RepDistiller / mdistiller training scripts)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)


def _png_folder(root, classes: int, per_class: int, size: int = 32, seed: int = 0):
    """``root/<class>/<i>.png``: a single folder, no train/val split (how people keep small datasets)."""
    rng = np.random.default_rng(seed)
    for c in range(classes):
        os.makedirs(root / f"class{c:03d}", exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / f"class{c:03d}" / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def pngs(tmp_path_factory):
    return _png_folder(tmp_path_factory.mktemp("pngs"), classes=100, per_class=1)


@pytest.fixture(scope="module")
def published_teacher(tmp_path_factory):
    """A resnet20 in the published {"model": state_dict} layout, without any record of its architecture."""
    torch.manual_seed(1)
    path = str(tmp_path_factory.mktemp("ckpt") / "resnet20_cifar100.pth")
    atomic_save({"model": create_model("resnet20", num_classes=100).state_dict(), "epoch": 240}, path)
    return path


def test_plan_follows_the_architecture_family(pngs):
    folder = DataConfig(name="imagefolder", root=str(pngs))
    cifar = plan_inputs(["resnet20", "resnet8"], folder, 100)
    assert (cifar.image_size, cifar.normalization) == (32, "cifar100")
    assert "CIFAR-family" in cifar.describe() and "32×32" in cifar.describe()
    assert plan_inputs(["resnet20", "resnet8"], folder, 10).normalization == "cifar10"
    imagenet = plan_inputs(["resnet18", "resnet8"], folder, 100)
    assert (imagenet.image_size, imagenet.normalization) == (224, "imagenet")
    chosen = plan_inputs(["resnet20", "resnet8"], folder, 100, image_size=48, normalization="data")
    assert (chosen.image_size, chosen.normalization) == (48, "data")
    fixed = plan_inputs(["resnet20", "resnet8"], DataConfig(name="cifar100"), 100)
    assert (fixed.image_size, fixed.normalization) == (None, "dataset")
    with pytest.raises(ConfigError, match="unknown normalisation 'zca'"):
        plan_inputs(["resnet20"], folder, 100, normalization="zca")
    with pytest.raises(ConfigError, match=r"outside 4\.\.1024"):
        plan_inputs(["resnet20"], folder, 100, image_size=2)


def test_mismatch_names_the_datasets_that_fit(pngs):
    assert "cifar100" in fitting_datasets(100, 3) and "fashion_mnist" in fitting_datasets(10, 1)
    assert not any(n.startswith("imagefolder") for n in fitting_datasets(10, 1))
    with pytest.raises(ConfigError) as e:
        check_fit("teacher", (100, 3), DataConfig(name="fashion_mnist"))
    msg = str(e.value)
    assert "100 classes and 3 input channel(s)" in msg and "fashion_mnist has 10 classes and 1" in msg
    assert "cifar100" in msg and "imagefolder with 100 class folders" in msg
    # the folder has 100 class folders: a 10-class checkpoint is refused by counting folders only
    with pytest.raises(ConfigError, match="imagefolder has 100 classes"):
        check_fit("student", (10, 3), DataConfig(name="imagefolder", root=str(pngs)))
    check_fit("teacher", (100, 3), DataConfig(name="imagefolder", root=str(pngs)))


def test_mismatch_is_refused_before_loading_data(published_teacher, tmp_path):
    """CIFAR-10 is not on disk here: the class mismatch must be reported, not a missing archive."""
    data = DataConfig(name="cifar10", root=str(tmp_path / "nowhere"))
    spec = LiveSpec(
        teacher=published_teacher,
        teacher_arch="resnet20",
        student_arch="resnet8",
        data=data,
        out=str(tmp_path),
    )
    with pytest.raises(ConfigError, match="Datasets that fit the teacher: cifar100"):
        compute_live_snapshots(spec, progress=False)
    assert not os.path.exists(tmp_path / "snapshots")


def test_32px_folder_end_to_end(pngs, published_teacher, tmp_path):
    """A published CIFAR resnet20 and a fresh resnet8 on a flat folder of 32×32 PNGs: the models see the
    PNGs' own pixels at 32 px with CIFAR-100 statistics (no 224-px upscaling, no ImageNet statistics)."""
    out = compute_live_snapshots(
        LiveSpec(
            teacher=published_teacher,
            teacher_arch="resnet20",
            student_arch="resnet8",
            data=DataConfig(name="imagefolder", root=str(pngs)),
            out=str(tmp_path / "live_resnet8"),
            batches=2,
            batch_size=16,
            probe_size=16,
        ),
        progress=False,
    )
    assert len(out["snapshots"]) == 3 and out["image_size"] == 32 and "cifar100" in out["inputs"]
    probe = torch.load(out["snapshots"][0], weights_only=True)
    assert probe["image"].shape == (16, 3, 32, 32) and len(probe["classes"]) == 100
    cls = probe["classes"][int(probe["targets"][0])]  # one image per class: the class names the file
    pixels = np.array(Image.open(pngs / cls / "0.png"))
    assert torch.equal(probe["image"][0], torch.from_numpy(pixels).permute(2, 0, 1))
    np.testing.assert_allclose(probe["mean"], CIFAR100_MEAN)
    np.testing.assert_allclose(probe["std"], CIFAR100_STD)
    teacher = create_model("resnet20", num_classes=100)
    teacher.load_state_dict(torch.load(published_teacher, weights_only=True)["model"])
    mean = torch.tensor(CIFAR100_MEAN)[:, None, None]
    std = torch.tensor(CIFAR100_STD)[:, None, None]
    with torch.no_grad():
        want = teacher.eval()((probe["image"].float() / 255 - mean) / std)
    torch.testing.assert_close(probe["t"], want, atol=1e-4, rtol=1e-4)
    with open(os.path.join(out["out"], "config.yaml"), encoding="utf-8") as f:
        live = yaml.safe_load(f)["live"]
    assert live["image_size"] == 32 and live["normalization"] == "cifar100"


def test_size_and_normalisation_can_be_changed(pngs, published_teacher, tmp_path):
    out = compute_live_snapshots(
        LiveSpec(
            teacher=published_teacher,
            teacher_arch="resnet20",
            student_arch="resnet8",
            data=DataConfig(name="imagefolder", root=str(pngs)),
            out=str(tmp_path / "x"),
            batches=0,
            probe_size=8,
            image_size=24,
            normalization="data",
        ),
        progress=False,
    )
    probe = torch.load(out["snapshots"][0], weights_only=True)
    assert probe["image"].shape == (8, 3, 24, 24)
    x = probe["image"].float() / 255
    np.testing.assert_allclose(probe["mean"], x.mean(dim=(0, 2, 3)).tolist(), atol=1e-5)
    np.testing.assert_allclose(probe["std"], x.std(dim=(0, 2, 3)).tolist(), atol=1e-5)


def test_cli_takes_size_and_normalisation(pngs, published_teacher, tmp_path, capsys):
    argv = ["snapshot", "--teacher", published_teacher, "--teacher-arch", "resnet20"]
    argv += ["--student-arch", "resnet8", "--data", "imagefolder", "--data-root", str(pngs)]
    argv += ["--out", str(tmp_path / "c"), "--batches", "0", "--probe-size", "4", "--no-progress"]
    assert main([*argv, "--image-size", "40", "--normalization", "imagenet"]) == 0
    probe = torch.load(tmp_path / "c" / "snapshots" / "probe_e000.pt", weights_only=True)
    assert probe["image"].shape[-1] == 40
    np.testing.assert_allclose(probe["mean"], (0.485, 0.456, 0.406))
    capsys.readouterr()
    assert main([*argv, "--data", "fashion_mnist", "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "Datasets that fit the teacher" in err and "Traceback" not in err
