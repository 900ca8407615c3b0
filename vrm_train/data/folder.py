"""ImageNet-style class folders (``root/<class>/<image>``) decoded with Pillow, for DataLoader workers.

Training images get the standard random-resized crop (scale (0.08, 1), ratio (3/4, 4/3), 10 tries then
a centre crop) to ``image_size`` and a horizontal flip with probability 1/2; evaluation images are
resized so the shorter side is ``round(image_size * 256 / 224)`` and centre-cropped. Items are
``(uint8 [3, S, S], label, index)``; normalisation happens later on the device. Randomness uses torch's
global generator, which DataLoader seeds differently in every worker.

Usage::

    train = ImageFolderDataset("imagenet/train", image_size=224, train=True)
    val = ImageFolderDataset("imagenet/val", image_size=224, train=False, classes=train.classes)
"""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .datasets import DatasetError

__all__ = [
    "IMG_EXTENSIONS",
    "ImageFolderDataset",
    "random_resized_crop",
    "random_resized_crop_box",
    "resize_center_crop",
]

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".bmp", ".tif", ".tiff", ".webp")


def _uniform(lo: float, hi: float, generator: torch.Generator | None) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=generator))


def random_resized_crop_box(
    width: int,
    height: int,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    generator: torch.Generator | None = None,
) -> tuple[int, int, int, int]:
    """``(left, top, w, h)`` of a crop covering a fraction in ``scale`` of the area with aspect ratio
    (w/h) log-uniform in ``ratio``; after 10 failed tries, the largest centred crop with the ratio
    clamped into ``ratio``."""
    area = width * height
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target = area * _uniform(scale[0], scale[1], generator)
        aspect = math.exp(_uniform(log_lo, log_hi, generator))
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (), generator=generator))
            left = int(torch.randint(0, width - w + 1, (), generator=generator))
            return left, top, w, h
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        w, h = round(height * ratio[1]), height
    else:
        w, h = width, height
    return (width - w) // 2, (height - h) // 2, w, h


def random_resized_crop(
    img: Image.Image,
    size: int,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    generator: torch.Generator | None = None,
) -> Image.Image:
    """Crop a random box (:func:`random_resized_crop_box`) and resize it to ``size`` x ``size``."""
    left, top, w, h = random_resized_crop_box(img.width, img.height, scale, ratio, generator)
    return img.resize((size, size), Image.Resampling.BILINEAR, box=(left, top, left + w, top + h))


def resize_center_crop(img: Image.Image, size: int, resize_size: int | None = None) -> Image.Image:
    """Resize so the shorter side is ``resize_size`` (default ``round(size * 256 / 224)``), then take the
    centred ``size`` x ``size`` crop."""
    resize_size = resize_size or round(size * 256 / 224)
    s = resize_size / min(img.width, img.height)
    w, h = max(size, round(img.width * s)), max(size, round(img.height * s))
    img = img.resize((w, h), Image.Resampling.BILINEAR)
    left, top = round((w - size) / 2), round((h - size) / 2)
    return img.crop((left, top, left + size, top + size))


class ImageFolderDataset(torch.utils.data.Dataset):
    """``root/<class>/<file>`` images (sorted classes and files) -> ``(uint8 [3, S, S], label, index)``.

    ``classes`` fixes the class list (pass the training set's to a validation folder so the labels
    agree); by default it is the sorted sub-folder names. ``labels`` holds every sample's label.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        image_size: int = 224,
        train: bool = True,
        classes: list[str] | None = None,
        extensions: tuple[str, ...] = IMG_EXTENSIONS,
        name: str = "imagefolder",
    ):
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DatasetError(
                f"{name}: {self.root} is not a folder; expected {self.root}/<class>/<image> "
                "(for ImageNet: the train/ and val/ folders, val images sorted into class folders)"
            )
        found = sorted(d.name for d in self.root.iterdir() if d.is_dir())
        if classes is None:
            classes = found
        extra = sorted(set(found) - set(classes))
        if extra:
            raise DatasetError(
                f"{name}: {self.root} has class folders unknown to the training set: {extra[:5]}"
            )
        self.classes, self.name = list(classes), name
        self.image_size, self.train = int(image_size), bool(train)
        index = {c: i for i, c in enumerate(self.classes)}
        self.samples = [
            (str(f), index[c])
            for c in found
            for f in sorted((self.root / c).iterdir())
            if f.is_file() and f.suffix.lower() in extensions
        ]
        if not self.samples:
            raise DatasetError(f"{name}: no images with extensions {extensions} under {self.root}/<class>/")
        self.labels = torch.tensor([s[1] for s in self.samples], dtype=torch.long)

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, i: int) -> Image.Image:
        """The decoded RGB image of sample ``i``, before any transform."""
        path = self.samples[i][0]
        try:
            with Image.open(path) as im:
                return im.convert("RGB")
        except (UnidentifiedImageError, OSError) as e:
            raise DatasetError(f"{self.name}: cannot decode {path} ({e})") from e

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        img = self.load(i)
        if self.train:
            img = random_resized_crop(img, self.image_size)
            if torch.rand(()) < 0.5:
                img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        else:
            img = resize_center_crop(img, self.image_size)
        arr = torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).contiguous()
        return arr, self.samples[i][1], i

    def subset(self, idx: torch.Tensor, *, train: bool | None = None) -> ImageFolderDataset:
        """A copy holding the samples at ``idx``; ``train`` switches the transform (e.g. a validation split
        of the training folder is evaluated with the eval transform)."""
        out = copy.copy(self)
        out.samples = [self.samples[int(i)] for i in torch.as_tensor(idx).flatten()]
        out.labels = self.labels[torch.as_tensor(idx, dtype=torch.long)]
        out.train = self.train if train is None else bool(train)
        return out
