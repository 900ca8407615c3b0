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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .cifar import load_cifar
from .datasets import DatasetError, TensorImages, load_digits, load_fashion_mnist, synthetic
from .folder import ImageFolderDataset
from .loaders import FolderLoader, TensorLoader
from .subsets import per_class_subset, train_val_split

__all__ = [
    "DataBundle",
    "DatasetSpec",
    "LoadRequest",
    "build_data",
    "get_dataset",
    "list_datasets",
    "make_loader",
    "register_dataset",
]

Split = TensorImages | ImageFolderDataset


@dataclass(frozen=True)
class LoadRequest:
    """What a dataset's loader is asked for (the loader uses what applies to it)."""

    root: str | os.PathLike | None
    download: bool
    url: str | None
    md5: str | None
    progress: bool
    image_size: int
    split_seed: int
    synthetic_size: int
    synthetic_test_size: int | None
    synthetic_classes: int
    synthetic_channels: int


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: how to load its train and test splits and the defaults that go with it.

    ``mean``/``std``: per-channel normalisation of images in [0, 1] (one value is repeated over the
    channels of a dataset whose channel count varies). ``crop_padding``/``flip``: the real view's default
    augmentation (``crop_padding`` None: image size // 8). ``native_size``: the fixed image side (None: any
    size, ``default_size`` unless ``image_size`` is given). ``needs_root``: the loader reads files from
    ``data.root`` (False: bundled or generated). ``real_images``: real pictures a user may open checkpoints
    on in the app (False: generated patterns for tests).
    """

    name: str
    load: Callable[[LoadRequest], tuple[Split, Split]]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_padding: int | None
    flip: bool
    native_size: int | None
    default_size: int
    summary: str
    needs_root: bool = True
    real_images: bool = True


_DATASETS: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add ``spec`` under ``spec.name`` (a second spec of the same name replaces the first)."""
    _DATASETS[spec.name] = spec
    return spec


def list_datasets() -> list[str]:
    return list(_DATASETS)


def get_dataset(name: str) -> DatasetSpec:
    if name not in _DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; valid names: {', '.join(_DATASETS)}")
    return _DATASETS[name]


def _cifar(name: str):
    def load(r: LoadRequest):
        return load_cifar(name, r.root, download=r.download, url=r.url, md5=r.md5, progress=r.progress)

    return load


def _synthetic(r: LoadRequest):
    n_test = r.synthetic_test_size or max(1, r.synthetic_size // 4)
    shape = (r.synthetic_classes, r.synthetic_channels, r.image_size)
    train = synthetic(r.synthetic_size, *shape, seed=r.split_seed + 1)
    test = synthetic(n_test, *shape, seed=r.split_seed + 2)
    return train, test


def _imagefolder(r: LoadRequest):
    if r.root is None:
        raise DatasetError("imagefolder needs root=<folder holding train/<class>/... and val/<class>/...>")
    train = ImageFolderDataset(Path(r.root) / "train", image_size=r.image_size, train=True)
    test = ImageFolderDataset(
        Path(r.root) / "val", image_size=r.image_size, train=False, classes=train.classes
    )
    return train, test


# Normalisation: per-channel (mean, std) of the training images in [0, 1]; digits: measured on this
# package's digits training split (see load_digits); synthetic: the nominal centre/spread of its patterns.
# Real-view augmentation: CIFAR pad 4 at 32 px + flip (the standard recipe); Fashion-MNIST pad 2 at 28 px +
# flip (garments are roughly mirror-symmetric); digits pad 1 at 8 px, no flip (digits are not
# mirror-symmetric); imagefolder none (the workers already applied the random-resized crop and flip);
# synthetic pad size // 8, no flip.
_BUILTIN = (
    DatasetSpec(
        name="cifar100",
        load=_cifar("cifar100"),
        mean=(0.5071, 0.4867, 0.4408),
        std=(0.2675, 0.2565, 0.2761),
        crop_padding=4,
        flip=True,
        native_size=32,
        default_size=32,
        summary="CIFAR-100: 100 classes, 32 px colour (archive or folder, MD5-verified download)",
    ),
    DatasetSpec(
        name="cifar10",
        load=_cifar("cifar10"),
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2470, 0.2435, 0.2616),
        crop_padding=4,
        flip=True,
        native_size=32,
        default_size=32,
        summary="CIFAR-10: 10 classes, 32 px colour (archive or folder, MD5-verified download)",
    ),
    DatasetSpec(
        name="fashion_mnist",
        load=lambda r: load_fashion_mnist(r.root),
        mean=(0.2860,),
        std=(0.3530,),
        crop_padding=2,
        flip=True,
        native_size=28,
        default_size=28,
        summary="Fashion-MNIST: 10 garment classes, 28 px grey (IDX files)",
    ),
    DatasetSpec(
        name="digits",
        load=lambda r: load_digits(),
        mean=(0.3062,),
        std=(0.3766,),
        crop_padding=1,
        flip=False,
        native_size=8,
        default_size=8,
        summary="scikit-learn digits: 10 classes, 8 px grey",
        needs_root=False,
    ),
    DatasetSpec(
        name="imagefolder",
        load=_imagefolder,
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        crop_padding=0,
        flip=False,
        native_size=None,
        default_size=224,
        summary="ImageNet-style folders: root/train/<class>/ and root/val/<class>/",
    ),
    DatasetSpec(
        name="synthetic",
        load=_synthetic,
        mean=(0.5,),
        std=(0.25,),
        crop_padding=None,
        flip=False,
        native_size=None,
        default_size=16,
        summary="synthetic patterns for tests (any size, class and channel count)",
        needs_root=False,
        real_images=False,
    ),
)
for _spec in _BUILTIN:
    register_dataset(_spec)


def __getattr__(name: str):
    """Views over the registry kept for older callers: DATASETS, NORMALIZATION, AUGMENT_DEFAULTS."""
    if name == "DATASETS":
        return tuple(_DATASETS)
    if name == "NORMALIZATION":
        return {n: (s.mean, s.std) for n, s in _DATASETS.items()}
    if name == "AUGMENT_DEFAULTS":
        return {n: (s.crop_padding, s.flip) for n, s in _DATASETS.items() if s.crop_padding is not None}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    """Load dataset ``name`` (one of :func:`list_datasets`) and prepare its splits.

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
    spec = get_dataset(name)
    if spec.native_size is not None:
        size = _check_size(name, spec.native_size, image_size)
    else:
        size = image_size or spec.default_size
    request = LoadRequest(
        root=root,
        download=download,
        url=url,
        md5=md5,
        progress=progress,
        image_size=size,
        split_seed=split_seed,
        synthetic_size=synthetic_size,
        synthetic_test_size=synthetic_test_size,
        synthetic_classes=synthetic_classes,
        synthetic_channels=synthetic_channels,
    )
    train, test = spec.load(request)
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
    mean, std = spec.mean, spec.std
    if len(mean) != in_chans:  # one value for a dataset of any channel count
        mean, std = mean * in_chans, std * in_chans
    padding = size // 8 if spec.crop_padding is None else spec.crop_padding
    flip = spec.flip
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
