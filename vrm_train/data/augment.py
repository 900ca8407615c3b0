"""Batched augmentation on the training device: the real view (random crop with zero padding + flip),
the virtual view (RandAugment drawn per image), normalisation and conversion back to uint8.

Randomness: every random choice (crop offsets, flips, RandAugment ops and signs) is drawn on the CPU,
from the global CPU generator (seeded by ``torch.manual_seed``) or from a CPU ``torch.Generator`` passed
to the module. The draws are a few integers per image; drawing them on the host keeps the op-group sizes
known without a device synchronisation and makes a seed give the same views on CPU and GPU. In DDP, seed
each rank differently so ranks see different views.

Usage::

    real, virtual, norm = RealView(padding=4), VirtualView(num_ops=2, magnitude=9), Normalize(mean, std)
    x = real(batch.images)            # uint8 -> float [0, 1]
    x_virtual = virtual(x)            # float [0, 1], RandAugment per image
    logits = model(norm(x)), model(norm(x_virtual))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from kornia.enhance import equalize, sharpness
from torch import nn

__all__ = [
    "GEOMETRIC_OPS",
    "RANDAUGMENT_OPS",
    "Normalize",
    "OpPlan",
    "RealView",
    "ViewPlan",
    "VirtualView",
    "to_uint8",
]


def to_uint8(x01: torch.Tensor) -> torch.Tensor:
    """Float images in [0, 1] -> uint8 0..255 (clamped, rounded), e.g. to save the views a model saw."""
    return (x01.detach().clamp(0, 1) * 255).round().to(torch.uint8)


def _draw(shape: tuple[int, ...], high: int, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randint(high, shape, generator=generator)


def _to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Host -> device without stalling the host: pinned + non_blocking on CUDA (a pageable copy would wait
    for every kernel queued before it)."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


class ViewPlan(NamedTuple):
    """The random draws of one :class:`RealView` call: the crop window starts at ``(oy, ox)`` in the padded
    image (0..2p), so a pixel at (r, c) lands at (r + p - oy, c + p - ox), then ``flip`` mirrors it."""

    oy: torch.Tensor
    ox: torch.Tensor
    flip: torch.Tensor


class RealView(nn.Module):
    """uint8 ``[B, C, H, W]`` -> float [0, 1]: random crop with ``padding`` zero pixels on each side and a
    random horizontal flip, both drawn per image; one gather on the device, no loop over the batch.
    ``padding=0`` disables the crop and ``flip=False`` the flip. Float input in [0, 1] is accepted too."""

    def __init__(self, padding: int = 4, flip: bool = True, generator: torch.Generator | None = None):
        super().__init__()
        if padding < 0:
            raise ValueError(f"padding must be >= 0, got {padding}")
        self.padding, self.flip, self.generator = int(padding), bool(flip), generator

    def sample(self, batch_size: int) -> ViewPlan:
        """Draw every image's crop offsets and flip (on the CPU, from ``generator`` or the global RNG)."""
        p = self.padding
        oy = _draw((batch_size,), 2 * p + 1, self.generator) if p else torch.full((batch_size,), 0)
        ox = _draw((batch_size,), 2 * p + 1, self.generator) if p else torch.full((batch_size,), 0)
        flip = (
            _draw((batch_size,), 2, self.generator).bool()
            if self.flip
            else torch.zeros(batch_size, dtype=bool)
        )
        return ViewPlan(oy, ox, flip)

    def apply(self, x: torch.Tensor, plan: ViewPlan) -> torch.Tensor:
        """Crop and flip ``x`` (uint8 or float [B, C, H, W]) as ``plan`` says; returns float [0, 1]."""
        b, _, h, w = x.shape
        p, dev = self.padding, x.device
        src = nn.functional.pad(x, (p, p, p, p)) if p else x
        oy, ox, flip = _to_device(torch.stack([plan.oy, plan.ox, plan.flip.long()]), dev)  # one copy
        cols_fwd = ox[:, None] + torch.arange(w, device=dev)
        cols = torch.where(flip.bool()[:, None], cols_fwd.flip(1), cols_fwd)  # [B, W]
        rows = oy[:, None] + torch.arange(h, device=dev)  # [B, H]
        bi = torch.arange(b, device=dev)[:, None, None]
        out = src[bi, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)  # [B, H, W, C] -> BCHW
        out = out.contiguous()
        return out.float() / 255.0 if out.dtype == torch.uint8 else out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.apply(x, self.sample(x.shape[0]))

    def extra_repr(self) -> str:
        return f"padding={self.padding}, flip={self.flip}"


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel; ``mean``/``std`` are buffers, so they follow ``.to(device)``."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


# ------------------------------------------------------------------------------------------ RandAugment
#: The 14 ops of RandAugment (Cubuk et al., 2020, Fig. 2 / appendix), in this order.
RANDAUGMENT_OPS: tuple[str, ...] = (
    "identity", "auto_contrast", "equalize", "rotate", "solarize", "color", "posterize",
    "contrast", "brightness", "sharpness", "shear_x", "shear_y", "translate_x", "translate_y",
)  # fmt: skip
#: Geometric ops: each image's rotation/shear/translation is one affine map, so every image of a slot that
#: drew any of them is warped by a single batched grid_sample.
GEOMETRIC_OPS = frozenset({"rotate", "shear_x", "shear_y", "translate_x", "translate_y"})
#: Ops that only act on colour: dropped for 1-channel images, where they would be the identity.
COLOR_ONLY_OPS = frozenset({"color"})
#: Translation at full magnitude, as a fraction of the image side (torchvision: 150/331 px at 331 px).
TRANSLATE_FRACTION = 150.0 / 331.0
_AFFINE = "affine"


def _gray(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 1:
        return x
    return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def _blend(base: torch.Tensor, x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """PIL ImageEnhance: ``base + factor * (x - base)``; factor 1 = unchanged."""
    return base + factor.view(-1, 1, 1, 1) * (x - base)


def _affine_thetas(
    names: tuple[str, ...], ids: torch.Tensor, signs: torch.Tensor, level: float, h: int, w: int
) -> torch.Tensor:
    """``affine_grid`` matrices [B, 2, 3] (output -> input, normalised coordinates, align_corners=False)
    for images that drew a geometric op; the identity for the others. In pixels about the image centre
    c, an image is mapped by ``dst = A (src - c) + c + t`` with A a rotation by 30 * level degrees or a
    shear by 0.3 * level, and t a translation by TRANSLATE_FRACTION * level of the side; signs per image."""
    signed = level * signs.double()

    def amount(op: str, full: float) -> torch.Tensor:  # signed magnitude where ``op`` was drawn, else 0
        if op not in names:
            return torch.zeros_like(signed)
        return full * signed * (ids == names.index(op))

    ang = torch.deg2rad(amount("rotate", 30.0))
    a = torch.stack([torch.stack([ang.cos(), -ang.sin()], 1), torch.stack([ang.sin(), ang.cos()], 1)], 1)
    a[:, 0, 1] += amount("shear_x", 0.3)
    a[:, 1, 0] += amount("shear_y", 0.3)
    t = torch.stack(
        [amount("translate_x", TRANSLATE_FRACTION * w), amount("translate_y", TRANSLATE_FRACTION * h)], 1
    )
    # Normalised offsets u vs pixel offsets d: d = S u, S = diag(w/2, h/2); src_u = S^-1 A^-1 (S dst_u - t).
    scale = torch.tensor([w / 2.0, h / 2.0], dtype=torch.float64)
    a_inv = torch.linalg.inv(a)
    lin = a_inv * scale[None, None, :] / scale[None, :, None]
    shift = -(a_inv @ t[:, :, None])[:, :, 0] / scale
    return torch.cat([lin, shift[:, :, None]], dim=2).float()


def _op(name: str, x: torch.Tensor, sign: torch.Tensor, level: float, theta: torch.Tensor) -> torch.Tensor:
    """Apply op ``name`` at ``level`` in [0, 1] to every image of ``x`` (float [0, 1]) and return images in
    [0, 1]; ``sign`` (+-1 per image) orients the enhance factors, ``theta`` holds the images' affine
    matrices for ``"affine"`` (bilinear, zero fill)."""
    if name == "identity":
        return x
    if name == _AFFINE:
        grid = nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
        out = nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return out.clamp_(0, 1)
    if name == "auto_contrast":
        lo, hi = x.amin((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)
        return torch.where(hi > lo, (x - lo) / (hi - lo).clamp_min(1e-8), x)
    if name == "equalize":
        return equalize(x)
    if name == "posterize":
        step = 2.0 ** round(4 * level)  # keep 8 - round(4 * level) bits
        return torch.floor(torch.round(x * 255) / step) * step / 255
    if name == "solarize":
        return torch.where(x > 1.0 - level, 1.0 - x, x)
    factor = 1.0 + 0.9 * level * sign
    if name == "color":
        return _blend(_gray(x), x, factor).clamp_(0, 1)
    if name == "contrast":
        return _blend(_gray(x).mean((1, 2, 3), keepdim=True), x, factor).clamp_(0, 1)
    if name == "brightness":
        return (x * factor.view(-1, 1, 1, 1)).clamp_(0, 1)
    if name == "sharpness":
        return sharpness(x, factor)
    raise ValueError(f"unknown RandAugment op {name!r}; known: {RANDAUGMENT_OPS}")


class OpPlan(NamedTuple):
    """Random draws of one :class:`VirtualView` call: ``op_ids`` [num_ops, B] index ``names``; ``signs``
    [num_ops, B] in {-1, +1} orient rotation/shear/translation and the enhance factors."""

    names: tuple[str, ...]
    op_ids: torch.Tensor
    signs: torch.Tensor


class VirtualView(nn.Module):
    """RandAugment drawn independently for every image and every call: float [0, 1] in and out.

    For each of the ``num_ops`` slots, every image draws one op uniformly (with replacement across slots,
    as in the paper's reference code) from :data:`RANDAUGMENT_OPS` and a random sign. The batch is then
    sorted by op and each op runs once on the images that drew it (all geometric ops together, as one
    warp with per-image matrices), so a call costs at most ``num_ops * len(ops)`` batched op calls, no
    per-image loop, and no host-device synchronisation (the draws live on the host, see module doc).

    Magnitude ``magnitude`` in [0, 30] (level = magnitude / 30, the same for every op, as in RandAugment):
    rotate +-30 deg * level; shear +-0.3 * level; translate +-(150/331) * level of the side; brightness,
    color, contrast, sharpness factor 1 +- 0.9 * level (PIL ImageEnhance blends); posterize to
    8 - round(4 * level) bits; solarize pixels above 1 - level. Geometric ops fill with 0 (black).

    1-channel images: ``color`` (saturation) would be the identity, so it is dropped from the candidates;
    every other op is defined on one channel (contrast/brightness/etc. use the image itself as the grey).
    Small images work: sharpness needs >= 3 px, equalize and auto_contrast work per image and channel.
    ``ops`` restricts the candidate list; ``num_ops=0`` or ``enabled=False`` returns the input unchanged.
    """

    def __init__(
        self,
        num_ops: int = 2,
        magnitude: float = 9.0,
        *,
        ops: Sequence[str] | None = None,
        enabled: bool = True,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if num_ops < 0:
            raise ValueError(f"num_ops must be >= 0, got {num_ops}")
        if not 0.0 <= magnitude <= 30.0:
            raise ValueError(f"magnitude must be in [0, 30], got {magnitude}")
        ops = tuple(ops) if ops is not None else RANDAUGMENT_OPS
        unknown = sorted(set(ops) - set(RANDAUGMENT_OPS))
        if unknown or not ops:
            raise ValueError(f"unknown or empty ops {unknown or ops}; choose from {RANDAUGMENT_OPS}")
        self.num_ops, self.magnitude, self.ops = int(num_ops), float(magnitude), ops
        self.enabled, self.generator = bool(enabled), generator

    def op_names(self, channels: int) -> tuple[str, ...]:
        """The candidate ops for images with ``channels`` channels."""
        return tuple(o for o in self.ops if channels >= 3 or o not in COLOR_ONLY_OPS) or ("identity",)

    def sample(self, batch_size: int, channels: int) -> OpPlan:
        """Draw the ops and signs of every image (on the CPU, from ``generator`` or the global RNG)."""
        names = self.op_names(channels)
        op_ids = _draw((self.num_ops, batch_size), len(names), self.generator)
        signs = _draw((self.num_ops, batch_size), 2, self.generator).float() * 2 - 1
        return OpPlan(names, op_ids, signs)

    def apply(self, x: torch.Tensor, plan: OpPlan) -> torch.Tensor:
        """Apply ``plan`` to ``x`` (float [0, 1], any device); replaying a saved plan reproduces a view."""
        if plan.op_ids.shape[0] == 0:
            return x
        level = self.magnitude / 30.0
        h, w = x.shape[-2], x.shape[-1]
        # Groups: each non-geometric op alone, all geometric ops together (last).
        groups = [n for n in plan.names if n not in GEOMETRIC_OPS] + [_AFFINE]
        group_of = torch.tensor([groups.index(_AFFINE if n in GEOMETRIC_OPS else n) for n in plan.names])
        orders, counts, floats = [], [], []
        for k in range(plan.op_ids.shape[0]):
            key = group_of[plan.op_ids[k]]
            order = torch.argsort(key, stable=True)
            orders += [order, torch.argsort(order)]
            counts.append(torch.bincount(key, minlength=len(groups)).tolist())
            theta = _affine_thetas(plan.names, plan.op_ids[k], plan.signs[k], level, h, w)
            floats.append(torch.cat([plan.signs[k][:, None], theta.flatten(1)], 1)[order])
        # Two host -> device copies per call, whatever the number of slots.
        idx_dev = _to_device(torch.stack(orders), x.device)
        float_dev = _to_device(torch.stack(floats), x.device).to(x.dtype)
        x = x.clamp(0, 1)
        for k, cnt in enumerate(counts):
            xs = x.index_select(0, idx_dev[2 * k]).split(cnt)
            fs = float_dev[k].split(cnt)
            parts = [
                _op(g, xi, fi[:, 0], level, fi[:, 1:].view(-1, 2, 3)) if xi.shape[0] else xi
                for g, xi, fi in zip(groups, xs, fs, strict=True)
            ]
            x = torch.cat(parts).index_select(0, idx_dev[2 * k + 1])
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled or self.num_ops == 0:
            return x
        return self.apply(x, self.sample(x.shape[0], x.shape[1]))

    def extra_repr(self) -> str:
        return f"num_ops={self.num_ops}, magnitude={self.magnitude}, enabled={self.enabled}"
