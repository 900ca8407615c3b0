"""Image-folder datasets (Pillow decoding, random-resized crop, resize + centre crop) and FolderLoader,
on a tiny tree of PNGs written here."""

import numpy as np
import pytest
import torch
from PIL import Image

from vrm_train.data import (
    DatasetError,
    FolderLoader,
    ImageFolderDataset,
    build_data,
    epoch_indices,
    make_loader,
    random_resized_crop_box,
)

COLOURS = {"cat": (200, 30, 30), "dog": (30, 200, 30), "fish": (30, 30, 200)}


def write_tree(root, per_class=4, classes=("cat", "dog", "fish")):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            w, h = int(rng.integers(20, 50)), int(rng.integers(20, 50))
            arr = np.empty((h, w, 3), np.uint8)
            arr[:] = COLOURS[c]
            Image.fromarray(arr).save(root / c / f"{i}.png")
        (root / c / "notes.txt").write_text("not an image")
    return root


@pytest.fixture
def tree(tmp_path):
    write_tree(tmp_path / "train")
    write_tree(tmp_path / "val", per_class=2, classes=("cat", "fish"))
    return tmp_path


def test_folder_dataset_lists_classes_and_decodes(tree):
    ds = ImageFolderDataset(tree / "train", image_size=16, train=True)
    assert ds.classes == ["cat", "dog", "fish"] and len(ds) == 12
    assert ds.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    for i in (0, 5, 11):
        img, label, index = ds[i]
        assert img.dtype == torch.uint8 and img.shape == (3, 16, 16)
        assert label == ds.labels[i] and index == i
        colour = torch.tensor(COLOURS[ds.classes[label]], dtype=torch.uint8)
        assert torch.equal(img[:, 8, 8], colour)
    val = ImageFolderDataset(tree / "val", image_size=16, train=False, classes=ds.classes)
    assert val.labels.tolist() == [0, 0, 2, 2] and val.classes == ds.classes


def test_eval_transform_is_resize_then_centre_crop(tmp_path):
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)  # h=64, w=80
    (tmp_path / "a").mkdir()
    Image.fromarray(arr).save(tmp_path / "a" / "x.png")
    gray = rng.integers(0, 256, (64, 64), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "a" / "y.png")
    ds = ImageFolderDataset(tmp_path, image_size=56, train=False)
    # Shorter side 64 = round(56 * 256 / 224): no resize, then the centred 56 x 56 crop.
    img, _, _ = ds[0]
    assert torch.equal(img, torch.from_numpy(arr[4:60, 12:68]).permute(2, 0, 1))
    img, _, _ = ds[1]
    assert img.shape == (3, 56, 56) and torch.equal(img[0], torch.from_numpy(gray[4:60, 4:60]))
    assert torch.equal(img[0], img[2])
    small = ImageFolderDataset(tmp_path, image_size=28, train=False)
    assert small[0][0].shape == (3, 28, 28)


def test_random_resized_crop_box_follows_the_standard_algorithm():
    g = torch.Generator().manual_seed(0)
    areas, ratios = [], []
    for _ in range(400):
        left, top, w, h = random_resized_crop_box(100, 80, generator=g)
        assert left >= 0 and left + w <= 100 and top >= 0 and top + h <= 80
        areas.append(w * h / 8000)
        ratios.append(w / h)
    assert min(areas) >= 0.07 and max(areas) <= 1.0
    assert min(areas) < 0.15 and max(areas) > 0.8
    assert min(ratios) > 0.7 and max(ratios) < 1.4
    assert min(ratios) < 0.8 and max(ratios) > 1.25
    # Impossible requests fall back to the largest centred crop with the ratio clamped.
    assert random_resized_crop_box(1000, 10, scale=(0.9, 1.0), generator=g) == ((1000 - 13) // 2, 0, 13, 10)
    assert random_resized_crop_box(10, 1000, scale=(0.9, 1.0), generator=g) == (0, (1000 - 13) // 2, 10, 13)


def test_train_transform_flips_half_the_time(tmp_path):
    arr = np.zeros((40, 40, 3), np.uint8)
    arr[:, 20:] = 255
    (tmp_path / "a").mkdir()
    Image.fromarray(arr).save(tmp_path / "a" / "x.png")
    ds = ImageFolderDataset(tmp_path, image_size=12, train=True)
    torch.manual_seed(0)
    outs = [ds[0][0].float() for _ in range(80)]
    left_brighter = sum(bool(o[:, :, 0].mean() > o[:, :, -1].mean()) for o in outs)
    right_brighter = sum(bool(o[:, :, 0].mean() < o[:, :, -1].mean()) for o in outs)
    assert left_brighter > 15 and right_brighter > 15
    assert len({o.sum().item() for o in outs}) > 10  # crops vary


def test_folder_errors(tmp_path, tree):
    with pytest.raises(DatasetError, match="is not a folder"):
        ImageFolderDataset(tmp_path / "missing")
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no images"):
        ImageFolderDataset(tmp_path / "empty")
    with pytest.raises(DatasetError, match="unknown to the training set"):
        ImageFolderDataset(tree / "train", classes=["cat"])
    (tmp_path / "bad" / "c").mkdir(parents=True)
    (tmp_path / "bad" / "c" / "broken.png").write_bytes(b"not a png")
    ds = ImageFolderDataset(tmp_path / "bad")
    with pytest.raises(DatasetError, match=r"broken\.png"):
        ds[0]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_folder_loader_yields_batches_in_sampler_order(tree, num_workers):
    ds = ImageFolderDataset(tree / "train", image_size=8, train=False)
    loader = FolderLoader(ds, 5, shuffle=True, drop_last=False, device="cpu", seed=3, num_workers=num_workers)
    assert len(loader) == 3
    orders = []
    for epoch in (0, 1, 0):
        loader.set_epoch(epoch)
        batches = list(loader)
        assert [b.images.shape for b in batches] == [(5, 3, 8, 8), (5, 3, 8, 8), (2, 3, 8, 8)]
        index = torch.cat([b.index for b in batches])
        for b in batches:
            assert b.images.dtype == torch.uint8 and torch.equal(b.labels, ds.labels[b.index])
        assert index.tolist() == epoch_indices(12, epoch, shuffle=True, seed=3).tolist()
        orders.append(index.tolist())
    assert orders[0] == orders[2] and orders[0] != orders[1]
    ranks = [FolderLoader(ds, 4, shuffle=True, seed=0, rank=r, world_size=2, num_workers=0) for r in range(2)]
    parts = [torch.cat([b.index for b in r]).tolist() for r in ranks]
    assert set(parts[0]).isdisjoint(parts[1]) and sorted(parts[0] + parts[1]) == list(range(12))


def test_build_data_imagefolder(tree):
    bundle = build_data("imagefolder", root=tree, image_size=16, val_per_class=1, split_seed=0)
    assert not bundle.in_memory and bundle.num_classes == 3 and bundle.in_chans == 3
    assert (
        bundle.image_size == 16
        and bundle.mean == (0.485, 0.456, 0.406)
        and bundle.std == (0.229, 0.224, 0.225)
    )
    assert (bundle.crop_padding, bundle.flip) == (0, False)  # crop and flip already done by the workers
    assert len(bundle.train) == 9 and len(bundle.val) == 3 and len(bundle.test) == 4
    assert bundle.train.train and not bundle.val.train and not bundle.test.train
    assert {s[0] for s in bundle.train.samples}.isdisjoint(s[0] for s in bundle.val.samples)
    loader = make_loader(bundle, "train", batch_size=4, train=True, num_workers=0)
    assert isinstance(loader, FolderLoader) and len(loader) == 2
    sub = build_data("imagefolder", root=tree, image_size=16, subset_per_class=2)
    assert sorted(sub.train.labels.tolist()) == [0, 0, 1, 1, 2, 2] and sub.val is None
    with pytest.raises(DatasetError, match="imagefolder needs root"):
        build_data("imagefolder")
