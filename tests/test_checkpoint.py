import argparse
import os
import pickle

import pytest
import torch

from vrm_train.checkpoint import (
    CheckpointError,
    atomic_save,
    extract_state_dict,
    guess_architecture,
    load_file,
    load_weights,
)
from vrm_train.models import create_model


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_atomic_save_never_leaves_a_broken_file(tmp_path, monkeypatch):
    path = str(tmp_path / "ck.pt")
    atomic_save({"a": torch.ones(3)}, path)
    real_save = torch.save

    def broken_save(obj, f, *a, **k):
        f.write(b"partial garbage")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"a": torch.zeros(3)}, path)
    monkeypatch.setattr(torch, "save", real_save)
    assert torch.equal(load_file(path)["a"], torch.ones(3))  # the old file is intact
    assert sorted(os.listdir(tmp_path)) == ["ck.pt"]  # and no temp file is left behind


def test_arbitrary_unpickling_is_refused_and_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    evil = _Evil()
    evil.marker = str(marker)
    path = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.ones(1)}, "x": evil}, path)
    with pytest.raises(CheckpointError, match=r"arbitrary unpickling.*system"):
        load_file(str(path))
    assert not marker.exists()


def test_namespace_is_on_the_allow_list(tmp_path):
    path = tmp_path / "last.pth"
    torch.save({"model": {"w": torch.ones(2)}, "opt": argparse.Namespace(lr=0.05, model="resnet8")}, path)
    obj = load_file(str(path))
    assert obj["opt"].lr == 0.05


def test_truncated_and_missing_files(tmp_path):
    path = tmp_path / "t.pt"
    torch.save({"model": {"w": torch.randn(100, 100)}}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or not a PyTorch checkpoint"):
        load_file(str(path))
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_file(str(tmp_path / "nope.pt"))
    for i, content in enumerate([b"hello world\n", b"abcdefgh", b""]):
        foreign = tmp_path / f"foreign{i}.pt"
        foreign.write_bytes(content)
        with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
            load_file(str(foreign))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(pickle.dumps([1, 2, 3]) + b"junk")
    with pytest.raises(CheckpointError):
        load_file(str(junk))


def test_extract_state_dict_layouts():
    sd = {"module.conv.weight": torch.ones(1), "module._orig_mod.fc.bias": torch.zeros(2)}
    want = {"conv.weight", "fc.bias"}
    assert set(extract_state_dict(sd)) == want
    assert set(extract_state_dict({"model": sd, "epoch": 240})) == want
    assert set(extract_state_dict({"state_dict": sd})) == want
    with pytest.raises(CheckpointError, match="holds no model state dict"):
        extract_state_dict({"epoch": 3, "accuracy": 1.0})


def test_published_teacher_layout_loads(reference_dir):
    path = os.path.join(reference_dir, "compat", "resnet20_ckpt.pth")
    model = create_model("resnet20", num_classes=100)
    obj = load_weights(model, path, arch="resnet20")
    assert obj["epoch"] == 240
    io = torch.load(os.path.join(reference_dir, "compat", "resnet20_io.pt"), weights_only=True)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(io["input"]), io["logits"], atol=1e-5, rtol=0)


def test_mismatched_architecture_names_the_right_one(reference_dir):
    path = os.path.join(reference_dir, "compat", "resnet20_ckpt.pth")
    with pytest.raises(CheckpointError, match=r"does not fit architecture 'resnet8'(.|\n)*match 'resnet20'"):
        load_weights(create_model("resnet8", num_classes=100), path, arch="resnet8")


def test_class_count_mismatch_is_explained(tmp_path):
    path = str(tmp_path / "m.pt")
    atomic_save({"model": create_model("resnet8", num_classes=10).state_dict()}, path)
    with pytest.raises(CheckpointError, match="class count differs"):
        load_weights(create_model("resnet8", num_classes=100), path, arch="resnet8")
    assert guess_architecture(torch.load(path, weights_only=True)["model"]) == "resnet8"
