"""DeiT students for small images (Touvron et al., "Training data-efficient image transformers &
distillation through attention", ICML 2021), in the CIFAR variant the cross-architecture KD papers use:
patch size 4, so a 32×32 image is an 8×8 grid of 64 tokens plus the class token.

``deit_tiny`` (width 192, 3 heads) and ``deit_small`` (384, 6 heads), both 12 blocks with MLP ratio 4
and stochastic depth 0.1. Like every zoo model, ``forward_features`` returns the pooled vector (the class
token after the final LayerNorm) and ``maps`` (the patch tokens as [B, D, h, w] grids after the patch
embedding and after blocks 4, 8 and 12); ``forward_head`` is the linear classifier. Other input sizes
(28×28 Fashion-MNIST: a 7×7 grid) interpolate the position embedding. Transformers have no
convolutional stages, so ``stage_paths`` is empty: feature methods name their layers (``blocks.5``...)::

    model = create_model("deit_tiny", num_classes=100)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ._base import ZooModel


class DropPath(nn.Module):
    """Stochastic depth: drops the residual branch per sample with probability ``p`` while training."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand(x.shape[0], *([1] * (x.dim() - 1)), device=x.device, dtype=x.dtype) >= self.p
        return x * keep / (1.0 - self.p)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(LN(x)), then x + MLP(LN(x)) with GELU."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, drop_path: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class DeiT(ZooModel):
    """Vision transformer with a class token; ``maps`` every ``depth // 3`` blocks (see module docstring)."""

    stage_paths = ()

    def __init__(
        self,
        dim: int,
        depth: int,
        heads: int,
        *,
        num_classes: int = 100,
        in_chans: int = 3,
        patch: int = 4,
        image_size: int = 32,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.1,
    ):
        super().__init__()
        self.num_classes, self.num_features, self.in_chans = num_classes, dim, in_chans
        self.patch, self.grid = patch, image_size // patch
        self.patch_embed = nn.Conv2d(in_chans, dim, kernel_size=patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid * self.grid + 1, dim))
        rates = [drop_path * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio, r) for r in rates)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)
        self.map_after = tuple(range(depth // 3 - 1, depth, depth // 3))  # blocks 4, 8, 12 for depth 12
        self._init()

    def _init(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        fan_in = self.patch_embed.in_channels * self.patch * self.patch
        nn.init.trunc_normal_(self.patch_embed.weight, std=math.sqrt(1.0 / fan_in))
        nn.init.zeros_(self.patch_embed.bias)

    def no_weight_decay(self) -> set[str]:
        """Parameters AdamW leaves undecayed besides norms and biases (the DeiT recipe)."""
        return {"pos_embed", "cls_token"}

    def _pos(self, h: int, w: int) -> torch.Tensor:
        if h == self.grid and w == self.grid:
            return self.pos_embed
        cls, grid = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        grid = grid.reshape(1, self.grid, self.grid, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=False)
        return torch.cat([cls, grid.flatten(2).transpose(1, 2)], 1)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        grid = self.patch_embed(x)
        b, d, h, w = grid.shape
        maps = [grid]
        tokens = torch.cat([self.cls_token.expand(b, -1, -1), grid.flatten(2).transpose(1, 2)], 1)
        tokens = tokens + self._pos(h, w)
        for i, block in enumerate(self.blocks):
            tokens = block(tokens)
            if i in self.map_after:
                maps.append(tokens[:, 1:].transpose(1, 2).reshape(b, d, h, w))
        return self.norm(tokens)[:, 0], maps

    def forward_head(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.head(pooled)


def _builder(dim: int, heads: int) -> Callable[[int, int], ZooModel]:
    def build(num_classes: int, in_chans: int) -> ZooModel:
        return DeiT(dim, 12, heads, num_classes=num_classes, in_chans=in_chans)

    return build


MODELS: dict[str, Callable[[int, int], ZooModel]] = {
    "deit_tiny": _builder(192, 3),
    "deit_small": _builder(384, 6),
}
