"""Methods that match output distributions: vanilla (no teacher), KD, DKD, DIST."""

from __future__ import annotations

from vrm_train import losses as L

from .base import Distiller, step_output


class Vanilla(Distiller):
    """Cross-entropy only: teacher training, or the student trained alone."""

    needs_teacher = False

    def forward(self, x, x_v, y, epoch):
        s, fs = self.student(x, return_features=True)
        return step_output({"ce": self.ce(s, y)}, s, relation={"s": s, "feat_s": fs["pooled"]})


class KD(Distiller):
    """Hinton et al. 2015, "Distilling the Knowledge in a Neural Network"."""

    def __init__(self, student, teacher, *, ce_weight, kd_weight, temperature):
        super().__init__(student, teacher, ce_weight)
        self.kd_weight, self.temperature = kd_weight, temperature

    def forward(self, x, x_v, y, epoch):
        s, fs = self.student(x, return_features=True)
        t, ft = self.teacher_forward(x)
        kd = self.kd_weight * L.kd_loss(s.float(), t.float(), temperature=self.temperature)
        rel = {"s": s, "t": t, "feat_s": fs["pooled"], "feat_t": ft["pooled"]}
        return step_output({"ce": self.ce(s, y), "kd": kd}, s, relation=rel)


class DKD(Distiller):
    """Zhao et al. 2022, "Decoupled Knowledge Distillation"; the DKD term warms up linearly."""

    def __init__(self, student, teacher, *, ce_weight, alpha, beta, temperature, warmup):
        super().__init__(student, teacher, ce_weight)
        self.alpha, self.beta, self.temperature, self.warmup = alpha, beta, temperature, warmup

    def forward(self, x, x_v, y, epoch):
        s, fs = self.student(x, return_features=True)
        t, ft = self.teacher_forward(x)
        ramp = min(epoch / self.warmup, 1.0) if self.warmup > 0 else 1.0
        dkd = L.dkd_loss(
            s.float(), t.float(), y, alpha=self.alpha, beta=self.beta, temperature=self.temperature
        )
        rel = {"s": s, "t": t, "feat_s": fs["pooled"], "feat_t": ft["pooled"]}
        return step_output(
            {"ce": self.ce(s, y), "dkd": ramp * dkd}, s, {"dkd_ramp": s.new_tensor(ramp)}, relation=rel
        )


class DIST(Distiller):
    """Huang et al. 2022, "Knowledge Distillation from A Stronger Teacher" (inter- and intra-class)."""

    def __init__(self, student, teacher, *, ce_weight, beta, gamma, tau):
        super().__init__(student, teacher, ce_weight)
        self.beta, self.gamma, self.tau = beta, gamma, tau

    def forward(self, x, x_v, y, epoch):
        s, fs = self.student(x, return_features=True)
        t, ft = self.teacher_forward(x)
        dist = L.dist_loss(s.float(), t.float(), beta=self.beta, gamma=self.gamma, tau=self.tau)
        rel = {"s": s, "t": t, "feat_s": fs["pooled"], "feat_t": ft["pooled"]}
        return step_output({"ce": self.ce(s, y), "dist": dist}, s, relation=rel)
