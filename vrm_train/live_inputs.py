"""What the live snapshot computation feeds two checkpoints: input size, normalisation, and which datasets fit.

A checkpoint fixes its class count (rows of the last 2-D weight) and input channels (the first convolution);
the architecture family fixes the input size it was designed for (CIFAR models: 32 px, ImageNet models:
224 px). :func:`plan_inputs` turns these into an :class:`InputPlan` *before* any data is loaded or model run,
so a mismatch is reported at once with the datasets that do fit, and the app can show (and let the user
change) the size and normalisation instead of silently upscaling 32-px images to 224 px.

    plan = plan_inputs(["resnet20", "resnet8"], DataConfig(name="imagefolder", root="pngs"), (100, 3))
    plan.image_size, plan.normalization, plan.reason   # 32, 'cifar100', 'CIFAR-family models ...'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from vrm_train.config import ConfigError, DataConfig
from vrm_train.data import NORMALIZATION
from vrm_train.data.folder import IMG_EXTENSIONS
from vrm_train.models import model_family

#: (classes, channels, native size) of the fixed datasets.
DATASET_SHAPES: dict[str, tuple[int, int, int]] = {
    "cifar100": (100, 3, 32),
    "cifar10": (10, 3, 32),
    "fashion_mnist": (10, 1, 28),
    "digits": (10, 1, 8),
}
#: Normalisations the user can pick besides "data" (per-channel mean/std measured on the images).
NORMALIZATIONS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar100": NORMALIZATION["cifar100"],
    "cifar10": NORMALIZATION["cifar10"],
    "imagenet": NORMALIZATION["imagefolder"],
    "fashion_mnist": NORMALIZATION["fashion_mnist"],
    "digits": NORMALIZATION["digits"],
}
FAMILY_SIZE = {"cifar": 32, "imagenet": 224}


@dataclass
class InputPlan:
    """The input the models get. ``image_size`` None: the dataset's native size, unchanged."""

    image_size: int | None
    normalization: str  # a key of NORMALIZATIONS, "data", or "dataset" (the dataset's own statistics)
    reason: str

    def describe(self) -> str:
        size = "native size" if self.image_size is None else f"{self.image_size} px"
        return f"{size}, {self.normalization} normalisation ({self.reason})"


def state_shape(state: dict[str, torch.Tensor]) -> tuple[int, int] | None:
    """(classes, input channels) of a state dict: rows of its last 2-D weight, in-channels of its first conv."""
    mats = [v for v in state.values() if v.dim() == 2]
    convs = [v for v in state.values() if v.dim() == 4]
    if not mats or not convs:
        return None
    return int(mats[-1].shape[0]), int(convs[0].shape[1])


def folder_root(root: str) -> tuple[Path, Path]:
    """(training folder, evaluation folder) of an image-folder dataset: ``root/train`` and ``root/val`` when
    they exist, otherwise ``root`` itself for both (a single ``root/<class>/<image>`` folder)."""
    base = Path(root).expanduser()
    if not base.is_dir():
        raise ConfigError(f"image folder {root} does not exist; expected <root>/<class>/<image>")
    train, val = base / "train", base / "val"
    if train.is_dir() or val.is_dir():
        return (train if train.is_dir() else val), (val if val.is_dir() else train)
    return base, base


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir())


def first_image_size(root: str) -> tuple[int, int] | None:
    """(width, height) of the first image of the evaluation folder, or None when it has none."""
    from PIL import Image

    _, val = folder_root(root)
    for d in _class_dirs(val):
        for f in sorted(d.iterdir()):
            if f.is_file() and f.suffix.lower() in IMG_EXTENSIONS:
                with Image.open(f) as im:
                    return im.size
    return None


def dataset_shape(dcfg: DataConfig) -> tuple[int, int] | None:
    """(classes, channels) of a dataset without loading it (None when unknown before loading)."""
    if dcfg.name in DATASET_SHAPES:
        return DATASET_SHAPES[dcfg.name][:2]
    if dcfg.name == "synthetic":
        return dcfg.synthetic_classes, 3
    if dcfg.name == "imagefolder" and dcfg.root:
        train, _ = folder_root(dcfg.root)
        return len(_class_dirs(train)), 3
    return None


def fitting_datasets(num_classes: int, in_chans: int) -> list[str]:
    """The datasets whose classes and channels fit a checkpoint, in words."""
    names = [n for n, (c, ch, _) in DATASET_SHAPES.items() if (c, ch) == (num_classes, in_chans)]
    if in_chans == 3:
        names.append(f"imagefolder with {num_classes} class folders")
    names.append(
        f"synthetic with synthetic_classes={num_classes}" + ("" if in_chans == 3 else " (3 channels)")
    )
    return names


def check_fit(role: str, shape: tuple[int, int] | None, dcfg: DataConfig) -> None:
    """Raise ConfigError when a checkpoint's (classes, channels) do not fit the dataset, naming those that do."""
    have = dataset_shape(dcfg)
    if shape is None or have is None or tuple(shape) == tuple(have):
        return
    (c, ch), (dc, dch) = shape, have
    raise ConfigError(
        f"the {role} checkpoint has {c} classes and {ch} input channel(s), but {dcfg.name} has {dc} classes "
        f"and {dch} channel(s). Datasets that fit the {role}: {'; '.join(fitting_datasets(c, ch))}."
    )


def plan_inputs(
    archs: list[str],
    dcfg: DataConfig,
    num_classes: int,
    *,
    image_size: int | None = None,
    normalization: str | None = None,
) -> InputPlan:
    """The input size and normalisation for ``archs`` on ``dcfg``; explicit choices win over inference.

    Inference: a fixed dataset (CIFAR, Fashion-MNIST, digits, synthetic) keeps its native size and its own
    statistics. An image folder gets the size of the architectures' family (CIFAR models 32 px, ImageNet
    models 224 px; mixed families: the larger) and that family's statistics (CIFAR-10's for 10 classes,
    CIFAR-100's otherwise; ImageNet's).
    """
    if image_size is not None and not 4 <= int(image_size) <= 1024:
        raise ConfigError(f"image size {image_size} is outside 4..1024 px")
    if normalization is not None and normalization not in (*NORMALIZATIONS, "data", "dataset"):
        raise ConfigError(
            f"unknown normalisation {normalization!r}; choose one of "
            f"{', '.join([*NORMALIZATIONS, 'data', 'dataset'])}"
        )
    families = {model_family(a) for a in archs}
    if dcfg.name != "imagefolder":
        norm = normalization or "dataset"
        reason = "explicit choices" if (image_size or normalization) else f"{dcfg.name}'s native size"
        return InputPlan(image_size, norm, reason)
    size = max(FAMILY_SIZE[f] for f in families)
    if dcfg.image_size is not None:
        size, why = int(dcfg.image_size), "the data config's image_size"
    else:
        why = "CIFAR-family models" if families == {"cifar"} else "ImageNet-family models"
        if dcfg.root:
            native = first_image_size(dcfg.root)
            if native is not None:
                why += f"; the folder's images are {native[0]}×{native[1]}"
    norm = "imagenet" if "imagenet" in families else "cifar10" if num_classes == 10 else "cifar100"
    return InputPlan(
        int(image_size or size),
        normalization or norm,
        "explicit choices" if (image_size and normalization) else why,
    )


def measured_stats(images_u8: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std (in [0, 1]) of a uint8 batch [B, C, H, W]."""
    x = images_u8.float().div(255).transpose(0, 1).flatten(1)
    return x.mean(1).tolist(), x.std(1).clamp_min(1e-3).tolist()
