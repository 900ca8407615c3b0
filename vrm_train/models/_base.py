"""What every model of the zoo shares: the forward contract and the weight initialisation.

Every architecture subclasses :class:`ZooModel` and implements two methods:

* ``forward_features(x) -> (pooled, maps)``: ``pooled`` is the flattened, globally pooled ``[B, D]``
  vector that feeds the classifier; ``maps`` are the stage outputs (the stem first, the last stage
  before pooling last), in the order and shapes of mdistiller's ``feats["feats"]`` for CIFAR models.
* ``forward_head(pooled) -> logits``.

``forward(x)`` returns the logits only, so tools that expect a plain classifier (captum, DDP,
``torch.compile``) see one; ``forward(x, return_features=True)`` returns ``(logits, feats)`` with
``feats = {"pooled": pooled, "maps": maps}``.
"""

from __future__ import annotations

import abc
from typing import TypedDict

import torch
import torch.nn.functional as F
from torch import nn


class Features(TypedDict):
    """The features returned by ``forward(x, return_features=True)`` next to the logits."""

    pooled: torch.Tensor
    maps: list[torch.Tensor]


class ZooModel(nn.Module, abc.ABC):
    """Base class of all zoo models: logits by default, ``(logits, Features)`` on request.

    Attributes:
        stage_paths: module paths of the stage outputs (``maps[1:]``), for hook-based feature methods.
        num_classes: size of the classifier output.
        num_features: ``D``, the width of the pooled vector that feeds the classifier.
        in_chans: number of input channels taken by the first convolution.
    """

    num_classes: int
    num_features: int
    in_chans: int
    #: Module paths whose outputs are the stage outputs ``feats["maps"][1:]`` (every stage after the stem),
    #: for feature methods that take features with forward hooks (:mod:`vrm_train.features`).
    stage_paths: tuple[str, ...] = ()

    @abc.abstractmethod
    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Return ``(pooled [B, D], maps)`` for an input batch ``x``."""

    @abc.abstractmethod
    def forward_head(self, pooled: torch.Tensor) -> torch.Tensor:
        """Map the pooled vector ``[B, D]`` to logits ``[B, num_classes]``."""

    def forward(
        self, x: torch.Tensor, return_features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, Features]:
        pooled, maps = self.forward_features(x)
        logits = self.forward_head(pooled)
        if return_features:
            return logits, Features(pooled=pooled, maps=maps)
        return logits


def global_pool(x: torch.Tensor, whole_window: bool = False) -> torch.Tensor:
    """Average over all spatial positions and flatten: ``[B, C, H, W] -> [B, C]``.

    ``whole_window=True`` uses one average-pool window the size of the map. At the peer code's input
    size this is exactly the fixed pool it used (``AvgPool2d(8)`` on 8x8 maps and the like), so the
    results stay bit-identical to it, while other sizes (28x28 Fashion-MNIST) still pool globally
    instead of failing. ``False`` uses ``adaptive_avg_pool2d(x, 1)``, for the models whose peers do.
    """
    if whole_window:
        return torch.flatten(F.avg_pool2d(x, x.shape[-2:]), 1)
    return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


def init_weights(model: nn.Module, linear_std: float | None = None) -> None:
    """Standard initialisation, deterministic under ``torch.manual_seed``.

    Convolutions: Kaiming normal with ``mode="fan_out"`` for ReLU (``std = sqrt(2 / (k*k*out))``),
    biases zero. Batch norms: weight 1, bias 0. Linear layers: ``N(0, linear_std)`` with zero bias
    when ``linear_std`` is given, otherwise PyTorch's default initialisation is kept.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.GroupNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear_std is not None:
            nn.init.normal_(m.weight, 0.0, linear_std)
            nn.init.zeros_(m.bias)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet channel shuffle: ``[B, g*n, H, W]`` viewed as ``[B, g, n, H, W]``, transposed, flattened."""
    b, c, h, w = x.shape
    return x.reshape(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)
