"""DIST: Huang et al. NeurIPS 2022, "Knowledge Distillation from A Stronger Teacher"."""

from __future__ import annotations

from dataclasses import dataclass

from vrm_train import losses as L

from .base import Distiller, logit_relation, loss_logits, step_output
from .registry import register_method


@dataclass
class DISTConfig:
    ce_weight: float = 1.0
    beta: float = 2.0
    gamma: float = 2.0
    tau: float = 4.0
    # Logit standardisation (Sun et al. CVPR 2024): z-score both logits per sample before the loss.
    logit_stand: bool = False


@register_method(
    "dist",
    config=DISTConfig,
    min_batch=2,
    summary="DIST: Pearson correlation of outputs, inter- and intra-class",
)
class DIST(Distiller):
    """Huang et al. 2022, "Knowledge Distillation from A Stronger Teacher" (inter- and intra-class)."""

    def __init__(self, student, teacher, *, ce_weight, beta, gamma, tau, logit_stand):
        super().__init__(student, teacher, ce_weight)
        self.logit_stand = logit_stand
        self.beta, self.gamma, self.tau = beta, gamma, tau

    def forward(self, x, x_v, y, epoch):
        s, fs = self.student(x, return_features=True)
        t, ft = self.teacher_forward(x)
        zs, zt = loss_logits(s, t, self.logit_stand)
        dist = L.dist_loss(zs, zt, beta=self.beta, gamma=self.gamma, tau=self.tau)
        return step_output({"ce": self.ce(s, y), "dist": dist}, s, relation=logit_relation(s, t, fs, ft))
