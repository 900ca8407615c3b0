"""ReviewKD: Chen et al. CVPR 2021, "Distilling Knowledge via Knowledge Review".

The student's stage outputs and its pooled vector (as a 1×1 map) are fused from the deepest level up by
attention-based fusion blocks (ABF) into maps of the teacher's shapes, then matched to the teacher's by
the hierarchical context loss (:func:`vrm_train.feature_losses.hcl_loss`), warmed up linearly. As in
mdistiller's ``ReviewKD.py``; the fusion blocks are sized by a dry run (``bind``), so no shapes or
channel lists are configured. Deviation: the teacher side is its post-activation stage outputs (the
peer takes pre-activation ones, which the zoo does not expose as module outputs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from vrm_train.feature_losses import hcl_loss

from .base import DataInfo, Distiller, logit_relation, step_output
from .hooked import dry_run, paired_hooks, require_maps
from .registry import register_method


@dataclass
class ReviewKDConfig:
    # mdistiller CFG.REVIEWKD: weight 1.0 (its resnet32x4 -> resnet8x4 config: 5.0), warm-up 20 epochs,
    # CE 1, mid channels at most 512.
    ce_weight: float = 1.0
    weight: float = 1.0
    warmup: int = 20
    max_mid_channel: int = 512
    student_layers: list[str] = field(default_factory=list)  # empty: the zoo's stage outputs
    teacher_layers: list[str] = field(default_factory=list)


class ABF(nn.Module):
    """Attention-based fusion: 1×1 conv-BN to ``mid``; fused with the deeper level's output by a
    two-channel sigmoid attention (if ``fuse``); resized to ``out_shape``; 3×3 conv-BN to ``out_ch``."""

    def __init__(self, in_ch: int, mid: int, out_ch: int, fuse: bool):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(in_ch, mid, 1, bias=False), nn.BatchNorm2d(mid))
        self.conv2 = nn.Sequential(nn.Conv2d(mid, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch))
        self.att_conv = nn.Sequential(nn.Conv2d(mid * 2, 2, 1), nn.Sigmoid()) if fuse else None
        nn.init.kaiming_uniform_(self.conv1[0].weight, a=1)
        nn.init.kaiming_uniform_(self.conv2[0].weight, a=1)

    def forward(self, x, y=None, shape=None, out_shape=None):
        n, _, h, w = x.shape
        x = self.conv1(x)
        if self.att_conv is not None:
            y = F.interpolate(y, (shape, shape), mode="nearest")
            z = self.att_conv(torch.cat([x, y], dim=1))
            x = x * z[:, 0].view(n, 1, h, w) + y * z[:, 1].view(n, 1, h, w)
        if x.shape[-1] != out_shape:
            x = F.interpolate(x, (out_shape, out_shape), mode="nearest")
        return self.conv2(x), x


@register_method(
    "reviewkd",
    config=ReviewKDConfig,
    summary="ReviewKD: fused student stages match teacher stages (HCL loss)",
)
class ReviewKD(Distiller):
    """Chen et al. 2021, "Distilling Knowledge via Knowledge Review" (ABF fusion + HCL)."""

    def __init__(
        self, student, teacher, *, ce_weight, weight, warmup, max_mid_channel, student_layers, teacher_layers
    ):
        super().__init__(student, teacher, ce_weight)
        self.weight, self.warmup, self.max_mid = weight, warmup, max_mid_channel
        self.hooks_s, self.hooks_t = paired_hooks(student, teacher, student_layers, teacher_layers)
        self.abfs = nn.ModuleList()
        self.shapes: list[int] = []
        self.out_shapes: list[int] = []

    def bind(self, data: DataInfo) -> None:
        s_shapes, s_dim = dry_run(self.student, self.hooks_s, data)
        t_shapes, t_dim = dry_run(self.teacher, self.hooks_t, data)
        require_maps("ReviewKD", "student", s_shapes)
        require_maps("ReviewKD", "teacher", t_shapes)
        in_ch = [s[1] for s in s_shapes] + [s_dim]
        out_ch = [t[1] for t in t_shapes] + [t_dim]
        mid = min(self.max_mid, in_ch[-1])
        abfs = [ABF(c, mid, out_ch[i], i < len(in_ch) - 1) for i, c in enumerate(in_ch)]
        self.abfs = nn.ModuleList(abfs[::-1])  # deepest level first
        self.shapes = ([s[2] for s in s_shapes] + [1])[::-1]
        self.out_shapes = ([t[2] for t in t_shapes] + [1])[::-1]

    def extra_modules(self) -> nn.ModuleDict:
        return nn.ModuleDict({"abfs": self.abfs})

    def forward(self, x, x_v, y, epoch):
        if not len(self.abfs):
            raise RuntimeError(
                "ReviewKD needs bind(DataInfo) before training (build_distiller(..., data=...))"
            )
        s, fs = self.student(x, return_features=True)
        feats = [f.float() for f in self.hooks_s.collect()] + [fs["pooled"].float()[:, :, None, None]]
        t, ft = self.teacher_forward(x)
        t_feats = [f.float() for f in self.hooks_t.collect()] + [ft["pooled"].float()[:, :, None, None]]
        feats = feats[::-1]
        out, res = self.abfs[0](feats[0], out_shape=self.out_shapes[0])
        results = [out]
        for f, abf, shape, out_shape in zip(
            feats[1:], self.abfs[1:], self.shapes[1:], self.out_shapes[1:], strict=True
        ):
            out, res = abf(f, res, shape, out_shape)
            results.insert(0, out)
        ramp = min(epoch / self.warmup, 1.0) if self.warmup > 0 else 1.0
        review = self.weight * ramp * hcl_loss(results, t_feats)
        metrics = {"reviewkd_ramp": s.new_tensor(ramp)}
        return step_output(
            {"ce": self.ce(s, y), "reviewkd": review}, s, metrics, logit_relation(s, t, fs, ft)
        )
