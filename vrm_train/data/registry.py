"""One entry point from a dataset name to everything the trainer needs: :func:`build_data` returns a
:class:`DataBundle` (splits, shapes, normalisation, default real-view augmentation) and
:func:`make_loader` picks the loader that fits a split.

Usage::

    bundle = build_data("cifar100", root="~/data", download=True, val_per_class=50)
    train_loader = make_loader(bundle, "train", batch_size=64, train=True, device="cuda", seed=0)
    real = RealView(bundle.crop_padding, bundle.flip)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .cifar import load_cifar
from .datasets import DatasetError, TensorImages, load_digits, load_fashion_mnist, synthetic
from .folder import ImageFolderDataset
from .loaders import FolderLoader, TensorLoader
from .subsets import per_class_subset, train_val_split

__all__ = ["AUGMENT_DEFAULTS", "DATASETS", "NORMALIZATION", "DataBundle", "build_data", "make_loader"]

DATASETS = ("cifar100", "cifar10", "fashion_mnist", "digits", "imagefolder", "synthetic")

#: Per-channel (mean, std) of the training images in [0, 1]. digits: measured on this package's digits
#: training split (see :func:`load_digits`); synthetic: the nominal centre/spread of its patterns.
NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar100": ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "imagefolder": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "digits": ((0.3062,), (0.3766,)),
    "synthetic": ((0.5,), (0.25,)),
}

#: Default RealView parameters (crop padding in pixels, horizontal flip) per dataset. CIFAR: pad 4 at
#: 32 px + flip (the standard recipe). Fashion-MNIST: pad 2 at 28 px + flip (garments are roughly
#: mirror-symmetric). Digits: pad 1 at 8 px, no flip (digits are not mirror-symmetric). imagefolder: none,
#: the workers already applied the random-resized crop and flip. synthetic: pad size // 8, no flip.
AUGMENT_DEFAULTS: dict[str, tuple[int, bool]] = {
    "cifar100": (4, True),
    "cifar10": (4, True),
    "fashion_mnist": (2, True),
    "digits": (1, False),
    "imagefolder": (0, False),
}

Split = TensorImages | ImageFolderDataset


@dataclass
class DataBundle:
    """Splits and metadata of a dataset. ``train``/``val``/``test`` are :class:`TensorImages` when
    ``in_memory`` (use :class:`TensorLoader`) or :class:`ImageFolderDataset` (use :class:`FolderLoader`);
    ``val`` is None unless a validation split was requested. ``crop_padding`` and ``flip`` are the
    defaults for :class:`RealView`."""

    name: str
    train: Split
    val: Split | None
    test: Split
    num_classes: int
    in_chans: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: list[str]
    in_memory: bool
    crop_padding: int
    flip: bool


def _check_size(name: str, native: int, image_size: int | None) -> int:
    if image_size is not None and image_size != native:
        raise DatasetError(f"{name} images are {native} px; image_size={image_size} is not supported")
    return native


def _split(
    train: Split,
    labels: torch.Tensor,
    *,
    val_per_class: int | None,
    val_fraction: float | None,
    subset_per_class: int | None,
    seed: int,
) -> tuple[Split, Split | None]:
    val = None
    if val_per_class is not None or val_fraction is not None:
        tr_idx, va_idx = train_val_split(
            labels, val_per_class=val_per_class, val_fraction=val_fraction, seed=seed
        )
        val = (
            train.subset(va_idx, train=False)
            if isinstance(train, ImageFolderDataset)
            else train.subset(va_idx)
        )
        train, labels = train.subset(tr_idx), labels[tr_idx]
    if subset_per_class is not None:
        train = train.subset(per_class_subset(labels, subset_per_class, seed=seed))
    return train, val


def build_data(
    name: str,
    *,
    root: str | os.PathLike | None = None,
    download: bool = False,
    subset_per_class: int | None = None,
    val_per_class: int | None = None,
    val_fraction: float | None = None,
    split_seed: int = 0,
    image_size: int | None = None,
    url: str | None = None,
    md5: str | None = None,
    progress: bool = True,
    synthetic_size: int = 2048,
    synthetic_test_size: int | None = None,
    synthetic_classes: int = 10,
    synthetic_channels: int = 3,
) -> DataBundle:
    """Load dataset ``name`` (one of :data:`DATASETS`) and prepare its splits.

    ``root``: dataset location (CIFAR: folder or archive, default ``$VRM_DATA_ROOT`` or
    ``~/.cache/vrm/datasets``; fashion_mnist: default ``/usr/share/datasets/fashion-mnist``; imagefolder:
    required, holding ``train/`` and ``val/``). ``download``/``url``/``md5``/``progress``: CIFAR only.
    A validation split (``val_per_class`` or ``val_fraction``, stratified, seeded by ``split_seed``) is
    taken out of the training set first; ``subset_per_class`` then keeps that many images per class of
    what remains (seeded likewise). ``image_size``: imagefolder crop size (default 224) or synthetic side
    (default 16); for fixed-size datasets it must equal their size. ``synthetic_size`` (training images),
    ``synthetic_test_size`` (default ``synthetic_size // 4``), ``synthetic_classes``,
    ``synthetic_channels``: synthetic only. The test split is never subsampled.
    """
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    if name in ("cifar10", "cifar100"):
        size = _check_size(name, 32, image_size)
        train, test = load_cifar(name, root, download=download, url=url, md5=md5, progress=progress)
    elif name == "fashion_mnist":
        size = _check_size(name, 28, image_size)
        train, test = load_fashion_mnist(root)
    elif name == "digits":
        size = _check_size(name, 8, image_size)
        train, test = load_digits()
    elif name == "synthetic":
        size = image_size or 16
        n_test = synthetic_test_size or max(1, synthetic_size // 4)
        train = synthetic(synthetic_size, synthetic_classes, synthetic_channels, size, seed=split_seed + 1)
        test = synthetic(n_test, synthetic_classes, synthetic_channels, size, seed=split_seed + 2)
    else:
        if root is None:
            raise DatasetError(
                "imagefolder needs root=<folder holding train/<class>/... and val/<class>/...>"
            )
        size = image_size or 224
        train = ImageFolderDataset(Path(root) / "train", image_size=size, train=True)
        test = ImageFolderDataset(Path(root) / "val", image_size=size, train=False, classes=train.classes)
    train, val = _split(
        train,
        train.labels,
        val_per_class=val_per_class,
        val_fraction=val_fraction,
        subset_per_class=subset_per_class,
        seed=split_seed,
    )
    in_memory = isinstance(train, TensorImages)
    in_chans = int(train.images.shape[1]) if in_memory else 3
    mean, std = NORMALIZATION[name]
    if len(mean) != in_chans:  # synthetic with any channel count
        mean, std = mean * in_chans, std * in_chans
    padding, flip = AUGMENT_DEFAULTS.get(name, (size // 8, False))
    return DataBundle(
        name=name,
        train=train,
        val=val,
        test=test,
        num_classes=len(train.classes),
        in_chans=in_chans,
        image_size=size,
        mean=tuple(mean),
        std=tuple(std),
        classes=list(train.classes),
        in_memory=in_memory,
        crop_padding=padding,
        flip=flip,
    )


def make_loader(
    bundle: DataBundle,
    split: str,
    *,
    batch_size: int,
    train: bool,
    device: str | torch.device = "cpu",
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    num_workers: int = 4,
    drop_last: bool | None = None,
) -> TensorLoader | FolderLoader:
    """A loader for ``bundle``'s ``split`` ("train", "val" or "test"): :class:`TensorLoader` for in-memory
    data, :class:`FolderLoader` (with ``num_workers``) for image folders. ``train=True`` shuffles and (by
    default) drops the last short batch; ``train=False`` keeps the order and every sample. Raises
    :class:`DatasetError` when the bundle has no such split (``val`` exists only when requested)."""
    if split not in ("train", "val", "test"):
        raise DatasetError(f"unknown split {split!r}; expected 'train', 'val' or 'test'")
    data = getattr(bundle, split)
    if data is None:
        raise DatasetError(
            f"{bundle.name} has no {split!r} split: build it with val_per_class or val_fraction"
        )
    drop_last = train if drop_last is None else drop_last
    common = dict(
        shuffle=train, drop_last=drop_last, device=device, seed=seed, rank=rank, world_size=world_size
    )
    if isinstance(data, TensorImages):
        return TensorLoader(data, batch_size, **common)
    return FolderLoader(data, batch_size, num_workers=num_workers, **common)
