"""ImageNet-depth ResNets adapted to 32x32 CIFAR inputs (the ``resnetv2.py`` models of mdistiller).

The ResNet-18/50 block layout of He et al. (CVPR 2016) on a 3x3 stride-1 stem without max-pool, so the
four stages run at 32, 16, 8 and 4 pixels. Shortcut projections are called ``shortcut`` and the
classifier ``linear``, as in the peer checkpoints::

    model = create_model("ResNet50", num_classes=100)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ._base import ZooModel, global_pool, init_weights


def _shortcut(in_planes: int, out_planes: int, stride: int) -> nn.Sequential:
    """Identity (an empty Sequential) or a 1x1 conv-BN projection when the shape changes."""
    if stride == 1 and in_planes == out_planes:
        return nn.Sequential()
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False), nn.BatchNorm2d(out_planes)
    )


class BasicBlockV2(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _shortcut(in_planes, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class BottleneckV2(nn.Module):
    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        out_planes = planes * self.expansion
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut = _shortcut(in_planes, out_planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return torch.relu(out + self.shortcut(x))


class CifarResNetV2(ZooModel):
    """Four-stage ResNet for 32x32 inputs; ``maps`` = [stem, stage1, ..., stage4], all post-ReLU."""

    def __init__(
        self,
        block: type[BasicBlockV2] | type[BottleneckV2],
        num_blocks: list[int],
        num_classes: int = 100,
        in_chans: int = 3,
    ):
        super().__init__()
        self.num_classes = num_classes
        self.num_features = 512 * block.expansion
        self.in_chans = in_chans

        self.conv1 = nn.Conv2d(in_chans, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        in_planes = 64
        stages = []
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), num_blocks, strict=True)):
            layers = []
            for j in range(blocks):
                layers.append(block(in_planes, planes, 2 if (i > 0 and j == 0) else 1))
                in_planes = planes * block.expansion
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.linear = nn.Linear(self.num_features, num_classes)
        init_weights(self)

    stage_paths = ("layer1", "layer2", "layer3", "layer4")

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        f0 = torch.relu(self.bn1(self.conv1(x)))
        f1 = self.layer1(f0)
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        f4 = self.layer4(f3)
        return global_pool(f4), [f0, f1, f2, f3, f4]

    def forward_head(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.linear(pooled)


def _resnet18(num_classes: int, in_chans: int) -> ZooModel:
    return CifarResNetV2(BasicBlockV2, [2, 2, 2, 2], num_classes=num_classes, in_chans=in_chans)


def _resnet50(num_classes: int, in_chans: int) -> ZooModel:
    return CifarResNetV2(BottleneckV2, [3, 4, 6, 3], num_classes=num_classes, in_chans=in_chans)


MODELS: dict[str, Callable[[int, int], ZooModel]] = {"ResNet18": _resnet18, "ResNet50": _resnet50}
