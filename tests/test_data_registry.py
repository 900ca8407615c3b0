"""build_data / make_loader: names, defaults, validation split and subsets."""

import pytest
import torch

from vrm_train.data import (
    DATASETS,
    DataBundle,
    DatasetError,
    RealView,
    TensorLoader,
    VirtualView,
    build_data,
    make_loader,
)


def test_unknown_name_lists_valid_names():
    with pytest.raises(DatasetError) as e:
        build_data("mnist")
    for name in DATASETS:
        assert name in str(e.value)
    assert set(DATASETS) == {"cifar100", "cifar10", "fashion_mnist", "digits", "imagefolder", "synthetic"}


SYNTH = dict(
    synthetic_size=200,
    synthetic_test_size=50,
    synthetic_classes=4,
    synthetic_channels=2,
    image_size=12,
    val_per_class=5,
    subset_per_class=10,
    split_seed=3,
)


def test_synthetic_bundle_with_validation_and_subset_disjoint():
    b = build_data("synthetic", **SYNTH)
    assert isinstance(b, DataBundle) and b.in_memory and b.name == "synthetic"
    assert (b.num_classes, b.in_chans, b.image_size) == (4, 2, 12)
    assert b.mean == (0.5, 0.5) and b.std == (0.25, 0.25) and b.classes == [f"class_{i}" for i in range(4)]
    assert (b.crop_padding, b.flip) == (1, False)
    assert (
        torch.bincount(b.train.labels).tolist() == [10] * 4
        and torch.bincount(b.val.labels).tolist() == [5] * 4
    )
    assert len(b.test) == 50
    train_rows = {bytes(r.numpy()) for r in b.train.images.flatten(1)}
    val_rows = {bytes(r.numpy()) for r in b.val.images.flatten(1)}
    assert len(train_rows) == 40 and len(val_rows) == 20 and train_rows.isdisjoint(val_rows)
    again = build_data("synthetic", **SYNTH)
    assert torch.equal(again.train.images, b.train.images) and torch.equal(again.val.images, b.val.images)


def test_digits_bundle_defaults_and_size_check():
    b = build_data("digits", val_fraction=0.1)
    assert (b.num_classes, b.in_chans, b.image_size) == (10, 1, 8)
    assert (b.crop_padding, b.flip) == (1, False)  # digits are not mirror-symmetric
    assert len(b.train) + len(b.val) == 1347 and len(b.test) == 450
    assert b.val is not None and len(b.val) == sum(round(0.1 * int(n)) for n in torch.bincount(
        torch.cat([b.train.labels, b.val.labels])))  # fmt: skip
    with pytest.raises(DatasetError, match="8 px"):
        build_data("digits", image_size=32)
    with pytest.raises(DatasetError, match="fewer than n_per_class"):
        build_data("digits", subset_per_class=1000)


def test_fashion_mnist_bundle():
    b = build_data("fashion_mnist", val_per_class=100, subset_per_class=50)
    assert (b.num_classes, b.in_chans, b.image_size) == (10, 1, 28)
    assert (b.crop_padding, b.flip) == (2, True)
    assert b.mean == (0.2860,) and b.std == (0.3530,)
    assert len(b.train) == 500 and len(b.val) == 1000 and len(b.test) == 10000
    with pytest.raises(DatasetError, match="28 px"):
        build_data("fashion_mnist", image_size=32)


def test_make_loader_and_views_from_a_bundle():
    b = build_data("synthetic", synthetic_size=100, image_size=16, val_per_class=2)
    assert len(b.test) == 25 and len(b.train) == 80 and len(b.val) == 20
    train = make_loader(b, "train", batch_size=32, train=True, seed=1)
    test = make_loader(b, "test", batch_size=32, train=False)
    assert isinstance(train, TensorLoader) and isinstance(test, TensorLoader)
    assert len(train) == 2 and len(test) == 1
    assert torch.cat([x.index for x in test]).tolist() == list(range(25))
    val = make_loader(b, "val", batch_size=8, train=False)
    assert sum(len(x.index) for x in val) == 20
    batch = next(iter(train))
    real = RealView(b.crop_padding, b.flip)(batch.images)
    virtual = VirtualView(2, 9)(real)
    assert real.shape == virtual.shape == (32, 3, 16, 16)
    no_val = build_data("synthetic", synthetic_size=40)
    with pytest.raises(DatasetError, match="no 'val' split"):
        make_loader(no_val, "val", batch_size=8, train=False)
    with pytest.raises(DatasetError, match="unknown split"):
        make_loader(no_val, "training", batch_size=8, train=True)
