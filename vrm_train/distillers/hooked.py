"""Shared plumbing of the feature methods: forward hooks on student and teacher, and dry runs that
size data-dependent modules (regressors, fusion blocks) before the optimizer exists."""

from __future__ import annotations

import torch
from torch import nn

from vrm_train.features import FeatureHooks, stage_paths

from .base import DataInfo, preserved_buffers


def paired_hooks(
    student: nn.Module, teacher: nn.Module, student_layers: list[str], teacher_layers: list[str]
) -> tuple[FeatureHooks, FeatureHooks]:
    """Hooks on the student's and teacher's layers (empty lists: their declared stage outputs); the two
    lists must pair up one to one."""
    s_paths = stage_paths(student, student_layers)
    t_paths = stage_paths(teacher, teacher_layers)
    if len(s_paths) != len(t_paths):
        raise ValueError(
            f"the student's layers {s_paths} and the teacher's {t_paths} do not pair up one to one; "
            "name as many student_layers as teacher_layers in the method's config section"
        )
    return FeatureHooks(student, s_paths), FeatureHooks(teacher, t_paths)


@torch.no_grad()
def dry_run(model: nn.Module, hooks: FeatureHooks, data: DataInfo) -> tuple[list[torch.Size], int]:
    """Shapes of the hooked outputs and the pooled-feature width for a batch of two blank images
    (BN statistics and the train/eval mode are left as they were)."""
    was_training = model.training
    param = next(model.parameters())
    x = torch.zeros(
        2, data.in_chans, data.image_size, data.image_size, device=param.device, dtype=param.dtype
    )
    try:
        model.eval()
        with preserved_buffers(model):
            _, feats = model(x, return_features=True)
        shapes = [f.shape for f in hooks.collect()]
    finally:
        model.train(was_training)
    return shapes, int(feats["pooled"].shape[1])


def require_maps(method: str, side: str, shapes: list[torch.Size]) -> None:
    bad = [tuple(s) for s in shapes if len(s) != 4]
    if bad:
        raise ValueError(
            f"{method} matches [B, C, H, W] feature maps; the {side}'s chosen layers give {bad} "
            "(a transformer's tokens are not maps: choose convolutional layers or another method)"
        )
