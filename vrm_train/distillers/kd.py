"""KD: Hinton et al. 2015, "Distilling the Knowledge in a Neural Network"."""

from __future__ import annotations

from dataclasses import dataclass

from vrm_train import losses as L

from .base import Distiller, logit_relation, step_output
from .registry import register_method


# Baseline weights follow the values their authors publish for CIFAR-100 (mdistiller / RepDistiller /
# DIST_KD configs); the ImageNet configs override them where the authors use other values.
@dataclass
class KDConfig:
    ce_weight: float = 0.1
    kd_weight: float = 0.9
    temperature: float = 4.0


@register_method("kd", config=KDConfig, summary="Hinton KD: KL between temperature-softened outputs")
class KD(Distiller):
    """Hinton et al. 2015, "Distilling the Knowledge in a Neural Network"."""

    def __init__(self, student, teacher, *, ce_weight, kd_weight, temperature):
        super().__init__(student, teacher, ce_weight)
        self.kd_weight, self.temperature = kd_weight, temperature

    def forward(self, x, x_v, y, epoch):
        s, fs = self.student(x, return_features=True)
        t, ft = self.teacher_forward(x)
        kd = self.kd_weight * L.kd_loss(s.float(), t.float(), temperature=self.temperature)
        return step_output({"ce": self.ce(s, y), "kd": kd}, s, relation=logit_relation(s, t, fs, ft))
