"""ShuffleNet V1 for CIFAR (Zhang et al., "ShuffleNet: An Extremely Efficient Convolutional Neural Network
for Mobile Devices", CVPR 2018), the ``ShuffleV1`` model of RepDistiller/mdistiller.

Conventions of that variant, all needed for its checkpoints:

* groups g = 3, stage widths 240, 480, 960 with 4, 8, 4 units, and a 1x1 (not 3x3) stride-1 stem
  with 24 channels and no max-pool, so the stages run at 16, 8 and 4 pixels;
* every stage starts with a stride-2 unit whose residual branch is a 3x3 average pool concatenated
  to the convolution branch, so that branch outputs ``width - in_channels`` channels;
* the first unit of the first stage uses an ungrouped 1x1 conv (its input has only 24 channels) and
  therefore no channel shuffle; the bottleneck width is a quarter of the unit's output width.

::

    model = create_model("ShuffleV1", num_classes=100)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._base import ZooModel, channel_shuffle, global_pool, init_weights


class ShuffleUnit(nn.Module):
    def __init__(self, in_planes: int, out_planes: int, stride: int, groups: int):
        super().__init__()
        mid_planes = out_planes // 4
        self.first_groups = 1 if in_planes == 24 else groups
        self.stride = stride
        self.conv1 = nn.Conv2d(in_planes, mid_planes, 1, groups=self.first_groups, bias=False)
        self.bn1 = nn.BatchNorm2d(mid_planes)
        self.conv2 = nn.Conv2d(mid_planes, mid_planes, 3, stride, 1, groups=mid_planes, bias=False)
        self.bn2 = nn.BatchNorm2d(mid_planes)
        self.conv3 = nn.Conv2d(mid_planes, out_planes, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        if self.first_groups > 1:
            out = channel_shuffle(out, self.first_groups)
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.stride == 2:
            shortcut = F.avg_pool2d(x, 3, stride=2, padding=1)
            return torch.relu(torch.cat([out, shortcut], 1))
        return torch.relu(out + x)


class ShuffleNetV1(ZooModel):
    """``maps`` = [stem, stage1, stage2, stage3], all post-ReLU; ``pooled`` has ``widths[-1]`` features."""

    def __init__(
        self,
        widths: tuple[int, int, int],
        num_units: tuple[int, int, int],
        groups: int,
        num_classes: int = 100,
        in_chans: int = 3,
    ):
        super().__init__()
        self.num_classes = num_classes
        self.num_features = widths[-1]
        self.in_chans = in_chans

        self.conv1 = nn.Conv2d(in_chans, 24, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        in_planes = 24
        stages = []
        for width, units in zip(widths, num_units, strict=True):
            layers = [ShuffleUnit(in_planes, width - in_planes, 2, groups)]
            layers += [ShuffleUnit(width, width, 1, groups) for _ in range(units - 1)]
            stages.append(nn.Sequential(*layers))
            in_planes = width
        self.layer1, self.layer2, self.layer3 = stages
        self.linear = nn.Linear(widths[-1], num_classes)
        init_weights(self)

    stage_paths = ("layer1", "layer2", "layer3")

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        f0 = torch.relu(self.bn1(self.conv1(x)))
        f1 = self.layer1(f0)
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        return global_pool(f3, whole_window=True), [f0, f1, f2, f3]

    def forward_head(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.linear(pooled)


def _shufflev1(num_classes: int, in_chans: int) -> ZooModel:
    return ShuffleNetV1((240, 480, 960), (4, 8, 4), groups=3, num_classes=num_classes, in_chans=in_chans)


MODELS = {"ShuffleV1": _shufflev1}
