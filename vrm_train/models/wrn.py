"""Wide residual networks (Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016).

WRN-``depth``-``k``: a 3x3 stem with 16 channels, then three stages of pre-activation blocks
(BN-ReLU-conv twice) with widths ``16k, 32k, 64k`` and ``n = (depth - 4) / 6`` blocks each, a final
BN-ReLU and a linear classifier. When a block changes width, the BN-ReLU output of the block input
also feeds the 1x1 ``convShortcut``; otherwise the raw input is added back.

State-dict keys equal those of the RepDistiller/mdistiller ``wrn.py`` models::

    model = create_model("wrn_40_2", num_classes=100)

As in mdistiller, ``maps`` are [stem conv output, stage1, stage2, relu(bn1(stage3))]; the first three
are block outputs of a pre-activation network, so they are not passed through a ReLU.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ._base import ZooModel, global_pool, init_weights


class WideBasicBlock(nn.Module):
    def __init__(self, in_planes: int, out_planes: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, padding=1, bias=False)
        self.equal_in_out = in_planes == out_planes
        # Named as in the peer checkpoints; absent (no state) when the width does not change.
        self.convShortcut = (
            None if self.equal_in_out else nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = self.relu1(self.bn1(x))
        out = self.conv2(self.relu2(self.bn2(self.conv1(act))))
        shortcut = x if self.convShortcut is None else self.convShortcut(act)
        return shortcut + out


class NetworkBlock(nn.Module):
    """One stage: ``nb_layers`` wide blocks kept in ``self.layer`` (the key prefix of the checkpoints)."""

    def __init__(self, nb_layers: int, in_planes: int, out_planes: int, stride: int):
        super().__init__()
        self.layer = nn.Sequential(
            *[
                WideBasicBlock(in_planes if i == 0 else out_planes, out_planes, stride if i == 0 else 1)
                for i in range(nb_layers)
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class WideResNet(ZooModel):
    def __init__(self, depth: int, widen_factor: int, num_classes: int = 100, in_chans: int = 3):
        super().__init__()
        if (depth - 4) % 6 != 0:
            raise ValueError(f"WRN depth must be 6n+4, got {depth}")
        n = (depth - 4) // 6
        widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.num_classes = num_classes
        self.num_features = widths[3]
        self.in_chans = in_chans

        self.conv1 = nn.Conv2d(in_chans, widths[0], 3, padding=1, bias=False)
        self.block1 = NetworkBlock(n, widths[0], widths[1], stride=1)
        self.block2 = NetworkBlock(n, widths[1], widths[2], stride=2)
        self.block3 = NetworkBlock(n, widths[2], widths[3], stride=2)
        self.bn1 = nn.BatchNorm2d(widths[3])
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(widths[3], num_classes)
        init_weights(self)
        nn.init.zeros_(self.fc.bias)

    stage_paths = ("block1", "block2", "relu")  # relu(bn1(block3)): the last map

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        f0 = self.conv1(x)
        f1 = self.block1(f0)
        f2 = self.block2(f1)
        f3 = self.relu(self.bn1(self.block3(f2)))
        return global_pool(f3, whole_window=True), [f0, f1, f2, f3]

    def forward_head(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.fc(pooled)


def _builder(depth: int, widen_factor: int) -> Callable[[int, int], ZooModel]:
    def build(num_classes: int, in_chans: int) -> ZooModel:
        return WideResNet(depth, widen_factor, num_classes=num_classes, in_chans=in_chans)

    return build


MODELS: dict[str, Callable[[int, int], ZooModel]] = {
    f"wrn_{d}_{k}": _builder(d, k) for d, k in ((16, 1), (16, 2), (40, 1), (40, 2))
}
