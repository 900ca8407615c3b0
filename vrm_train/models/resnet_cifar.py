"""CIFAR ResNets (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016, section 4.2).

Three stages of basic blocks at 32, 16 and 8 pixels on a 3x3 stem, ``n = (depth - 2) / 6`` blocks per
stage. The ``x4`` variants (resnet8x4, resnet32x4) of the distillation literature use widths
``[32, 64, 128, 256]`` instead of ``[16, 16, 32, 64]``; their first stage therefore widens 32 -> 64
and has a 1x1 projection shortcut even at stride 1.

State-dict keys equal those of the RepDistiller/mdistiller ``resnet.py`` models, so their CIFAR-100
teacher checkpoints load unchanged::

    model = create_model("resnet32x4", num_classes=100)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ._base import ZooModel, global_pool, init_weights


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 conv-BN ``downsample``) shortcut, then ReLU."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + shortcut)


def make_basic_stage(inplanes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    """``blocks`` basic blocks; the first one strides and projects the shortcut when the shape changes."""
    downsample = None
    if stride != 1 or inplanes != planes:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False),
            nn.BatchNorm2d(planes),
        )
    layers = [BasicBlock(inplanes, planes, stride, downsample)]
    layers += [BasicBlock(planes, planes) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class CifarResNet(ZooModel):
    """ResNet-``depth`` for 32x32 inputs with stage widths ``widths = [stem, stage1, stage2, stage3]``.

    ``maps`` = [stem, stage1, stage2, stage3] (all after their final ReLU); ``pooled`` has
    ``widths[3]`` features.
    """

    stage_paths = ("layer1", "layer2", "layer3")

    def __init__(self, depth: int, widths: list[int], num_classes: int = 100, in_chans: int = 3):
        super().__init__()
        if (depth - 2) % 6 != 0:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
        n = (depth - 2) // 6
        self.num_classes = num_classes
        self.num_features = widths[3]
        self.in_chans = in_chans

        self.conv1 = nn.Conv2d(in_chans, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = make_basic_stage(widths[0], widths[1], n, stride=1)
        self.layer2 = make_basic_stage(widths[1], widths[2], n, stride=2)
        self.layer3 = make_basic_stage(widths[2], widths[3], n, stride=2)
        self.fc = nn.Linear(widths[3], num_classes)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        f0 = self.relu(self.bn1(self.conv1(x)))
        f1 = self.layer1(f0)
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        return global_pool(f3, whole_window=True), [f0, f1, f2, f3]

    def forward_head(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.fc(pooled)


_THIN = [16, 16, 32, 64]
_WIDE = [32, 64, 128, 256]


def _builder(depth: int, widths: list[int]) -> Callable[[int, int], ZooModel]:
    def build(num_classes: int, in_chans: int) -> ZooModel:
        return CifarResNet(depth, widths, num_classes=num_classes, in_chans=in_chans)

    return build


MODELS: dict[str, Callable[[int, int], ZooModel]] = {
    **{f"resnet{d}": _builder(d, _THIN) for d in (8, 14, 20, 32, 44, 56, 110)},
    "resnet8x4": _builder(8, _WIDE),
    "resnet32x4": _builder(32, _WIDE),
}
