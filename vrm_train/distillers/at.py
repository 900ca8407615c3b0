"""AT: Zagoruyko & Komodakis ICLR 2017, "Paying More Attention to Attention" (attention transfer)."""

from __future__ import annotations

from dataclasses import dataclass, field

from vrm_train.feature_losses import at_loss

from .base import Distiller, logit_relation, step_output
from .hooked import paired_hooks
from .registry import register_method


@dataclass
class ATConfig:
    # RepDistiller `--distill attention -a 0 -b 1000` and mdistiller CFG.AT: p = 2, weight 1000, CE 1.
    ce_weight: float = 1.0
    weight: float = 1000.0
    p: float = 2.0
    # Module paths of the matched maps; empty: every stage after the stem (the zoo's stage_paths).
    student_layers: list[str] = field(default_factory=list)
    teacher_layers: list[str] = field(default_factory=list)


@register_method("at", config=ATConfig, summary="AT: attention maps (channel mean of f²) of every stage")
class AT(Distiller):
    """Zagoruyko & Komodakis 2017, "Paying More Attention to Attention", on features taken by hooks."""

    def __init__(self, student, teacher, *, ce_weight, weight, p, student_layers, teacher_layers):
        super().__init__(student, teacher, ce_weight)
        self.weight, self.p = weight, p
        self.hooks_s, self.hooks_t = paired_hooks(student, teacher, student_layers, teacher_layers)

    def forward(self, x, x_v, y, epoch):
        s, fs = self.student(x, return_features=True)
        g_s = self.hooks_s.collect()
        t, ft = self.teacher_forward(x)
        g_t = self.hooks_t.collect()
        at = self.weight * at_loss([g.float() for g in g_s], [g.float() for g in g_t], p=self.p)
        return step_output({"ce": self.ce(s, y), "at": at}, s, relation=logit_relation(s, t, fs, ft))
