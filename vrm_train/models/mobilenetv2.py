"""MobileNetV2 for CIFAR, the half-width variant of the distillation benchmarks (Sandler et al.,
"MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018).

This is RepDistiller/mdistiller's ``mobile_half``: width multiplier 0.5 (so 16 stem channels and stage
widths 8, 12, 16, 32, 48, 80, 160), expansion ``T = 6``, a stride-2 stem and strides (1, 1, 2, 2, 1, 2, 1)
for the seven stages, ReLU (not ReLU6) activations, and a 1280-channel 1x1 conv head. Unlike the
ImageNet design the first stage keeps its 1x1 expansion conv (expansion 1), and every block's conv
stack is one flat Sequential ``conv.0 ... conv.7``::

    model = create_model("MobileNetV2", num_classes=100)

``maps`` follow mdistiller: [stem, stage 1, stage 2, stage 4, stage 6] outputs, i.e. 16x16x16,
12x16x16, 16x8x8, 48x4x4 and 160x2x2 at 32x32 input.
"""

from __future__ import annotations

import torch
from torch import nn

from ._base import ZooModel, global_pool, init_weights

# (output channels, blocks, first stride) per stage, before the width multiplier. The first stage has
# expansion 1, the others the model's expansion T.
_STAGES = [(16, 1, 1), (24, 2, 1), (32, 3, 2), (64, 4, 2), (96, 3, 1), (160, 3, 2), (320, 1, 1)]
_MAP_STAGES = (1, 2, 4, 6)


def _conv_bn_relu(inp: int, oup: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, oup, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(oup),
        nn.ReLU(inplace=True),
    )


class InvertedResidual(nn.Module):
    """1x1 expand - 3x3 depthwise - 1x1 linear projection, with a residual when shapes match."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = inp * expand_ratio
        self.use_residual = stride == 1 and inp == oup
        self.conv = nn.Sequential(
            nn.Conv2d(inp, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, oup, 1, bias=False),
            nn.BatchNorm2d(oup),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


class CifarMobileNetV2(ZooModel):
    def __init__(self, expansion: int, width_mult: float, num_classes: int = 100, in_chans: int = 3):
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans

        channels = int(32 * width_mult)
        self.conv1 = _conv_bn_relu(in_chans, channels, 3, 2)
        self.blocks = nn.ModuleList()
        for k, (c, n, s) in enumerate(_STAGES):
            out_channels = int(c * width_mult)
            t = 1 if k == 0 else expansion
            stage = []
            for i in range(n):
                stage.append(InvertedResidual(channels, out_channels, s if i == 0 else 1, t))
                channels = out_channels
            self.blocks.append(nn.Sequential(*stage))
        self.num_features = int(1280 * width_mult) if width_mult > 1.0 else 1280
        self.conv2 = _conv_bn_relu(channels, self.num_features, 1, 1)
        self.classifier = nn.Sequential(nn.Linear(self.num_features, num_classes))
        init_weights(self, linear_std=0.01)

    stage_paths = tuple(f"blocks.{i}" for i in _MAP_STAGES)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        out = self.conv1(x)
        maps = [out]
        for i, stage in enumerate(self.blocks):
            out = stage(out)
            if i in _MAP_STAGES:
                maps.append(out)
        return global_pool(self.conv2(out), whole_window=True), maps

    def forward_head(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.classifier(pooled)


def _mobile_half(num_classes: int, in_chans: int) -> ZooModel:
    return CifarMobileNetV2(expansion=6, width_mult=0.5, num_classes=num_classes, in_chans=in_chans)


MODELS = {"MobileNetV2": _mobile_half}
