"""VGG with batch norm for CIFAR (Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale
Image Recognition", ICLR 2015), in the five-block layout of RepDistiller/mdistiller ``vgg.py``.

Each block is a stack of 3x3 conv (with bias) - BN - ReLU, the block's last ReLU applied in ``forward``
so the pre-activation is reachable. Max-pools follow blocks 0-2; after block 3 a max-pool is applied
only for 64x64 inputs (so at 32x32 blocks 3 and 4 both run at 4x4, the peer convention); block 4 is
followed by a global average pool and a single linear classifier on 512 features::

    model = create_model("vgg13", num_classes=100)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ._base import ZooModel, global_pool, init_weights

# Conv widths per block, for VGG-8/11/13/16/19.
_CONFIGS: dict[str, list[list[int]]] = {
    "vgg8": [[64], [128], [256], [512], [512]],
    "vgg11": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "vgg13": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    "vgg16": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    "vgg19": [[64, 64], [128, 128], [256] * 4, [512] * 4, [512] * 4],
}


def _make_block(widths: list[int], in_channels: int) -> nn.Sequential:
    """conv-BN-ReLU for each width, without the final ReLU (applied by the caller)."""
    layers: list[nn.Module] = []
    for i, width in enumerate(widths):
        layers += [nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width)]
        if i < len(widths) - 1:
            layers.append(nn.ReLU(inplace=True))
        in_channels = width
    return nn.Sequential(*layers)


class VGG(ZooModel):
    """``maps`` = the ReLU outputs of blocks 0-4 (before their pools); ``pooled`` has 512 features."""

    stage_paths = ("acts.1", "acts.2", "acts.3", "acts.4")

    def __init__(self, cfg: list[list[int]], num_classes: int = 100, in_chans: int = 3):
        super().__init__()
        self.num_classes = num_classes
        self.num_features = cfg[4][-1]
        self.in_chans = in_chans

        self.block0 = _make_block(cfg[0], in_chans)
        self.block1 = _make_block(cfg[1], cfg[0][-1])
        self.block2 = _make_block(cfg[2], cfg[1][-1])
        self.block3 = _make_block(cfg[3], cfg[2][-1])
        self.block4 = _make_block(cfg[4], cfg[3][-1])
        self.pool = nn.MaxPool2d(2, 2)
        # The blocks' final ReLUs as modules (no weights), so forward hooks reach the post-ReLU maps.
        self.acts = nn.ModuleList(nn.ReLU() for _ in range(5))
        self.classifier = nn.Linear(self.num_features, num_classes)
        init_weights(self, linear_std=0.01)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        pool_after_block3 = x.shape[-2] == 64
        f0 = self.acts[0](self.block0(x))
        f1 = self.acts[1](self.block1(self.pool(f0)))
        f2 = self.acts[2](self.block2(self.pool(f1)))
        f3 = self.acts[3](self.block3(self.pool(f2)))
        f4 = self.acts[4](self.block4(self.pool(f3) if pool_after_block3 else f3))
        return global_pool(f4), [f0, f1, f2, f3, f4]

    def forward_head(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.classifier(pooled)


def _builder(cfg: list[list[int]]) -> Callable[[int, int], ZooModel]:
    def build(num_classes: int, in_chans: int) -> ZooModel:
        return VGG(cfg, num_classes=num_classes, in_chans=in_chans)

    return build


MODELS: dict[str, Callable[[int, int], ZooModel]] = {name: _builder(cfg) for name, cfg in _CONFIGS.items()}
