"""One stored batch of a run as the VRM maths sees it: logits of both views for student and teacher,
targets, images and (optionally) features. Files are written by :mod:`vrm_train.snapshots` and opened with
:func:`vrm_viz.runs.read_snapshot` or ``Run.snapshot``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Snapshot:
    """The inputs of the VRM maths for one batch (see :mod:`vrm_train.snapshots`)."""

    path: str
    kind: str
    split: str
    epoch: int
    batch: int
    method: str
    dataset: str
    classes: list[str]
    mean: list[float]
    std: list[float]
    student_arch: str
    teacher_arch: str | None
    s: torch.Tensor
    s_v: torch.Tensor
    targets: torch.Tensor
    index: torch.Tensor
    image: torch.Tensor
    image_v: torch.Tensor
    t: torch.Tensor | None = None
    t_v: torch.Tensor | None = None
    feat_s: torch.Tensor | None = None
    feat_t: torch.Tensor | None = None

    @property
    def has_teacher(self) -> bool:
        return self.t is not None

    @property
    def batch_size(self) -> int:
        return int(self.s.shape[0])

    @property
    def num_classes(self) -> int:
        return int(self.s.shape[1])

    @property
    def label(self) -> str:
        return "probe batch (test set)" if self.kind == "probe" else f"training batch {self.batch}"
