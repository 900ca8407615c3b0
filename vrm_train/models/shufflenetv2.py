"""ShuffleNet V2 1.0x for CIFAR (Ma et al., "ShuffleNet V2: Practical Guidelines for Efficient CNN
Architecture Design", ECCV 2018), the ``ShuffleV2`` model of RepDistiller/mdistiller.

A 1x1 stride-1 stem with 24 channels (no max-pool), three stages of widths 116, 232, 464, each a
stride-2 down-sampling unit followed by 3, 7 and 3 basic units, then a 1x1 conv to 1024 channels
before global pooling. Basic units split the channels in half, transform one half and shuffle the
concatenation with 2 groups::

    model = create_model("ShuffleV2", num_classes=100)

``maps`` = [stem, stage1, stage2, stage3] (the last before the 1024-channel head conv, as in
mdistiller); ``pooled`` has 1024 features.
"""

from __future__ import annotations

import torch
from torch import nn

from ._base import ZooModel, channel_shuffle, global_pool, init_weights


class BasicUnit(nn.Module):
    """Split in half; the second half goes through 1x1-BN-ReLU, 3x3 depthwise-BN, 1x1-BN-ReLU."""

    def __init__(self, channels: int):
        super().__init__()
        half = channels // 2
        self.half = half
        self.conv1 = nn.Conv2d(half, half, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(half)
        self.conv2 = nn.Conv2d(half, half, 3, padding=1, groups=half, bias=False)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv3 = nn.Conv2d(half, half, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x[:, : self.half], x[:, self.half :]
        out = torch.relu(self.bn1(self.conv1(x2)))
        out = self.bn2(self.conv2(out))
        out = torch.relu(self.bn3(self.conv3(out)))
        return channel_shuffle(torch.cat([x1, out], 1), 2)


class DownUnit(nn.Module):
    """Two stride-2 branches, each producing half the output channels, concatenated and shuffled."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        mid = out_channels // 2
        # left branch: 3x3 depthwise (stride 2) - BN - 1x1 - BN - ReLU
        self.conv1 = nn.Conv2d(in_channels, in_channels, 3, 2, 1, groups=in_channels, bias=False)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv2 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        # right branch: 1x1 - BN - ReLU - 3x3 depthwise (stride 2) - BN - 1x1 - BN - ReLU
        self.conv3 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv4 = nn.Conv2d(mid, mid, 3, 2, 1, groups=mid, bias=False)
        self.bn4 = nn.BatchNorm2d(mid)
        self.conv5 = nn.Conv2d(mid, mid, 1, bias=False)
        self.bn5 = nn.BatchNorm2d(mid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left = self.bn1(self.conv1(x))
        left = torch.relu(self.bn2(self.conv2(left)))
        right = torch.relu(self.bn3(self.conv3(x)))
        right = self.bn4(self.conv4(right))
        right = torch.relu(self.bn5(self.conv5(right)))
        return channel_shuffle(torch.cat([left, right], 1), 2)


class ShuffleNetV2(ZooModel):
    def __init__(
        self,
        widths: tuple[int, int, int, int],
        num_units: tuple[int, int, int],
        num_classes: int = 100,
        in_chans: int = 3,
    ):
        super().__init__()
        self.num_classes = num_classes
        self.num_features = widths[3]
        self.in_chans = in_chans

        self.conv1 = nn.Conv2d(in_chans, 24, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        in_channels = 24
        stages = []
        for width, units in zip(widths[:3], num_units, strict=True):
            stages.append(
                nn.Sequential(DownUnit(in_channels, width), *[BasicUnit(width) for _ in range(units)])
            )
            in_channels = width
        self.layer1, self.layer2, self.layer3 = stages
        self.conv2 = nn.Conv2d(widths[2], widths[3], 1, bias=False)
        self.bn2 = nn.BatchNorm2d(widths[3])
        self.linear = nn.Linear(widths[3], num_classes)
        init_weights(self)

    stage_paths = ("layer1", "layer2", "layer3")

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        f0 = torch.relu(self.bn1(self.conv1(x)))
        f1 = self.layer1(f0)
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        head = torch.relu(self.bn2(self.conv2(f3)))
        return global_pool(head, whole_window=True), [f0, f1, f2, f3]

    def forward_head(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.linear(pooled)


def _shufflev2(num_classes: int, in_chans: int) -> ZooModel:
    return ShuffleNetV2((116, 232, 464, 1024), (3, 7, 3), num_classes=num_classes, in_chans=in_chans)


MODELS = {"ShuffleV2": _shufflev2}
