"""Spurious teacher responses for the robustness study (config keys ``data.corrupt_teacher_*``).

A fixed fraction of the training images gets a corrupted teacher: for image i (chosen once, seeded) with a
wrong class k_i (drawn once, never its label), the teacher's top logit and its logit for k_i are swapped, on
the real and the virtual view alike, in every epoch. The teacher then answers k_i for that image with the
confidence it had in its own answer (the same corruption as the app's one-sample experiment,
:func:`vrm_viz.spurious.corrupt_teacher` at strength 1). Other images and evaluation are untouched.

    table = corruption_table(labels, num_classes=10, fraction=0.1, seed=0)   # [N] wrong class or -1
    teacher = CorruptedTeacher(teacher, table)
    teacher.index = batch.index        # the dataset positions of the batch being trained on; None = clean
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def corruption_table(labels: Tensor, *, num_classes: int, fraction: float, seed: int) -> Tensor:
    """[N] int64: the wrong class of each corrupted image, -1 for clean ones; round(fraction·N) images."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    if num_classes < 2:
        raise ValueError("corrupting a teacher needs at least 2 classes")
    labels = labels.long().cpu()
    n = labels.shape[0]
    g = torch.Generator().manual_seed(int(seed))
    chosen = torch.randperm(n, generator=g)[: round(fraction * n)]
    # a wrong class uniform over the num_classes - 1 others
    shift = torch.randint(1, num_classes, (n,), generator=g)
    table = torch.full((n,), -1, dtype=torch.long)
    table[chosen] = (labels[chosen] + shift[chosen]) % num_classes
    return table


def swap_top(logits: Tensor, wrong: Tensor) -> Tensor:
    """Rows with ``wrong >= 0`` get their top logit swapped with the logit of class ``wrong``."""
    rows = (wrong >= 0).nonzero().squeeze(1)
    if rows.numel() == 0:
        return logits
    out = logits.clone()
    sub = out[rows]
    top = sub.argmax(1, keepdim=True)
    k = wrong[rows].unsqueeze(1)
    top_val, k_val = sub.gather(1, top), sub.gather(1, k)
    sub = sub.scatter(1, top, k_val).scatter(1, k, top_val)
    out[rows] = sub
    return out


class CorruptedTeacher(nn.Module):
    """A frozen teacher whose logits are corrupted for the images of ``table`` (see the module docstring).

    Set ``index`` to the dataset positions of the batch before each training forward; a forward of k·B
    images (the concatenated real and virtual views) applies the same corruption to every block of B. With
    ``index`` None (evaluation, snapshots) the teacher is clean."""

    def __init__(self, teacher: nn.Module, table: Tensor):
        super().__init__()
        self.teacher = teacher
        self.register_buffer("table", table.long(), persistent=False)
        self.num_features = getattr(teacher, "num_features", None)
        self.index: Tensor | None = None

    def corrupted_fraction(self) -> float:
        return float((self.table >= 0).float().mean()) if self.table.numel() else 0.0

    def forward(self, x: Tensor, return_features: bool = False):
        out = self.teacher(x, return_features=return_features)
        if self.index is None:
            return out
        logits, feats = out if return_features else (out, None)
        b = self.index.shape[0]
        if x.shape[0] % b:
            raise ValueError(f"teacher forward of {x.shape[0]} images for a batch of {b} indices")
        wrong = self.table[self.index.to(self.table.device)].repeat(x.shape[0] // b)
        logits = swap_top(logits, wrong.to(logits.device))
        return (logits, feats) if return_features else logits
