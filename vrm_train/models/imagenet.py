"""ImageNet (224-pixel) ResNet-18/34/50 and MobileNetV2.

* ResNet (He et al., CVPR 2016): 7x7 stride-2 stem, 3x3 stride-2 max-pool, four stages; ResNet-50
  uses bottlenecks with the stride on the 3x3 conv ("v1.5").
* MobileNetV2 (Sandler et al., CVPR 2018): width 1.0, ReLU6, the first stage without expansion conv,
  a 1280-channel head and dropout 0.2 before the classifier.

Module names follow the widespread torchvision layouts (``conv1``/``bn1``/``layer1.0.conv1``/
``layer1.0.downsample.0``/``fc`` for ResNets; ``features.N.conv...``/``classifier.1`` for MobileNetV2),
so published weights in those layouts load with ``strict=True``::

    model = create_model("resnet50", num_classes=1000)
    model.load_state_dict(state_dict)  # a torchvision-layout state dict

``maps``: ResNets give [stem (after max-pool), layer1, ..., layer4]; MobileNetV2 gives [stem,
end of stage 1 (24 ch), stage 2 (32 ch), stage 4 (96 ch), stage 6 (320 ch)], the same stage choice as
mdistiller's CIFAR MobileNetV2.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ._base import ZooModel, global_pool, init_weights
from .resnet_cifar import BasicBlock


class Bottleneck(nn.Module):
    """1x1 reduce - 3x3 (strided) - 1x1 expand (x4), with an identity or ``downsample`` shortcut."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + shortcut)


class ImageNetResNet(ZooModel):
    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: list[int],
        num_classes: int = 1000,
        in_chans: int = 3,
    ):
        super().__init__()
        self.num_classes = num_classes
        self.num_features = 512 * block.expansion
        self.in_chans = in_chans

        self.conv1 = nn.Conv2d(in_chans, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = 64
        stages = []
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
            stride = 1 if i == 0 else 2
            out_planes = planes * block.expansion
            downsample = None
            if stride != 1 or inplanes != out_planes:
                downsample = nn.Sequential(
                    nn.Conv2d(inplanes, out_planes, 1, stride=stride, bias=False), nn.BatchNorm2d(out_planes)
                )
            stage = [block(inplanes, planes, stride, downsample)]
            stage += [block(out_planes, planes) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*stage))
            inplanes = out_planes
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nn.Linear(self.num_features, num_classes)
        init_weights(self)

    stage_paths = ("layer1", "layer2", "layer3", "layer4")

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        f0 = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        f1 = self.layer1(f0)
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        f4 = self.layer4(f3)
        return global_pool(f4), [f0, f1, f2, f3, f4]

    def forward_head(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.fc(pooled)


def _conv_bn_relu6(inp: int, oup: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, oup, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(oup),
        nn.ReLU6(inplace=True),
    )


def _make_divisible(value: float, divisor: int = 8) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, never going down by more than 10%."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class InvertedResidualV2(nn.Module):
    """[1x1 expand-BN-ReLU6] - 3x3 depthwise-BN-ReLU6 - 1x1 linear projection-BN, residual if shapes match."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = inp * expand_ratio
        self.use_residual = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(_conv_bn_relu6(inp, hidden, kernel=1))
        layers += [
            _conv_bn_relu6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, oup, 1, bias=False),
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


# (expansion, output channels, blocks, first stride) for the seven stages.
_MBV2_STAGES = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]
_MBV2_MAP_STAGES = (1, 2, 4, 6)


class ImageNetMobileNetV2(ZooModel):
    def __init__(
        self, num_classes: int = 1000, in_chans: int = 3, width_mult: float = 1.0, dropout: float = 0.2
    ):
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans

        channels = _make_divisible(32 * width_mult)
        self.num_features = _make_divisible(1280 * max(1.0, width_mult))
        features: list[nn.Module] = [_conv_bn_relu6(in_chans, channels, stride=2)]
        # Index in `features` of the last block of each stage whose output is returned as a map.
        self._map_indices: tuple[int, ...] = (0,)
        for k, (t, c, n, s) in enumerate(_MBV2_STAGES):
            out_channels = _make_divisible(c * width_mult)
            for i in range(n):
                features.append(InvertedResidualV2(channels, out_channels, s if i == 0 else 1, t))
                channels = out_channels
            if k in _MBV2_MAP_STAGES:
                self._map_indices += (len(features) - 1,)
        features.append(_conv_bn_relu6(channels, self.num_features, kernel=1))
        self.features = nn.Sequential(*features)
        self.stage_paths = tuple(f"features.{i}" for i in self._map_indices[1:])
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.num_features, num_classes))
        init_weights(self, linear_std=0.01)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        maps = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self._map_indices:
                maps.append(x)
        return global_pool(x), maps

    def forward_head(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.classifier(pooled)


def _resnet(block: type[BasicBlock] | type[Bottleneck], layers: list[int]) -> Callable[[int, int], ZooModel]:
    def build(num_classes: int, in_chans: int) -> ZooModel:
        return ImageNetResNet(block, layers, num_classes=num_classes, in_chans=in_chans)

    return build


def _mobilenetv2(num_classes: int, in_chans: int) -> ZooModel:
    return ImageNetMobileNetV2(num_classes=num_classes, in_chans=in_chans)


MODELS: dict[str, Callable[[int, int], ZooModel]] = {
    "resnet18": _resnet(BasicBlock, [2, 2, 2, 2]),
    "resnet34": _resnet(BasicBlock, [3, 4, 6, 3]),
    "resnet50": _resnet(Bottleneck, [3, 4, 6, 3]),
    "mobilenetv2": _mobilenetv2,
}
