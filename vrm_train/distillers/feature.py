"""Relation methods on features: RKD, SP, PKT, CC."""

from __future__ import annotations

from torch import nn

from vrm_train import losses as L

from .base import Distiller, step_output


class _FeatureDistiller(Distiller):
    def __init__(self, student, teacher, *, ce_weight, weight):
        super().__init__(student, teacher, ce_weight)
        self.weight = weight

    def _both(self, x):
        s, fs = self.student(x, return_features=True)
        t, ft = self.teacher_forward(x)
        rel = {"s": s, "t": t, "feat_s": fs["pooled"], "feat_t": ft["pooled"]}
        return s, fs, t, ft, rel


class RKD(_FeatureDistiller):
    """Park et al. 2019, "Relational Knowledge Distillation" (distance + angle on pooled features)."""

    def __init__(self, student, teacher, *, ce_weight, weight, distance_weight, angle_weight, squared, eps):
        super().__init__(student, teacher, ce_weight=ce_weight, weight=weight)
        self.kw = dict(distance_weight=distance_weight, angle_weight=angle_weight, squared=squared, eps=eps)

    def forward(self, x, x_v, y, epoch):
        s, fs, _, ft, rel = self._both(x)
        rkd = self.weight * L.rkd_loss(fs["pooled"].float(), ft["pooled"].float(), **self.kw)
        return step_output({"ce": self.ce(s, y), "rkd": rkd}, s, relation=rel)


class SP(_FeatureDistiller):
    """Tung & Mori 2019, "Similarity-Preserving Knowledge Distillation" (last feature map)."""

    def forward(self, x, x_v, y, epoch):
        s, fs, _, ft, rel = self._both(x)
        sp = self.weight * L.sp_loss(fs["maps"][-1].float(), ft["maps"][-1].float())
        return step_output({"ce": self.ce(s, y), "sp": sp}, s, relation=rel)


class PKT(_FeatureDistiller):
    """Passalis & Tefas 2018, "Learning Deep Representations with Probabilistic Knowledge Transfer"."""

    def __init__(self, student, teacher, *, ce_weight, weight, eps):
        super().__init__(student, teacher, ce_weight=ce_weight, weight=weight)
        self.eps = eps

    def forward(self, x, x_v, y, epoch):
        s, fs, _, ft, rel = self._both(x)
        pkt = self.weight * L.pkt_loss(fs["pooled"].float(), ft["pooled"].float(), eps=self.eps)
        return step_output({"ce": self.ce(s, y), "pkt": pkt}, s, relation=rel)


class CC(_FeatureDistiller):
    """Peng et al. 2019, "Correlation Congruence for Knowledge Distillation".

    Both pooled features go through trainable linear embeddings (``embed_dim``) before the loss, as in
    the reference training code; the embeddings are trained with the student and saved in checkpoints.
    """

    def __init__(self, student, teacher, *, ce_weight, weight, variant, embed_dim, gamma, order):
        super().__init__(student, teacher, ce_weight=ce_weight, weight=weight)
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
        s, fs, _, ft, rel = self._both(x)
        e_s = self.embeds["s"](fs["pooled"].float())
        e_t = self.embeds["t"](ft["pooled"].float())
        if self.variant == "kernel":  # the kernel variant L2-normalises the rows itself
            cc = L.cc_loss(e_s, e_t, variant="kernel", gamma=self.gamma, order=self.order)
        else:
            cc = L.cc_loss(e_s, e_t, variant="consecutive")
        return step_output({"ce": self.ce(s, y), "cc": self.weight * cc}, s, relation=rel)
