"""In-memory image datasets and their readers: Fashion-MNIST (IDX files), scikit-learn digits and a
synthetic set for tests (CIFAR lives in :mod:`vrm_train.data.cifar`).

Every reader returns :class:`TensorImages` (uint8 ``[N, C, H, W]`` on the CPU) and raises
:class:`DatasetError` with the path it looked at and how to obtain the data when something is missing or
malformed.

Usage::

    train, test = load_fashion_mnist()
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_ROOT",
    "DatasetError",
    "TensorImages",
    "default_data_root",
    "load_digits",
    "load_fashion_mnist",
    "read_idx",
    "synthetic",
]


class DatasetError(ValueError):
    """A dataset is missing, malformed or cannot be read; the message names the path and the remedy."""


@dataclass
class TensorImages:
    """A labelled image set held in memory: ``images`` uint8 ``[N, C, H, W]``, ``labels`` int64 ``[N]``."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    name: str

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise DatasetError(
                f"{self.name}: images must be uint8 [N, C, H, W], got {self.images.dtype} "
                f"{tuple(self.images.shape)}"
            )
        if self.labels.dtype != torch.int64 or self.labels.shape != (self.images.shape[0],):
            raise DatasetError(
                f"{self.name}: labels must be int64 [{self.images.shape[0]}], got {self.labels.dtype} "
                f"{tuple(self.labels.shape)}"
            )

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, idx: torch.Tensor) -> TensorImages:
        """The images at ``idx`` (a LongTensor of positions), same classes and name."""
        idx = torch.as_tensor(idx, dtype=torch.long)
        return TensorImages(self.images[idx], self.labels[idx], list(self.classes), self.name)


def default_data_root() -> Path:
    """Where downloadable datasets live by default: ``$VRM_DATA_ROOT`` or ``~/.cache/vrm/datasets``."""
    return Path(os.environ.get("VRM_DATA_ROOT", Path.home() / ".cache" / "vrm" / "datasets")).expanduser()


# ------------------------------------------------------------------------------------------------- IDX
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse an IDX file (optionally gzipped): magic ``00 00 <type> <ndim>``, ndim big-endian uint32
    sizes, then the values big-endian. The size must match the header exactly."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DatasetError(f"{path}: cannot read IDX file ({e})") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DatasetError(f"{path}: bad IDX magic number {raw[:4].hex() or '(empty)'}; not an IDX file")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DatasetError(f"{path}: IDX header truncated or with 0 dimensions")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DatasetError(
            f"{path}: IDX header says {dims} ({expected} bytes of data) but the file holds "
            f"{len(raw) - header}; the file is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


FASHION_MNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip


def _idx_path(root: Path, stem: str) -> Path:
    for p in (root / f"{stem}.gz", root / stem):
        if p.is_file():
            return p
    raise DatasetError(
        f"fashion_mnist: {root / stem}[.gz] not found. Install the Debian package dataset-fashion-mnist "
        f"(files in {FASHION_MNIST_ROOT}) or download the four IDX files from "
        "https://github.com/zalandoresearch/fashion-mnist into that folder."
    )


def load_fashion_mnist(root: str | os.PathLike | None = None) -> tuple[TensorImages, TensorImages]:
    """(train 60000, test 10000) Fashion-MNIST as uint8 ``[N, 1, 28, 28]`` from IDX files (.gz or raw)."""
    root = Path(root).expanduser() if root is not None else FASHION_MNIST_ROOT

    def part(prefix: str) -> TensorImages:
        ip, lp = (
            _idx_path(root, f"{prefix}-images-idx3-ubyte"),
            _idx_path(root, f"{prefix}-labels-idx1-ubyte"),
        )
        images, labels = read_idx(ip), read_idx(lp)
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
            raise DatasetError(f"{ip}: expected uint8 images [N, 28, 28], got {images.dtype} {images.shape}")
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise DatasetError(f"{lp}: {labels.shape} labels for {images.shape[0]} images")
        if labels.size and labels.max() >= 10:
            raise DatasetError(f"{lp}: labels outside [0, 10)")
        return TensorImages(
            torch.from_numpy(images).unsqueeze(1),
            torch.from_numpy(labels.astype(np.int64)),
            list(FASHION_MNIST_CLASSES),
            "fashion_mnist",
        )

    return part("train"), part("t10k")


# ---------------------------------------------------------------------------------------------- digits
def load_digits(test_fraction: float = 0.25, seed: int = 0) -> tuple[TensorImages, TensorImages]:
    """scikit-learn's bundled 8x8 digits (1797 images, values 0..16 scaled to 0..255, rounded) split into
    (train, test) stratified per class: ``round(test_fraction * n_c)`` images of each class go to test,
    chosen by :func:`vrm_train.data.subsets.train_val_split` with ``seed`` (defaults: 25 %, seed 0,
    giving 1347 train / 450 test)."""
    from sklearn.datasets import load_digits as sk_load_digits

    from .subsets import train_val_split

    d = sk_load_digits()
    images = torch.from_numpy(np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)).unsqueeze(1)
    labels = torch.from_numpy(d.target.astype(np.int64))
    full = TensorImages(images, labels, [str(c) for c in d.target_names], "digits")
    train_idx, test_idx = train_val_split(labels, val_fraction=test_fraction, seed=seed)
    return full.subset(train_idx), full.subset(test_idx)


# ------------------------------------------------------------------------------------------- synthetic
def synthetic(
    n: int,
    num_classes: int = 10,
    channels: int = 3,
    size: int = 16,
    seed: int = 0,
    *,
    pattern_seed: int = 1234,
    noise: float = 0.15,
) -> TensorImages:
    """``n`` images of ``num_classes`` balanced classes: each class has a smooth mean pattern (a random
    4x4 grid upsampled bilinearly, values in [0.15, 0.85], drawn from ``pattern_seed`` so train and test
    sets built with different ``seed`` share the classes), plus Gaussian noise of std ``noise``.
    A tiny CNN separates the classes well above chance within one epoch."""
    if n < 1 or num_classes < 2 or channels < 1 or size < 4:
        raise DatasetError(
            f"synthetic: need n>=1, num_classes>=2, channels>=1, size>=4; got n={n}, "
            f"num_classes={num_classes}, channels={channels}, size={size}"
        )
    pg = torch.Generator().manual_seed(pattern_seed)
    grid = torch.rand(num_classes, channels, 4, 4, generator=pg)
    patterns = torch.nn.functional.interpolate(grid, size=(size, size), mode="bilinear", align_corners=False)
    patterns = 0.15 + 0.7 * patterns
    g = torch.Generator().manual_seed(seed)
    labels = (torch.arange(n) % num_classes)[torch.randperm(n, generator=g)]
    x = patterns[labels] + noise * torch.randn(n, channels, size, size, generator=g)
    images = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    return TensorImages(images, labels.long(), [f"class_{i}" for i in range(num_classes)], "synthetic")
