"""Seeded, stratified index selections: a fixed number of images per class, and train/validation splits
that let hyper-parameters be chosen without looking at the test set.

All randomness comes from a CPU ``torch.Generator`` seeded with ``seed``, so a selection is the same on
every machine; returned indices are sorted LongTensors.

Usage::

    train_idx, val_idx = train_val_split(labels, val_per_class=50, seed=0)
"""

from __future__ import annotations

import torch

from .datasets import DatasetError

__all__ = ["per_class_subset", "train_val_split"]


def _class_positions(labels: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
    labels = torch.as_tensor(labels).long().cpu()
    if labels.dim() != 1:
        raise DatasetError(f"labels must be 1-D, got shape {tuple(labels.shape)}")
    return [(int(c), torch.nonzero(labels == c).flatten()) for c in torch.unique(labels)]


def per_class_subset(labels: torch.Tensor, n_per_class: int, seed: int = 0) -> torch.Tensor:
    """Sorted positions of ``n_per_class`` images drawn at random from every class present in ``labels``.

    Raises :class:`DatasetError` naming the class when one has fewer than ``n_per_class`` images.
    """
    if n_per_class < 1:
        raise DatasetError(f"n_per_class must be >= 1, got {n_per_class}")
    g = torch.Generator().manual_seed(seed)
    chosen = []
    for c, pos in _class_positions(labels):
        if pos.numel() < n_per_class:
            raise DatasetError(f"class {c} has {pos.numel()} images, fewer than n_per_class={n_per_class}")
        chosen.append(pos[torch.randperm(pos.numel(), generator=g)[:n_per_class]])
    return torch.cat(chosen).sort().values


def train_val_split(
    labels: torch.Tensor,
    *,
    val_per_class: int | None = None,
    val_fraction: float | None = None,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stratified disjoint split of ``range(len(labels))`` into sorted ``(train_idx, val_idx)``.

    Exactly one of ``val_per_class`` (that many images of each class go to validation) or
    ``val_fraction`` (``round(val_fraction * n_c)`` of class ``c``, at least 1) must be given. Every class
    keeps at least one training image, else :class:`DatasetError`. Deterministic in ``seed``.
    """
    if (val_per_class is None) == (val_fraction is None):
        raise DatasetError("give exactly one of val_per_class and val_fraction")
    if val_per_class is not None and val_per_class < 1:
        raise DatasetError(f"val_per_class must be >= 1, got {val_per_class}")
    if val_fraction is not None and not 0.0 < val_fraction < 1.0:
        raise DatasetError(f"val_fraction must be in (0, 1), got {val_fraction}")
    g = torch.Generator().manual_seed(seed)
    train, val = [], []
    for c, pos in _class_positions(labels):
        n = pos.numel()
        k = val_per_class if val_per_class is not None else max(1, round(val_fraction * n))
        if k >= n:
            raise DatasetError(
                f"class {c} has {n} images: cannot hold out {k} for validation and still train"
            )
        perm = pos[torch.randperm(n, generator=g)]
        val.append(perm[:k])
        train.append(perm[k:])
    return torch.cat(train).sort().values, torch.cat(val).sort().values
