"""ImageNet model zoo: torchvision-layout keys, well-known parameter counts, feature maps at 224 and 64 px."""

import functools

import pytest
import torch

from vrm_train.models import ZooModel, create_model

PARAM_COUNTS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "mobilenetv2": 3_504_872,
}

RESNET_LAYERS = {
    "resnet18": ([2, 2, 2, 2], False),
    "resnet34": ([3, 4, 6, 3], False),
    "resnet50": ([3, 4, 6, 3], True),
}

# (maps as (C, H, W), pooled dim) at 224 px; at 64 px each H, W is the 224-px value * 64 / 224 rounded up.
MAPS_224 = {
    "resnet18": ([(64, 56, 56), (64, 56, 56), (128, 28, 28), (256, 14, 14), (512, 7, 7)], 512),
    "resnet34": ([(64, 56, 56), (64, 56, 56), (128, 28, 28), (256, 14, 14), (512, 7, 7)], 512),
    "resnet50": ([(64, 56, 56), (256, 56, 56), (512, 28, 28), (1024, 14, 14), (2048, 7, 7)], 2048),
    "mobilenetv2": ([(32, 112, 112), (24, 56, 56), (32, 28, 28), (96, 14, 14), (320, 7, 7)], 1280),
}


@functools.cache
def imagenet_model(name: str) -> ZooModel:
    torch.manual_seed(0)
    return create_model(name, num_classes=1000).eval()


def _bn(prefix: str) -> list[str]:
    return [f"{prefix}.{s}" for s in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]


def torchvision_resnet_keys(layers: list[int], bottleneck: bool) -> list[str]:
    keys = ["conv1.weight", *_bn("bn1")]
    for stage, blocks in enumerate(layers, start=1):
        for b in range(blocks):
            p = f"layer{stage}.{b}"
            for c in range(1, 4 if bottleneck else 3):
                keys += [f"{p}.conv{c}.weight", *_bn(f"{p}.bn{c}")]
            if b == 0 and (bottleneck or stage > 1):
                keys += [f"{p}.downsample.0.weight", *_bn(f"{p}.downsample.1")]
    return [*keys, "fc.weight", "fc.bias"]


def torchvision_mobilenetv2_keys() -> list[str]:
    keys = ["features.0.0.weight", *_bn("features.0.1")]
    keys += ["features.1.conv.0.0.weight", *_bn("features.1.conv.0.1")]
    keys += ["features.1.conv.1.weight", *_bn("features.1.conv.2")]
    for i in range(2, 18):
        p = f"features.{i}.conv"
        keys += [f"{p}.0.0.weight", *_bn(f"{p}.0.1"), f"{p}.1.0.weight", *_bn(f"{p}.1.1")]
        keys += [f"{p}.2.weight", *_bn(f"{p}.3")]
    keys += ["features.18.0.weight", *_bn("features.18.1")]
    return [*keys, "classifier.1.weight", "classifier.1.bias"]


@pytest.mark.parametrize("name", list(PARAM_COUNTS))
def test_torchvision_layout_and_param_counts(name):
    model = imagenet_model(name)
    assert sum(p.numel() for p in model.parameters()) == PARAM_COUNTS[name]
    expected = (
        torchvision_mobilenetv2_keys()
        if name == "mobilenetv2"
        else torchvision_resnet_keys(*RESNET_LAYERS[name])
    )
    state = model.state_dict()
    assert list(state) == expected
    if name == "mobilenetv2":
        assert state["features.0.0.weight"].shape == (32, 3, 3, 3)
        assert state["features.2.conv.1.0.weight"].shape == (96, 1, 3, 3)
        assert state["features.17.conv.2.weight"].shape == (320, 960, 1, 1)
        assert state["features.18.0.weight"].shape == (1280, 320, 1, 1)
        assert state["classifier.1.weight"].shape == (1000, 1280)
    else:
        assert state["conv1.weight"].shape == (64, 3, 7, 7)
        assert state["layer2.0.downsample.0.weight"].shape[2:] == (1, 1)
        assert state["fc.weight"].shape == (1000, model.num_features)
    # A state dict in this layout loads strictly into a fresh model and gives identical outputs, also
    # without the BN num_batches_tracked buffers (the published torchvision files predate them).
    legacy = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    assert len(legacy) < len(state)
    clone = create_model(name, num_classes=1000).eval()
    clone.load_state_dict(legacy, strict=True)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(clone(x), model(x), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("name", "size"), [("resnet18", 224), ("mobilenetv2", 224), ("resnet34", 64), ("resnet50", 64)]
)
def test_forward_features(name, size):
    model = imagenet_model(name)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        plain = model(x)
        logits, feats = model(x, return_features=True)
    maps_224, dim = MAPS_224[name]
    expected = [(1, c, -(-h * size // 224), -(-w * size // 224)) for c, h, w in maps_224]
    assert torch.equal(plain, logits) and logits.shape == (1, 1000)
    assert [tuple(f.shape) for f in feats["maps"]] == expected
    assert feats["pooled"].shape == (1, dim) and model.num_features == dim
    with torch.no_grad():
        torch.testing.assert_close(model.forward_head(feats["pooled"]), logits, rtol=0, atol=0)
    if name != "mobilenetv2":  # MobileNetV2 pools its 1280-channel head conv, not the last map
        torch.testing.assert_close(feats["pooled"], feats["maps"][-1].mean((2, 3)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(PARAM_COUNTS))
def test_greyscale_stem_and_channels_last(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, in_chans=1).eval()
    stem = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert stem.in_channels == 1 and stem.out_channels == (32 if name == "mobilenetv2" else 64)
    x = torch.randn(2, 1, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits = model(x)
        logits_cl = model(x.contiguous(memory_format=torch.channels_last))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits_bf16 = model(x)
    assert logits.shape == (2, 10)
    assert (logits_cl - logits).abs().max() <= 1e-5 * logits.abs().max() + 1e-6
    assert torch.isfinite(logits_bf16).all() and logits_bf16.dtype == torch.bfloat16
