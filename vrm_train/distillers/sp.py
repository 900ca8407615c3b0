"""SP: Tung & Mori ICCV 2019, "Similarity-Preserving Knowledge Distillation" (last feature map)."""

from __future__ import annotations

from dataclasses import dataclass

from vrm_train import losses as L

from .base import Distiller, logit_relation, step_output
from .registry import register_method


@dataclass
class SPConfig:
    ce_weight: float = 1.0
    weight: float = 3000.0


@register_method(
    "sp", config=SPConfig, summary="SP: batch similarity (Gram) matrices of the last feature map"
)
class SP(Distiller):
    """Tung & Mori 2019, "Similarity-Preserving Knowledge Distillation" (last feature map)."""

    def __init__(self, student, teacher, *, ce_weight, weight):
        super().__init__(student, teacher, ce_weight)
        self.weight = weight

    def forward(self, x, x_v, y, epoch):
        s, fs = self.student(x, return_features=True)
        t, ft = self.teacher_forward(x)
        sp = self.weight * L.sp_loss(fs["maps"][-1].float(), ft["maps"][-1].float())
        return step_output({"ce": self.ce(s, y), "sp": sp}, s, relation=logit_relation(s, t, fs, ft))
