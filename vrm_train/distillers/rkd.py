"""RKD: Park et al. CVPR 2019, "Relational Knowledge Distillation" (distance + angle, pooled features)."""

from __future__ import annotations

from dataclasses import dataclass

from vrm_train import losses as L

from .base import Distiller, logit_relation, step_output
from .registry import register_method


@dataclass
class RKDConfig:
    ce_weight: float = 1.0
    weight: float = 1.0
    distance_weight: float = 25.0
    angle_weight: float = 50.0
    squared: bool = False
    eps: float = 1e-12


@register_method(
    "rkd", config=RKDConfig, min_batch=2, summary="RKD: distances and angles between samples' features"
)
class RKD(Distiller):
    """Park et al. 2019, "Relational Knowledge Distillation" (distance + angle on pooled features)."""

    def __init__(self, student, teacher, *, ce_weight, weight, distance_weight, angle_weight, squared, eps):
        super().__init__(student, teacher, ce_weight)
        self.weight = weight
        self.kw = dict(distance_weight=distance_weight, angle_weight=angle_weight, squared=squared, eps=eps)

    def forward(self, x, x_v, y, epoch):
        s, fs = self.student(x, return_features=True)
        t, ft = self.teacher_forward(x)
        rkd = self.weight * L.rkd_loss(fs["pooled"].float(), ft["pooled"].float(), **self.kw)
        return step_output({"ce": self.ce(s, y), "rkd": rkd}, s, relation=logit_relation(s, t, fs, ft))
