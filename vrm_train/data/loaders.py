"""Loaders that yield :class:`Batch` (uint8 images, labels, dataset indices) already on the device.

:class:`TensorLoader` keeps an in-memory dataset on the device and slices batches from it (no workers,
no host copies per step); :class:`FolderLoader` wraps a DataLoader over decoded image folders. Both
order samples exactly like ``torch.utils.data.DistributedSampler``:

- the epoch's order is ``torch.randperm(n)`` from a CPU generator seeded with ``seed + epoch`` (the same
  on every rank; ``set_epoch`` must be called each epoch, as with DistributedSampler) or ``arange(n)``
  without shuffling;
- with ``world_size`` ranks the order is cut to a multiple of ``world_size`` when ``drop_last`` (the tail
  is dropped) or padded by wrapping around to its start otherwise (a few samples are seen twice), and
  rank ``r`` takes positions ``r, r + world_size, ...``: equal-sized, disjoint apart from the padding;
- each rank's share is cut into batches of ``batch_size``; ``drop_last`` also drops a final short batch.

Usage::

    loader = TensorLoader(bundle.train, 64, shuffle=True, drop_last=True, device="cuda", seed=0)
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        for images, labels, index in loader: ...
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch.utils.data import DataLoader, DistributedSampler

from .datasets import TensorImages
from .folder import ImageFolderDataset

__all__ = ["Batch", "FolderLoader", "TensorLoader", "epoch_indices"]


class Batch(NamedTuple):
    """One batch on the device: ``images`` uint8 [B, C, H, W], ``labels`` int64 [B], ``index`` int64 [B]
    (positions in the dataset the loader was built on)."""

    images: torch.Tensor
    labels: torch.Tensor
    index: torch.Tensor


def epoch_indices(
    n: int,
    epoch: int,
    *,
    shuffle: bool,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    drop_last: bool = False,
) -> torch.Tensor:
    """This rank's sample order for ``epoch`` (CPU LongTensor), identical to DistributedSampler's."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside [0, {world_size})")
    if shuffle:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))
    else:
        order = torch.arange(n)
    total = _per_rank(n, world_size, drop_last) * world_size
    if total > n:
        order = torch.cat([order, order.repeat(math.ceil((total - n) / n))[: total - n]])
    return order[:total][rank:total:world_size]


def _per_rank(n: int, world_size: int, drop_last: bool) -> int:
    if drop_last and n % world_size:
        return math.ceil((n - world_size) / world_size)
    return math.ceil(n / world_size)


def _num_batches(num_samples: int, batch_size: int, drop_last: bool) -> int:
    return num_samples // batch_size if drop_last else math.ceil(num_samples / batch_size)


class TensorLoader:
    """Batches of an in-memory :class:`TensorImages` whose tensors are moved to ``device`` once.

    ``len(loader)`` is the number of batches per epoch on this rank. See the module doc for the order.
    """

    def __init__(
        self,
        data: TensorImages,
        batch_size: int,
        *,
        shuffle: bool = True,
        drop_last: bool = False,
        device: str | torch.device = "cpu",
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.data, self.batch_size = data, int(batch_size)
        self.shuffle, self.drop_last, self.seed = bool(shuffle), bool(drop_last), int(seed)
        self.rank, self.world_size, self.epoch = int(rank), int(world_size), 0
        self.device = torch.device(device)
        self.images = data.images.to(self.device)
        self.labels = data.labels.to(self.device)
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {rank} outside [0, {world_size})")
        self.num_samples = _per_rank(len(data), self.world_size, self.drop_last)

    def set_epoch(self, epoch: int) -> None:
        """Select the shuffle of ``epoch`` (reproducible, identical across ranks)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return _num_batches(self.num_samples, self.batch_size, self.drop_last)

    def __iter__(self) -> Iterator[Batch]:
        order = epoch_indices(
            len(self.data),
            self.epoch,
            shuffle=self.shuffle,
            seed=self.seed,
            rank=self.rank,
            world_size=self.world_size,
            drop_last=self.drop_last,
        ).to(self.device)
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            yield Batch(self.images.index_select(0, idx), self.labels.index_select(0, idx), idx)


class FolderLoader:
    """A DataLoader over an :class:`ImageFolderDataset` with a DistributedSampler (``world_size`` replicas,
    this ``rank``; also for one process, so the order matches :class:`TensorLoader`), worker processes
    (persistent when ``num_workers > 0``), pinned memory when the device is CUDA, and batches moved to
    ``device`` as :class:`Batch`. ``generator_seed`` seeds the workers' augmentation RNG."""

    def __init__(
        self,
        dataset: ImageFolderDataset,
        batch_size: int,
        *,
        shuffle: bool = True,
        drop_last: bool = False,
        device: str | torch.device = "cpu",
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        num_workers: int = 4,
        pin_memory: bool | None = None,
        prefetch_factor: int | None = None,
    ):
        self.dataset, self.device = dataset, torch.device(device)
        self.sampler = DistributedSampler(
            dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last
        )
        pin = self.device.type == "cuda" if pin_memory is None else bool(pin_memory)
        self.loader = DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=self.sampler,
            drop_last=drop_last,
            num_workers=num_workers,
            pin_memory=pin,
            persistent_workers=num_workers > 0,
            prefetch_factor=prefetch_factor if num_workers > 0 else None,
            generator=torch.Generator().manual_seed(seed + 1000 * rank),
        )

    def set_epoch(self, epoch: int) -> None:
        """Select the shuffle of ``epoch`` (forwarded to the DistributedSampler)."""
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Batch]:
        nb = self.device.type == "cuda"
        for images, labels, index in self.loader:
            yield Batch(
                images.to(self.device, non_blocking=nb),
                labels.to(self.device, non_blocking=nb),
                index.to(self.device, non_blocking=nb),
            )
