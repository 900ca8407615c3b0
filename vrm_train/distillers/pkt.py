"""PKT: Passalis & Tefas ECCV 2018, "Learning Deep Representations with Probabilistic Knowledge Transfer"."""

from __future__ import annotations

from dataclasses import dataclass

from vrm_train import losses as L

from .base import Distiller, logit_relation, step_output
from .registry import register_method


@dataclass
class PKTConfig:
    ce_weight: float = 1.0
    weight: float = 30000.0
    eps: float = 1e-7


@register_method("pkt", config=PKTConfig, summary="PKT: cosine-kernel probability distributions of features")
class PKT(Distiller):
    """Passalis & Tefas 2018, "Learning Deep Representations with Probabilistic Knowledge Transfer"."""

    def __init__(self, student, teacher, *, ce_weight, weight, eps):
        super().__init__(student, teacher, ce_weight)
        self.weight, self.eps = weight, eps

    def forward(self, x, x_v, y, epoch):
        s, fs = self.student(x, return_features=True)
        t, ft = self.teacher_forward(x)
        pkt = self.weight * L.pkt_loss(fs["pooled"].float(), ft["pooled"].float(), eps=self.eps)
        return step_output({"ce": self.ce(s, y), "pkt": pkt}, s, relation=logit_relation(s, t, fs, ft))
