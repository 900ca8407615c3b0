"""Datasets, augmentation (real and virtual views) and fast loaders for the VRM trainer.

Usage::

    from vrm_train.data import RealView, VirtualView, Normalize, build_data, make_loader

    bundle = build_data("cifar100", root="~/data", download=True)
    loader = make_loader(bundle, "train", batch_size=64, train=True, device="cuda")
    real, virtual = RealView(bundle.crop_padding, bundle.flip), VirtualView(num_ops=2, magnitude=9)
    norm = Normalize(bundle.mean, bundle.std).to("cuda")
"""

from . import registry as _registry
from .augment import (
    GEOMETRIC_OPS,
    RANDAUGMENT_OPS,
    Normalize,
    OpPlan,
    RealView,
    ViewPlan,
    VirtualView,
    to_uint8,
)
from .cifar import (
    CIFAR_SPECS,
    ForbiddenGlobalError,
    RestrictedUnpickler,
    load_cifar,
    load_cifar10,
    load_cifar100,
    safe_unpickle,
)
from .datasets import (
    FASHION_MNIST_CLASSES,
    DatasetError,
    TensorImages,
    default_data_root,
    load_digits,
    load_fashion_mnist,
    read_idx,
    synthetic,
)
from .download import download_file, file_md5
from .folder import ImageFolderDataset, random_resized_crop, random_resized_crop_box, resize_center_crop
from .loaders import Batch, FolderLoader, TensorLoader, epoch_indices
from .registry import (
    DataBundle,
    DatasetSpec,
    LoadRequest,
    build_data,
    get_dataset,
    list_datasets,
    make_loader,
    register_dataset,
)
from .subsets import per_class_subset, train_val_split

__all__ = [
    "CIFAR_SPECS",
    "FASHION_MNIST_CLASSES",
    "GEOMETRIC_OPS",
    "RANDAUGMENT_OPS",
    "Batch",
    "DataBundle",
    "DatasetError",
    "DatasetSpec",
    "FolderLoader",
    "ForbiddenGlobalError",
    "ImageFolderDataset",
    "LoadRequest",
    "Normalize",
    "OpPlan",
    "RealView",
    "RestrictedUnpickler",
    "TensorImages",
    "TensorLoader",
    "ViewPlan",
    "VirtualView",
    "build_data",
    "default_data_root",
    "download_file",
    "epoch_indices",
    "file_md5",
    "get_dataset",
    "list_datasets",
    "load_cifar",
    "load_cifar10",
    "load_cifar100",
    "load_digits",
    "load_fashion_mnist",
    "make_loader",
    "per_class_subset",
    "random_resized_crop",
    "random_resized_crop_box",
    "read_idx",
    "register_dataset",
    "resize_center_crop",
    "safe_unpickle",
    "synthetic",
    "to_uint8",
    "train_val_split",
]


def __getattr__(name: str):
    if name in ("AUGMENT_DEFAULTS", "DATASETS", "NORMALIZATION"):  # views over the dataset registry
        return getattr(_registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
