"""Features by module path: hooks return exactly the zoo's stage maps, and work on any nn.Module."""

import pytest
import torch
from torch import nn

from vrm_train.features import FeatureHooks, resolve_module, stage_paths
from vrm_train.models import create_model, list_models, model_family


@pytest.mark.parametrize("name", list_models())
def test_declared_stage_paths_are_the_stage_maps(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=5).eval()
    size = 64 if model_family(name) == "imagenet" else 32
    x = torch.randn(2, 3, size, size)
    if name.startswith("deit"):  # transformers have no convolutional stages: layers must be named
        assert model.stage_paths == ()
        with pytest.raises(ValueError, match="declares no stage outputs"):
            stage_paths(model)
        hooks = FeatureHooks(model, ["blocks.3"])
        model(x)
        assert hooks.collect()[0].shape == (2, 65, model.num_features)  # tokens: class token + 8x8 patches
        return
    hooks = FeatureHooks(model, stage_paths(model))
    with torch.no_grad():
        _, feats = model(x, return_features=True)
    got = hooks.collect()
    assert len(got) == len(feats["maps"]) - 1
    for g, m in zip(got, feats["maps"][1:], strict=True):
        assert torch.equal(g, m)
    hooks.remove()
    model(x)
    with pytest.raises(RuntimeError, match="did not run"):
        hooks.collect()  # removed hooks see nothing


class UserNet(nn.Module):
    """An architecture the zoo does not know: no return_features, no stage_paths."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, stride=2))
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        return self.head(self.encoder(x).mean((2, 3)))


def test_hooks_work_on_a_user_model_and_keep_the_order_asked():
    net = UserNet()
    x = torch.randn(2, 3, 8, 8)
    hooks = FeatureHooks(net, ["encoder.2", "encoder.0"])
    net(x)
    late, early = hooks.collect()
    assert late.shape == (2, 6, 3, 3) and early.shape == (2, 4, 8, 8)
    torch.testing.assert_close(early, net.encoder[0](x))
    with pytest.raises(RuntimeError, match=r"did not run in the last forward"):
        hooks.collect()  # collected outputs are cleared: a stale feature is never reused


def test_bad_paths_and_undeclared_stages_are_clear_errors():
    net = UserNet()
    with pytest.raises(ValueError, match=r"no module at path 'encoder\.5'; close names: encoder"):
        resolve_module(net, "encoder.5")
    with pytest.raises(ValueError, match=r"top-level modules: encoder, head"):
        resolve_module(net, "backbone")
    with pytest.raises(ValueError, match="declares no stage outputs"):
        stage_paths(net)
    assert stage_paths(net, ["head"]) == ["head"]
