"""IDX parser and Fashion-MNIST (small files written here, malformed ones, and the real installed files),
scikit-learn digits, the synthetic set and TensorImages."""

import gzip
import struct

import numpy as np
import pytest
import torch

from vrm_train.data import (
    FASHION_MNIST_CLASSES,
    NORMALIZATION,
    DatasetError,
    TensorImages,
    load_digits,
    load_fashion_mnist,
    read_idx,
    synthetic,
)

IDX_CODES = {
    np.uint8: 0x08,
    np.int8: 0x09,
    np.int16: 0x0B,
    np.int32: 0x0C,
    np.float32: 0x0D,
    np.float64: 0x0E,
}


def idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, IDX_CODES[arr.dtype.type], arr.ndim]) + b"".join(
        struct.pack(">I", d) for d in arr.shape
    )
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trip(tmp_path, dtype, compress):
    arr = (
        (np.arange(2 * 3 * 5).reshape(2, 3, 5) * 37 - 100).astype(dtype)
        if dtype != np.uint8
        else (np.arange(30, dtype=np.uint8).reshape(2, 3, 5) * 7)
    )
    raw = idx_bytes(arr)
    path = tmp_path / ("a.idx.gz" if compress else "a.idx")
    path.write_bytes(gzip.compress(raw) if compress else raw)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.shape == (2, 3, 5)
    assert np.array_equal(out, arr)
    if dtype == np.int32:  # big-endian on disk: the first value -100 is ff ff ff 9c
        assert raw[16:20] == b"\xff\xff\xff\x9c"


def test_read_idx_rejects_malformed(tmp_path):
    good = idx_bytes(np.zeros((4, 28, 28), np.uint8))
    cases = {
        "truncated": (good[:-10], "truncated or corrupt"),
        "trailing": (good + b"\x00", "truncated or corrupt"),
        "magic": (b"\x01\x02" + good[2:], "bad IDX magic"),
        "dtype": (b"\x00\x00\x07" + good[3:], "bad IDX magic"),
        "header": (good[:9], "header truncated"),
        "empty": (b"", "bad IDX magic"),
        "badgz": (b"\x1f\x8b\x08\x00garbage", "cannot read IDX"),
    }
    for name, (data, msg) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(DatasetError, match=msg) as e:
            read_idx(path)
        assert str(path) in str(e.value)


def write_fashion(root, n_train=12, n_test=5, gz=True, image_shape=(28, 28), labels_n=None, max_label=9):
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, *image_shape), dtype=np.uint8)
        labels = rng.integers(0, max_label + 1, labels_n or n, dtype=np.uint8)
        for kind, arr in (("images-idx3", images), ("labels-idx1", labels)):
            raw = idx_bytes(arr)
            name = f"{prefix}-{kind}-ubyte"
            (root / (name + ".gz" if gz else name)).write_bytes(gzip.compress(raw) if gz else raw)
        out[prefix] = (images, labels)
    return out


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_small_files(tmp_path, gz):
    expect = write_fashion(tmp_path / "f", gz=gz)
    train, test = load_fashion_mnist(tmp_path / "f")
    for split, (images, labels) in ((train, expect["train"]), (test, expect["t10k"])):
        assert split.images.shape == (len(images), 1, 28, 28) and split.images.dtype == torch.uint8
        assert np.array_equal(split.images[:, 0].numpy(), images)
        assert split.labels.tolist() == labels.tolist()
        assert split.classes == FASHION_MNIST_CLASSES and split.name == "fashion_mnist"


def test_fashion_mnist_errors(tmp_path):
    with pytest.raises(DatasetError, match="dataset-fashion-mnist") as e:
        load_fashion_mnist(tmp_path / "none")
    assert str(tmp_path / "none") in str(e.value)
    write_fashion(tmp_path / "a", image_shape=(27, 28))
    with pytest.raises(DatasetError, match=r"uint8 images \[N, 28, 28\]"):
        load_fashion_mnist(tmp_path / "a")
    write_fashion(tmp_path / "b", labels_n=11)
    with pytest.raises(DatasetError, match="labels for 12 images"):
        load_fashion_mnist(tmp_path / "b")
    write_fashion(tmp_path / "c", max_label=12)
    with pytest.raises(DatasetError, match=r"labels outside \[0, 10\)"):
        load_fashion_mnist(tmp_path / "c")


def test_fashion_mnist_real_files():
    train, test = load_fashion_mnist()
    assert len(train) == 60000 and len(test) == 10000
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert len(train.classes) == 10 and train.classes[0] == "T-shirt/top" and train.classes[9] == "Ankle boot"
    assert torch.bincount(train.labels).tolist() == [6000] * 10
    assert torch.bincount(test.labels).tolist() == [1000] * 10
    x = train.images.float() / 255
    (mean,), (std,) = NORMALIZATION["fashion_mnist"]
    assert abs(x.mean().item() - mean) < 1e-3 and abs(x.std().item() - std) < 1e-3


def test_digits_split_and_constants():
    train, test = load_digits()
    assert len(train) == 1347 and len(test) == 450
    assert train.images.shape[1:] == (1, 8, 8) and train.images.dtype == torch.uint8
    assert train.images.max() == 255 and train.images.min() == 0
    assert train.classes == [str(i) for i in range(10)]
    # Stratified: each class holds round(25 %) of its images in test.
    total = torch.bincount(train.labels, minlength=10) + torch.bincount(test.labels, minlength=10)
    assert total.sum() == 1797
    assert torch.bincount(test.labels).tolist() == [round(0.25 * int(n)) for n in total]
    # Fixed split: same seed, same images; another seed, another split.
    train2, _ = load_digits()
    assert torch.equal(train.images, train2.images)
    train3, _ = load_digits(seed=1)
    assert not torch.equal(train.images, train3.images)
    x = train.images.float() / 255
    (mean,), (std,) = NORMALIZATION["digits"]
    assert abs(x.mean().item() - mean) < 1e-3 and abs(x.std().item() - std) < 1e-3


def test_synthetic_deterministic_balanced_and_learnable():
    a = synthetic(600, 6, 3, 12, seed=1)
    b = synthetic(600, 6, 3, 12, seed=1)
    c = synthetic(300, 6, 3, 12, seed=2)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert a.images.shape == (600, 3, 12, 12) and a.images.dtype == torch.uint8
    assert torch.bincount(a.labels).tolist() == [100] * 6
    assert not torch.equal(a.images[:300], c.images)
    # Train and test sets with different seeds share the class patterns: a linear model trained for one
    # epoch on `a` classifies `c` far above chance (1/6).
    torch.manual_seed(0)
    model = torch.nn.Linear(3 * 12 * 12, 6)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    xa = a.images.flatten(1).float() / 255 - 0.5
    for i in range(0, 600, 20):
        loss = torch.nn.functional.cross_entropy(model(xa[i : i + 20]), a.labels[i : i + 20])
        opt.zero_grad()
        loss.backward()
        opt.step()
    acc = (model(c.images.flatten(1).float() / 255 - 0.5).argmax(1) == c.labels).float().mean().item()
    assert acc > 0.6
    gray = synthetic(20, 3, 1, 8, seed=0)
    assert gray.images.shape == (20, 1, 8, 8) and gray.classes == ["class_0", "class_1", "class_2"]
    with pytest.raises(DatasetError, match="num_classes>=2"):
        synthetic(10, 1, 3, 8)


def test_tensor_images_validates_and_subsets():
    d = TensorImages(torch.arange(5, dtype=torch.uint8).view(5, 1, 1, 1), torch.arange(5), ["a"], "t")
    s = d.subset(torch.tensor([4, 1]))
    assert len(s) == 2 and s.images.flatten().tolist() == [4, 1] and s.labels.tolist() == [4, 1]
    with pytest.raises(DatasetError, match="uint8"):
        TensorImages(torch.zeros(2, 1, 2, 2), torch.zeros(2, dtype=torch.long), [], "t")
    with pytest.raises(DatasetError, match="int64"):
        TensorImages(torch.zeros(2, 1, 2, 2, dtype=torch.uint8), torch.zeros(3, dtype=torch.long), [], "t")
