"""How the student's BatchNorm sees VRM's two views (config key ``vrm.student_bn``).

One concatenated forward (``joint``, the default) normalises real and virtual images with the statistics of
the mixed 2B batch. The two alternatives run the student twice:

- ``separate``: each view is normalised with its own batch statistics; the running statistics are updated
  by both forwards (real first, then virtual).
- ``real``: the real view runs as usual (its batch statistics, running statistics updated); the virtual view
  is normalised with the real batch's statistics and leaves the running statistics alone. BN then only ever
  "sees" real images. The statistics stay in the graph: the virtual view's gradient flows through them as
  the real view's does, so both views get BN's gradient, which removes the components along each channel's
  scale and shift. (Detached statistics, the first version of this mode, gave the virtual view a gradient
  7× the real view's for identical images and collapsed every training run: Fashion-MNIST, digits.)

    logits_2b, feats = two_view_forward(student, x, x_v, "real")
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

MODES = ("joint", "separate", "real")


def _bn_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@contextlib.contextmanager
def _record_batch_stats(layers, stats: dict):
    """Record each BN layer's batch mean and (biased) variance of its input during a training forward, as
    part of the autograd graph (what BN's own normalisation differentiates through)."""

    def hook(module, args):
        (x,) = args
        dims = [0, *range(2, x.dim())]
        xf = x.float()
        stats[module] = (xf.mean(dims), xf.var(dims, unbiased=False))

    handles = [m.register_forward_pre_hook(hook) for m in layers]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def _normalise_with(layers, stats: dict):
    """Make each BN layer normalise with the recorded statistics and leave its running statistics alone."""

    def hook(module, args, out):
        (x,) = args
        mean, var = stats[module]
        shape = (1, -1, *([1] * (x.dim() - 2)))  # per channel
        y = (x - mean.to(x.dtype).view(shape)) * torch.rsqrt(var.to(x.dtype).view(shape) + module.eps)
        if module.affine:
            y = y * module.weight.view(shape) + module.bias.view(shape)
        return y

    modes = [m.training for m in layers]
    for m in layers:
        m.eval()  # the layer's own pass (replaced by the hook's output) must not touch the running statistics
    handles = [m.register_forward_hook(hook) for m in layers]
    try:
        yield
    finally:
        for h in handles:
            h.remove()
        for m, mode in zip(layers, modes, strict=True):
            m.train(mode)


def two_view_forward(student: nn.Module, x: torch.Tensor, x_v: torch.Tensor, mode: str):
    """Student logits of ``cat([x, x_v])`` and features (``pooled`` concatenated likewise) from two forwards."""
    if mode not in ("separate", "real"):
        raise ValueError(f"two_view_forward: mode must be 'separate' or 'real', got {mode!r}")
    layers = _bn_layers(student)
    stats: dict = {}
    use_real = mode == "real" and student.training
    with _record_batch_stats(layers, stats) if use_real else contextlib.nullcontext():
        s, fs = student(x, return_features=True)
    with _normalise_with(layers, stats) if use_real else contextlib.nullcontext():
        s_v, fs_v = student(x_v, return_features=True)
    return torch.cat([s, s_v]), {"pooled": torch.cat([fs["pooled"], fs_v["pooled"]])}
