"""Stratified subsets and splits; TensorLoader order, sharding and batches (checked against
torch's DistributedSampler)."""

import pytest
import torch
from torch.utils.data import DistributedSampler

from vrm_train.data import (
    Batch,
    DatasetError,
    TensorImages,
    TensorLoader,
    epoch_indices,
    per_class_subset,
    train_val_split,
)


def labels_with_counts(counts, seed=0):
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))]


def test_per_class_subset_is_stratified_seeded_and_checked():
    labels = labels_with_counts([30, 12, 50, 7])
    idx = per_class_subset(labels, 5, seed=3)
    assert idx.dtype == torch.long and torch.equal(idx, idx.sort().values)
    assert len(set(idx.tolist())) == 20
    assert torch.bincount(labels[idx]).tolist() == [5, 5, 5, 5]
    assert torch.equal(idx, per_class_subset(labels, 5, seed=3))
    assert not torch.equal(idx, per_class_subset(labels, 5, seed=4))
    with pytest.raises(DatasetError, match="class 3 has 7 images"):
        per_class_subset(labels, 8, seed=0)


@pytest.mark.parametrize("kwargs", [{"val_per_class": 3}, {"val_fraction": 0.2}])
def test_train_val_split_is_disjoint_stratified_deterministic(kwargs):
    counts = [30, 12, 50, 7]
    labels = labels_with_counts(counts)
    tr, va = train_val_split(labels, seed=1, **kwargs)
    assert set(tr.tolist()).isdisjoint(va.tolist())
    assert sorted(tr.tolist() + va.tolist()) == list(range(len(labels)))
    per_class = torch.bincount(labels[va], minlength=4).tolist()
    if "val_per_class" in kwargs:
        assert per_class == [3, 3, 3, 3]
    else:
        assert per_class == [max(1, round(0.2 * n)) for n in counts]
    tr2, va2 = train_val_split(labels, seed=1, **kwargs)
    assert torch.equal(tr, tr2) and torch.equal(va, va2)
    _, va3 = train_val_split(labels, seed=2, **kwargs)
    assert not torch.equal(va, va3)


def test_train_val_split_errors():
    labels = labels_with_counts([5, 3])
    with pytest.raises(DatasetError, match="exactly one"):
        train_val_split(labels, seed=0)
    with pytest.raises(DatasetError, match="exactly one"):
        train_val_split(labels, val_per_class=1, val_fraction=0.1, seed=0)
    with pytest.raises(DatasetError, match="class 1 has 3 images"):
        train_val_split(labels, val_per_class=3, seed=0)
    with pytest.raises(DatasetError, match="val_fraction"):
        train_val_split(labels, val_fraction=1.5, seed=0)


@pytest.mark.parametrize("n", [10, 11, 13])
@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("drop_last", [True, False])
def test_epoch_indices_match_distributed_sampler(n, world_size, shuffle, drop_last):
    for rank in range(world_size):
        sampler = DistributedSampler(
            range(n), num_replicas=world_size, rank=rank, shuffle=shuffle, seed=5, drop_last=drop_last
        )
        sampler.set_epoch(2)
        ours = epoch_indices(
            n, 2, shuffle=shuffle, seed=5, rank=rank, world_size=world_size, drop_last=drop_last
        )
        assert ours.tolist() == list(sampler)


def make_data(n=23):
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 2, 3, 3).contiguous()
    return TensorImages(images, torch.arange(n) % 4, ["a", "b", "c", "d"], "toy")


def collect(loader):
    return [b for b in loader]


def test_tensor_loader_batches_match_the_dataset():
    data = make_data(23)
    loader = TensorLoader(data, 5, shuffle=True, drop_last=False, seed=0)
    loader.set_epoch(0)
    batches = collect(loader)
    assert len(loader) == len(batches) == 5 and [len(b.index) for b in batches] == [5, 5, 5, 5, 3]
    for b in batches:
        assert isinstance(b, Batch) and b.images.dtype == torch.uint8 and b.labels.dtype == torch.int64
        assert torch.equal(b.images, data.images[b.index]) and torch.equal(b.labels, data.labels[b.index])
    seen = torch.cat([b.index for b in batches])
    assert sorted(seen.tolist()) == list(range(23)) and seen.tolist() != list(range(23))
    dropped = TensorLoader(data, 5, shuffle=True, drop_last=True)
    assert len(dropped) == len(collect(dropped)) == 4
    ordered = TensorLoader(data, 5, shuffle=False)
    assert torch.cat([b.index for b in ordered]).tolist() == list(range(23))


def test_tensor_loader_epochs_are_reproducible_and_differ():
    data = make_data(40)

    def order(epoch, seed=0):
        loader = TensorLoader(data, 8, shuffle=True, seed=seed)
        loader.set_epoch(epoch)
        return torch.cat([b.index for b in loader]).tolist()

    assert order(0) == order(0) and order(3) == order(3)
    assert order(0) != order(1)
    assert order(0, seed=1) != order(0, seed=0)
    loader = TensorLoader(data, 8, shuffle=True, seed=0)
    loader.set_epoch(1)
    first = torch.cat([b.index for b in loader]).tolist()
    again = torch.cat([b.index for b in loader]).tolist()
    assert first == again == order(1)


@pytest.mark.parametrize(("n", "drop_last"), [(40, False), (41, False), (41, True)])
def test_tensor_loader_two_ranks_shard_disjointly(n, drop_last):
    data = make_data(n)
    ranks = [
        TensorLoader(data, 6, shuffle=True, drop_last=drop_last, seed=9, rank=r, world_size=2)
        for r in range(2)
    ]
    for epoch in (0, 1):
        parts = []
        for loader in ranks:
            loader.set_epoch(epoch)
            parts.append(torch.cat([b.index for b in loader]).tolist())
        if drop_last:
            # 41 -> 40 kept, 20 per rank, batches of 6 -> 3 full batches (18 samples) each.
            assert len(parts[0]) == len(parts[1]) == 18 and set(parts[0]).isdisjoint(parts[1])
        elif n % 2 == 0:
            assert len(parts[0]) == len(parts[1]) == n // 2
            assert set(parts[0]).isdisjoint(parts[1]) and sorted(parts[0] + parts[1]) == list(range(n))
        else:
            # Padded by wrap-around: 21 each, every sample seen, exactly one seen twice.
            assert len(parts[0]) == len(parts[1]) == 21
            assert set(parts[0] + parts[1]) == set(range(n)) and len(set(parts[0]) & set(parts[1])) == 1
        # Both ranks slice the same permutation of this epoch.
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(9 + epoch)).tolist()
        assert parts[0][:3] == perm[0:6:2]
    with pytest.raises(ValueError, match="rank"):
        TensorLoader(data, 4, rank=2, world_size=2)
