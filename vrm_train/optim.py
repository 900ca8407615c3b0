"""The optimizer of a run: SGD (the CNN recipe, every parameter decayed) or AdamW (the transformer
recipe: no weight decay on norms, biases and the parameters a model lists in ``no_weight_decay()``).

    optimizer = build_optimizer(cfg.optim, distiller)

The learning rate is set by the engine every step from :func:`lr_at` (warm-up + multi-step or cosine).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["build_optimizer", "decay_groups", "lr_at"]


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


def lr_at(cfg, epoch_progress: float) -> float:
    """Learning rate of ``cfg`` (a :class:`~vrm_train.config.RunConfig`) at a point of training;
    ``epoch_progress`` counts epochs from 0 (2.5 = mid epoch 3).

    Linear warm-up over ``warmup_epochs``, then multi-step (×gamma after each milestone epoch, as in the
    standard CIFAR recipe: epochs 151+ get the first decay for milestone 150) or cosine decay to 0.
    """
    o = cfg.optim
    if o.warmup_epochs > 0 and epoch_progress < o.warmup_epochs:
        return o.lr * epoch_progress / o.warmup_epochs
    if o.schedule == "cosine":
        span = max(o.epochs - o.warmup_epochs, 1e-8)
        return 0.5 * o.lr * (1 + math.cos(math.pi * min((epoch_progress - o.warmup_epochs) / span, 1.0)))
    epoch = math.floor(epoch_progress) + 1
    return o.lr * o.gamma ** sum(epoch > m for m in o.milestones)
