"""KD: Hinton et al. 2015, "Distilling the Knowledge in a Neural Network"."""

from __future__ import annotations

from dataclasses import dataclass

from vrm_train import losses as L

from .base import Distiller, logit_relation, loss_logits, step_output
from .registry import register_method


# Baseline weights follow the values their authors publish for CIFAR-100 (mdistiller / RepDistiller /
# DIST_KD configs); the ImageNet configs override them where the authors use other values.
@dataclass
class KDConfig:
    ce_weight: float = 0.1
    kd_weight: float = 0.9
    temperature: float = 4.0
    # Logit standardisation (Sun et al. CVPR 2024): z-score both logits per sample before the loss.
    logit_stand: bool = False


@register_method("kd", config=KDConfig, summary="Hinton KD: KL between temperature-softened outputs")
class KD(Distiller):
    """Hinton et al. 2015, "Distilling the Knowledge in a Neural Network"."""

    def __init__(self, student, teacher, *, ce_weight, kd_weight, temperature, logit_stand):
        super().__init__(student, teacher, ce_weight)
        self.kd_weight, self.temperature, self.logit_stand = kd_weight, temperature, logit_stand

    def forward(self, x, x_v, y, epoch):
        s, fs = self.student(x, return_features=True)
        t, ft = self.teacher_forward(x)
        zs, zt = loss_logits(s, t, self.logit_stand)
        kd = self.kd_weight * L.kd_loss(zs, zt, temperature=self.temperature)
        return step_output({"ce": self.ce(s, y), "kd": kd}, s, relation=logit_relation(s, t, fs, ft))
