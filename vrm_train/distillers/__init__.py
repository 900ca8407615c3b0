"""One thin class per method over :mod:`vrm_train.losses` / :mod:`vrm_train.relations`.

distiller = build_distiller(cfg, student, teacher)
out = distiller(x, x_v, y, epoch)   # {"losses": {...}, "metrics": {...}, "logits": ..., "relation": {...}}
"""

from __future__ import annotations

import dataclasses

from torch import nn

from vrm_train.config import RunConfig

from .base import Distiller, preserved_buffers
from .feature import CC, PKT, RKD, SP
from .logit import DIST, DKD, KD, Vanilla
from .vrm import VRM

REGISTRY: dict[str, type[Distiller]] = {
    "vanilla": Vanilla,
    "kd": KD,
    "dkd": DKD,
    "dist": DIST,
    "rkd": RKD,
    "sp": SP,
    "pkt": PKT,
    "cc": CC,
    "vrm": VRM,
}

__all__ = ["REGISTRY", "Distiller", "build_distiller", "preserved_buffers"]


def build_distiller(cfg: RunConfig, student: nn.Module, teacher: nn.Module | None) -> Distiller:
    """The distiller of ``cfg.method`` with its hyper-parameters from the method's config section."""
    cls = REGISTRY[cfg.method]
    if cfg.method == "vanilla":
        return cls(student, None)
    kwargs = dataclasses.asdict(getattr(cfg, cfg.method))
    return cls(student, teacher, **kwargs)
