"""Model zoo: the CIFAR architectures of the distillation benchmarks (with DeiT-Tiny/-Small students for
32×32 inputs, patch 4) and four ImageNet ones.

::

    from vrm_train.models import create_model, list_models, model_family

    model = create_model("resnet32x4", num_classes=100)        # a CIFAR teacher
    logits = model(x)                                           # [B, 100]
    logits, feats = model(x, return_features=True)
    feats["pooled"]   # [B, D] the pooled vector feeding the classifier (D == model.num_features)
    feats["maps"]     # [stem, stage1, ...] feature maps, mdistiller's feats["feats"] for CIFAR models

CIFAR models (family ``"cifar"``) have the state-dict keys, shapes and dtypes of the
RepDistiller/mdistiller models of the same name, so their teacher checkpoints load with
``strict=True``. ImageNet models (family ``"imagenet"``) use the torchvision key layouts.
``in_chans`` changes only the input channels of the first convolution; all models pool globally, so
they also run on other input sizes (e.g. 28x28 Fashion-MNIST for the CIFAR family).
"""

from __future__ import annotations

from collections.abc import Callable

from . import deit, imagenet, mobilenetv2, resnet_cifar, resnetv2_cifar, shufflenetv1, shufflenetv2, vgg, wrn
from ._base import Features, ZooModel

__all__ = ["Features", "ZooModel", "create_model", "list_models", "model_family"]

_Builder = Callable[[int, int], ZooModel]


def _merge(*tables: dict[str, _Builder]) -> dict[str, _Builder]:
    merged: dict[str, _Builder] = {}
    for table in tables:
        clash = merged.keys() & table.keys()
        if clash:
            raise RuntimeError(f"model names registered twice: {sorted(clash)}")
        merged.update(table)
    return merged


_FAMILIES: dict[str, dict[str, _Builder]] = {
    "cifar": _merge(
        resnet_cifar.MODELS,
        wrn.MODELS,
        vgg.MODELS,
        mobilenetv2.MODELS,
        shufflenetv1.MODELS,
        shufflenetv2.MODELS,
        resnetv2_cifar.MODELS,
        deit.MODELS,
    ),
    "imagenet": imagenet.MODELS,
}
_REGISTRY: dict[str, tuple[str, _Builder]] = {
    name: (family, builder) for family, table in _FAMILIES.items() for name, builder in table.items()
}
if len(_REGISTRY) != sum(len(table) for table in _FAMILIES.values()):
    raise RuntimeError("a model name is registered in two families")


def list_models(family: str | None = None) -> list[str]:
    """Names accepted by :func:`create_model`, optionally of one family (``"cifar"`` or ``"imagenet"``)."""
    if family is None:
        return list(_REGISTRY)
    if family not in _FAMILIES:
        raise ValueError(f"unknown model family {family!r}; available: {sorted(_FAMILIES)}")
    return list(_FAMILIES[family])


def _lookup(name: str) -> tuple[str, _Builder]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown model {name!r} (names are case-sensitive); available: {', '.join(_REGISTRY)}"
        ) from None


def model_family(name: str) -> str:
    """``"cifar"`` (32x32 designs) or ``"imagenet"`` (224x224 designs) for a registered model name."""
    return _lookup(name)[0]


def create_model(name: str, num_classes: int, in_chans: int = 3) -> ZooModel:
    """Build a freshly initialised model (deterministic under ``torch.manual_seed``).

    Args:
        name: one of :func:`list_models`; unknown names raise ``ValueError`` listing the available ones.
        num_classes: classifier width.
        in_chans: input channels of the first convolution (1 for grey-scale images).
    """
    _, builder = _lookup(name)
    for arg, value in (("num_classes", num_classes), ("in_chans", in_chans)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{arg} must be a positive int, got {value!r}")
    return builder(num_classes, in_chans)
