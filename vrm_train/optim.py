"""The optimizer of a run: SGD (the CNN recipe, every parameter decayed) or AdamW (the transformer
recipe: no weight decay on norms, biases and the parameters a model lists in ``no_weight_decay()``).

    optimizer = build_optimizer(cfg.optim, distiller)

The learning rate itself is set by the engine every step (warm-up + multi-step or cosine, ``lr_at``).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["build_optimizer", "decay_groups"]


def decay_groups(modules: list[nn.Module], weight_decay: float) -> list[dict]:
    """Two parameter groups over the trainable parameters of ``modules``: decayed (weights of linear and
    convolution layers) and undecayed (every parameter with fewer than 2 dimensions: biases and norm
    scales; and the names a module returns from ``no_weight_decay()``, e.g. position embeddings)."""
    decay, no_decay, seen = [], [], set()
    for module in modules:
        skip = set()
        for prefix, sub in module.named_modules():
            names = sub.no_weight_decay() if hasattr(sub, "no_weight_decay") else ()
            skip |= {f"{prefix}.{n}" if prefix else n for n in names}
        for name, p in module.named_parameters():
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            (no_decay if p.ndim < 2 or name in skip else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(ocfg, distiller) -> torch.optim.Optimizer:
    """``ocfg``: an :class:`~vrm_train.config.OptimConfig`; ``distiller``: its student and extra modules
    are optimised (the teacher never is)."""
    if ocfg.name == "sgd":
        return torch.optim.SGD(
            distiller.trainable_parameters(),
            lr=ocfg.lr,
            momentum=ocfg.momentum,
            nesterov=ocfg.nesterov,
            weight_decay=ocfg.weight_decay,
        )
    if ocfg.name == "adamw":
        groups = decay_groups([distiller.student, distiller.extra_modules()], ocfg.weight_decay)
        return torch.optim.AdamW(groups, lr=ocfg.lr, betas=tuple(ocfg.betas), eps=ocfg.eps)
    raise ValueError(f"unknown optimizer {ocfg.name!r}; expected sgd or adamw")
