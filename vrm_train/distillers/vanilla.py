"""Cross-entropy only: teacher training, or the student trained alone (no config section)."""

from __future__ import annotations

from .base import Distiller, step_output
from .registry import register_method


@register_method("vanilla", summary="cross-entropy only: a teacher, or the student trained alone")
class Vanilla(Distiller):
    """Cross-entropy only: teacher training, or the student trained alone."""

    needs_teacher = False

    def __init__(self, student, teacher=None):
        super().__init__(student, None)

    def forward(self, x, x_v, y, epoch):
        s, fs = self.student(x, return_features=True)
        return step_output({"ce": self.ce(s, y)}, s, relation={"s": s, "feat_s": fs["pooled"]})
