"""The distiller contract shared by every method.

A distiller owns the student (trained), the teacher (frozen, always in eval mode, never receives
gradient) and any extra trainable modules of its method. ``forward`` is one training step's loss
computation: it returns a dict with

- ``losses``: named loss terms, already weighted; the engine sums them and logs each one;
- ``metrics``: named detached diagnostics, logged but not summed;
- ``logits``: the student's logits on the real view (train accuracy);
- ``relation``: whatever the method computed of the relation-snapshot inputs (student/teacher logits of
  the real and virtual views ``s``, ``s_v``, ``t``, ``t_v`` and pooled features ``feat_s``, ``feat_t``),
  detached; the engine computes the missing ones itself when it saves a snapshot.

The engine never branches on the method: it calls ``forward`` (through DDP when distributed) and sums.
"""

from __future__ import annotations

import abc
import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vrm_train import losses as L


@dataclass(frozen=True)
class DataInfo:
    """What a distiller may need to know about the training data before the first step (shapes of
    dry-run features, the memory bank of CRD): given to :meth:`Distiller.bind`."""

    num_classes: int
    in_chans: int
    image_size: int
    train_labels: torch.Tensor  # int64 [N], the labels of the training split in dataset order


class Distiller(nn.Module, abc.ABC):
    needs_virtual = False  # forward needs the virtual view x_v
    needs_teacher = True
    needs_index = False  # forward takes index=<the batch's positions in the training set> (CRD)

    def __init__(self, student: nn.Module, teacher: nn.Module | None, ce_weight: float = 1.0):
        super().__init__()
        if self.needs_teacher and teacher is None:
            raise ValueError(f"{type(self).__name__} needs a teacher model")
        self.student = student
        self.teacher = teacher
        self.ce_weight = ce_weight
        if teacher is not None:
            for p in teacher.parameters():
                p.requires_grad_(False)
            teacher.eval()

    def train(self, mode: bool = True) -> Distiller:
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()  # frozen whatever the caller does
        return self

    def bind(self, data: DataInfo) -> None:
        """Build what depends on the data (regressors sized by a dry run, memory banks); before the
        optimizer is created. Methods that need nothing of the data keep this no-op."""

    def extra_modules(self) -> nn.ModuleDict:
        """Trainable modules of the method beyond the student (saved in checkpoints)."""
        return nn.ModuleDict()

    def trainable_parameters(self) -> list[nn.Parameter]:
        params = list(self.student.parameters()) + list(self.extra_modules().parameters())
        return [p for p in params if p.requires_grad]

    def teacher_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        assert self.teacher is not None
        with torch.no_grad():
            logits, feats = self.teacher(x, return_features=True)
        return logits.detach(), {k: _detach(v) for k, v in feats.items()}

    def ce(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.ce_weight * F.cross_entropy(logits.float(), y)

    @abc.abstractmethod
    def forward(self, x: torch.Tensor, x_v: torch.Tensor | None, y: torch.Tensor, epoch: int) -> dict:
        """One step's loss terms for the batch (x, x_v, y) in the 1-based ``epoch`` (see module docstring)."""

    @torch.no_grad()
    def relation_inputs(self, x: torch.Tensor, x_v: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits and pooled features of both models on both views, without side effects.

        The student runs in its current mode (train mode during training, as in the step itself) but its
        buffers (BN running statistics) are restored afterwards, so saving a snapshot never changes training.
        """
        out: dict[str, torch.Tensor] = {}
        with preserved_buffers(self.student):
            s_all, fs = self.student(torch.cat([x, x_v]), return_features=True)
        b = x.shape[0]
        out.update(s=s_all[:b], s_v=s_all[b:], feat_s=fs["pooled"][:b])
        if self.teacher is not None:
            t_all, ft = self.teacher_forward(torch.cat([x, x_v]))
            out.update(t=t_all[:b], t_v=t_all[b:], feat_t=ft["pooled"][:b])
        return {k: v.detach().float() for k, v in out.items()}


def _detach(v):
    if isinstance(v, torch.Tensor):
        return v.detach()
    if isinstance(v, list | tuple):
        return [_detach(u) for u in v]
    return v


@contextlib.contextmanager
def preserved_buffers(module: nn.Module):
    saved = [b.detach().clone() for b in module.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for b, s in zip(module.buffers(), saved, strict=True):
                b.copy_(s)


def loss_logits(s: torch.Tensor, t: torch.Tensor, standardize: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Student and teacher logits in float32 for a logit loss, z-scored per row when ``standardize``
    (logit standardisation, :func:`vrm_train.losses.standardize_logits`)."""
    s, t = s.float(), t.float()
    if standardize:
        return L.standardize_logits(s), L.standardize_logits(t)
    return s, t


def logit_relation(s, t, fs: dict, ft: dict) -> dict:
    """The relation-snapshot inputs of a one-view method: both models' logits and pooled features."""
    return {"s": s, "t": t, "feat_s": fs["pooled"], "feat_t": ft["pooled"]}


def step_output(
    losses: dict, logits: torch.Tensor, metrics: dict | None = None, relation: dict | None = None
):
    """The dict every distiller returns (see the module docstring)."""
    return {
        "losses": losses,
        "metrics": {k: v.detach() for k, v in (metrics or {}).items()},
        "logits": logits.detach(),
        "relation": {k: v.detach() for k, v in (relation or {}).items()},
    }
