"""DKD: Zhao et al. CVPR 2022, "Decoupled Knowledge Distillation"."""

from __future__ import annotations

from dataclasses import dataclass

from vrm_train import losses as L

from .base import Distiller, logit_relation, loss_logits, step_output
from .registry import register_method


@dataclass
class DKDConfig:
    ce_weight: float = 1.0
    alpha: float = 1.0
    beta: float = 8.0
    temperature: float = 4.0
    warmup: int = 20  # epochs of linear warm-up of the DKD term
    # Logit standardisation (Sun et al. CVPR 2024): z-score both logits per sample before the loss.
    logit_stand: bool = False


@register_method(
    "dkd", config=DKDConfig, summary="DKD: target (TCKD) and non-target (NCKD) KD, weighted apart"
)
class DKD(Distiller):
    """Zhao et al. 2022, "Decoupled Knowledge Distillation"; the DKD term warms up linearly."""

    def __init__(self, student, teacher, *, ce_weight, alpha, beta, temperature, warmup, logit_stand):
        super().__init__(student, teacher, ce_weight)
        self.logit_stand = logit_stand
        self.alpha, self.beta, self.temperature, self.warmup = alpha, beta, temperature, warmup

    def forward(self, x, x_v, y, epoch):
        s, fs = self.student(x, return_features=True)
        t, ft = self.teacher_forward(x)
        ramp = min(epoch / self.warmup, 1.0) if self.warmup > 0 else 1.0
        zs, zt = loss_logits(s, t, self.logit_stand)
        dkd = L.dkd_loss(zs, zt, y, alpha=self.alpha, beta=self.beta, temperature=self.temperature)
        return step_output(
            {"ce": self.ce(s, y), "dkd": ramp * dkd},
            s,
            {"dkd_ramp": s.new_tensor(ramp)},
            relation=logit_relation(s, t, fs, ft),
        )
