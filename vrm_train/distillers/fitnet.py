"""FitNet: Romero et al. ICLR 2015, "FitNets: Hints for Thin Deep Nets" (hint + regressor)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from vrm_train.feature_losses import hint_loss
from vrm_train.features import FeatureHooks, stage_paths

from .base import DataInfo, Distiller, logit_relation, step_output
from .hooked import dry_run, require_maps
from .registry import register_method


@dataclass
class FitNetConfig:
    # RepDistiller `--distill hint -a 0 -b 100 --hint_layer 2` and mdistiller CFG.FITNET: weight 100, CE 1.
    ce_weight: float = 1.0
    weight: float = 100.0
    stage: int = 2  # the hint stage, 1-based over the stages after the stem (mdistiller HINT_LAYER = 2)
    # Module paths of the hint (student) and guided (teacher) layers; empty: the `stage`-th stage output.
    student_layer: str = ""
    teacher_layer: str = ""

    def check(self) -> list[str]:
        return [] if self.stage >= 1 else [f"config key 'fitnet.stage' must be >= 1, got {self.stage}"]


class ConvReg(nn.Module):
    """The hint regressor of RepDistiller / mdistiller: conv (shape-dependent) -> BN -> ReLU.

    Student side H_s vs teacher H_t: 2·H_t = H_s: 3×3 conv, stride 2; 2·H_s = H_t: 4×4 transposed conv,
    stride 2; H_s >= H_t: a valid conv of kernel (1 + H_s − H_t, 1 + W_s − W_t).
    """

    def __init__(self, s_shape, t_shape):
        super().__init__()
        s_c, s_h, s_w = s_shape[1:]
        t_c, t_h, t_w = t_shape[1:]
        if s_h == 2 * t_h:
            self.conv = nn.Conv2d(s_c, t_c, kernel_size=3, stride=2, padding=1)
        elif s_h * 2 == t_h:
            self.conv = nn.ConvTranspose2d(s_c, t_c, kernel_size=4, stride=2, padding=1)
        elif s_h >= t_h:
            self.conv = nn.Conv2d(s_c, t_c, kernel_size=(1 + s_h - t_h, 1 + s_w - t_w))
        else:
            raise ValueError(
                f"FitNet regressor: student map {s_h}x{s_w} is smaller than the teacher's {t_h}x{t_w}"
            )
        self.bn = nn.BatchNorm2d(t_c)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


@register_method(
    "fitnet", config=FitNetConfig, summary="FitNet: regressed student map matches a teacher map (MSE)"
)
class FitNet(Distiller):
    """Romero et al. 2015, "FitNets": a trainable regressor maps the student's hint layer onto the teacher's."""

    def __init__(self, student, teacher, *, ce_weight, weight, stage, student_layer, teacher_layer):
        super().__init__(student, teacher, ce_weight)
        self.weight = weight
        s_path = student_layer or _stage(student, stage, "student")
        t_path = teacher_layer or _stage(teacher, stage, "teacher")
        self.hooks_s, self.hooks_t = FeatureHooks(student, [s_path]), FeatureHooks(teacher, [t_path])
        self.regressor: nn.Module | None = None

    def bind(self, data: DataInfo) -> None:
        (s_shape,), _ = dry_run(self.student, self.hooks_s, data)
        (t_shape,), _ = dry_run(self.teacher, self.hooks_t, data)
        require_maps("FitNet", "student", [s_shape])
        require_maps("FitNet", "teacher", [t_shape])
        self.regressor = ConvReg(s_shape, t_shape)

    def extra_modules(self) -> nn.ModuleDict:
        return nn.ModuleDict({"regressor": self.regressor} if self.regressor is not None else {})

    def forward(self, x, x_v, y, epoch):
        if self.regressor is None:
            raise RuntimeError("FitNet needs bind(DataInfo) before training (build_distiller(..., data=...))")
        s, fs = self.student(x, return_features=True)
        (h_s,) = self.hooks_s.collect()
        t, ft = self.teacher_forward(x)
        (h_t,) = self.hooks_t.collect()
        hint = self.weight * hint_loss(self.regressor(h_s.float()), h_t.float())
        return step_output({"ce": self.ce(s, y), "fitnet": hint}, s, relation=logit_relation(s, t, fs, ft))


def _stage(model: nn.Module, stage: int, side: str) -> str:
    paths = stage_paths(model)
    if stage > len(paths):
        raise ValueError(
            f"fitnet.stage = {stage} but the {side} has {len(paths)} stages ({', '.join(paths)})"
        )
    return paths[stage - 1]
