"""CC: Peng et al. ICCV 2019, "Correlation Congruence for Knowledge Distillation"."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

from vrm_train import losses as L

from .base import Distiller, logit_relation, step_output
from .registry import register_method


@dataclass
class CCConfig:
    ce_weight: float = 1.0
    weight: float = 0.02
    variant: Literal["kernel", "consecutive"] = "kernel"
    embed_dim: int = 128
    gamma: float = 0.4
    order: int = 2


@register_method(
    "cc", config=CCConfig, min_batch=2, summary="CC: correlation between samples' embedded features"
)
class CC(Distiller):
    """Peng et al. 2019, "Correlation Congruence for Knowledge Distillation".

    Both pooled features go through trainable linear embeddings (``embed_dim``) before the loss, as in
    the reference training code; the embeddings are trained with the student and saved in checkpoints.
    """

    def __init__(self, student, teacher, *, ce_weight, weight, variant, embed_dim, gamma, order):
        super().__init__(student, teacher, ce_weight)
        self.weight = weight
        self.embeds = nn.ModuleDict(
            {
                "s": nn.Linear(student.num_features, embed_dim),
                "t": nn.Linear(teacher.num_features, embed_dim),
            }
        )
        self.variant, self.gamma, self.order = variant, gamma, order

    def extra_modules(self) -> nn.ModuleDict:
        return self.embeds

    def forward(self, x, x_v, y, epoch):
        s, fs = self.student(x, return_features=True)
        t, ft = self.teacher_forward(x)
        e_s = self.embeds["s"](fs["pooled"].float())
        e_t = self.embeds["t"](ft["pooled"].float())
        if self.variant == "kernel":  # the kernel variant L2-normalises the rows itself
            cc = L.cc_loss(e_s, e_t, variant="kernel", gamma=self.gamma, order=self.order)
        else:
            cc = L.cc_loss(e_s, e_t, variant="consecutive")
        return step_output(
            {"ce": self.ce(s, y), "cc": self.weight * cc}, s, relation=logit_relation(s, t, fs, ft)
        )
