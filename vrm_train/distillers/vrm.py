"""VRM: Virtual Relation Matching (Zhang et al., ICCV 2025, arXiv 2502.20760).

Teacher and student both see the real and the virtual view of every image; the student matches the
teacher's inter-sample / inter-view and inter-class affinity graphs built on logits, after pruning
redundant (REP) and unreliable (UEP) edges. All of the maths is :func:`vrm_train.relations.vrm_loss`.

By default both views go through each network in one concatenated forward pass (2B images): one kernel
launch sequence instead of two, and the student's BatchNorm statistics are those of the real+virtual batch.
``student_bn`` = "separate" or "real" gives the student two forwards instead (see :mod:`.bn`); the frozen
teacher is in eval mode, so one concatenated forward is exact for it either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.distributed as dist
import torch.nn.functional as F

from vrm_train import losses as L
from vrm_train.relations import vrm_loss

from .base import Distiller, step_output
from .bn import two_view_forward
from .registry import register_method


@dataclass
class VRMConfig:
    # δ, the UEP rule and ratio were chosen by the validation-split sweep of bench/quality.py (Fashion-MNIST,
    # 300 images/class, resnet20 -> resnet8; docs/benchmarks.md, "VRM hyper-parameter sweep", and
    # docs/quality_sweep.csv); λ_IS = λ_IC by the equal-budget study's grid (λ 4 … 256 on the same validation
    # split; bench/equal_budget.py, docs/benchmarks.md "Equal-budget comparison"), which chose 8 over the
    # earlier 16. z-score, REP and the virtual view's strength are ablated there too.
    ce_weight: float = 1.0
    is_edges: Literal["cross_view", "all", "real_only"] = "cross_view"
    zscore: bool = True
    uep: Literal["cross_entropy", "joint_entropy", "teacher_student", "residual", "none"] = "cross_entropy"
    uep_ratio: float = 0.4
    huber_delta: float = 1.0
    lambda_is: float = 8.0
    lambda_ic: float = 8.0
    # τ of the undefined-edge rule (spec §2.4): an edge whose two vertices coincide to within τ (relative) for
    # the student or the teacher has no direction and gets no loss and no gradient. In [0, 1e-3].
    edge_tol: float = 1e-5
    ce_virtual: float = 0.0  # weight of cross-entropy on the virtual view (off by default)
    # How the student's BatchNorm sees the two views: joint = one forward of the concatenated 2B batch (BN
    # statistics of real + virtual images); separate = two forwards (each view normalised by its own batch
    # statistics, running statistics updated by both); real = two forwards, the virtual view normalised with
    # the real batch's statistics and the running statistics updated by the real view only.
    student_bn: Literal["joint", "separate", "real"] = "joint"
    kd_weight: float = 0.0  # weight of an extra classic KD term (off by default)
    kd_temperature: float = 4.0
    # Multi-GPU: build graphs on each process's local batch (False) or on the all-gathered global batch.
    global_graphs: bool = False

    def check(self) -> list[str]:
        """Problems of cross-field or range kind, as messages naming the key (empty: valid)."""
        bad = []
        if not self.huber_delta > 0:
            bad.append(f"config key 'vrm.huber_delta' must be > 0, got {self.huber_delta}")
        if not 0.0 <= self.uep_ratio < 1.0:
            bad.append(f"config key 'vrm.uep_ratio' must be in [0, 1), got {self.uep_ratio}")
        if not 0.0 <= self.edge_tol <= 1e-3:
            bad.append(f"config key 'vrm.edge_tol' must be in [0, 0.001], got {self.edge_tol}")
        return bad


@register_method(
    "vrm",
    config=VRMConfig,
    min_batch=2,
    summary="VRM: pruned inter-sample / inter-class affinity graphs of logits on real and virtual views",
)
class VRM(Distiller):
    """Virtual Relation Matching (Zhang et al., ICCV 2025): relation graphs on real and virtual views."""

    def __init__(
        self,
        student,
        teacher,
        *,
        ce_weight,
        is_edges,
        zscore,
        uep,
        uep_ratio,
        huber_delta,
        lambda_is,
        lambda_ic,
        edge_tol,
        ce_virtual,
        student_bn,
        kd_weight,
        kd_temperature,
        global_graphs,
    ):
        super().__init__(student, teacher, ce_weight)
        self.opts = dict(
            is_edges=is_edges,
            zscore=zscore,
            uep=uep,
            uep_ratio=uep_ratio,
            huber_delta=huber_delta,
            lambda_is=lambda_is,
            lambda_ic=lambda_ic,
            edge_tol=edge_tol,
            check_finite=False,  # a NaN reaches the loss and the engine's clear stop (no host sync either)
        )
        self.needs_virtual = is_edges != "real_only"
        self.ce_virtual, self.kd_weight, self.kd_temperature = ce_virtual, kd_weight, kd_temperature
        self.global_graphs = global_graphs
        self.student_bn = student_bn

    def forward(self, x, x_v, y, epoch):
        b = x.shape[0]
        views = torch.cat([x, x_v]) if self.needs_virtual else x
        if self.needs_virtual and self.student_bn != "joint":
            s_all, fs = two_view_forward(self.student, x, x_v, self.student_bn)
        else:
            s_all, fs = self.student(views, return_features=True)
        t_all, ft = self.teacher_forward(views)
        s, t = s_all[:b], t_all[:b]
        s_v, t_v = (s_all[b:], t_all[b:]) if self.needs_virtual else (None, None)
        g = [_gather(z) for z in (s, s_v, t, t_v)] if self._distributed() else [s, s_v, t, t_v]
        out = vrm_loss(*[None if z is None else z.float() for z in g], **self.opts)
        losses = {"ce": self.ce(s, y), "vrm": out.loss}
        if self.ce_virtual > 0 and s_v is not None:
            losses["ce_virtual"] = self.ce_virtual * F.cross_entropy(s_v.float(), y)
        if self.kd_weight > 0:
            losses["kd"] = self.kd_weight * L.kd_loss(s.float(), t.float(), temperature=self.kd_temperature)
        kept = out.masks["is"].sum() / out.masks["is_candidates"].sum().clamp(min=1)
        metrics = {"vrm_is": out.terms["is"], "vrm_ic": out.terms["ic"], "is_kept_frac": kept}
        # Diagnostics of the undefined-edge rule (spec §2.4), per epoch in metrics.csv: the mean number of
        # undefined edges per batch, and the smallest relative inter-view gap of each model (the meter keeps
        # *_min keys as epoch minima; a gap ≤ edge_tol is an undefined inter-view edge).
        metrics["undefined_edges"] = out.terms["undefined_edges"]
        if "gap_min_s" in out.terms:
            metrics.update(view_gap_s_min=out.terms["gap_min_s"], view_gap_t_min=out.terms["gap_min_t"])
        rel = {"s": s, "t": t, "feat_s": fs["pooled"][:b], "feat_t": ft["pooled"][:b]}
        if s_v is not None:
            rel.update(s_v=s_v, t_v=t_v)
        return step_output(losses, s, metrics, rel)

    def _distributed(self) -> bool:
        return (
            self.global_graphs and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        )


def _gather(z: torch.Tensor | None) -> torch.Tensor | None:
    """All-gather along the batch; gradients flow back to this process's shard (student side)."""
    if z is None:
        return None
    if z.requires_grad:
        from torch.distributed.nn.functional import all_gather

        return torch.cat(all_gather(z))
    parts = [torch.empty_like(z) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, z.contiguous())
    return torch.cat(parts)
