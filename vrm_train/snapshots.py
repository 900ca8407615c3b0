"""Relation snapshots: the inputs of the VRM maths for one batch, saved so the app can rebuild every graph.

A snapshot holds teacher and student logits of the real and virtual views, pooled features, targets,
dataset indices and the two views' images as uint8 — tensors, strings, numbers and lists only, so it
loads with ``torch.load(weights_only=True)``. Keys:

    format "vrm-snapshot-v1", kind "probe" | "train", split, epoch, batch (-1 for the probe batch),
    method, student_arch, teacher_arch (None without teacher), dataset, classes, mean, std,
    seed (virtual-view seed of the probe batch; the epoch seed for training batches),
    s, s_v, t, t_v (float32 [B, C]; t/t_v absent without teacher), feat_s, feat_t (float32 [B, D]),
    targets, index (int64 [B]), image, image_v (uint8 [B, channels, H, W])
"""

from __future__ import annotations

import os

import torch
from torch import nn

from vrm_train.checkpoint import CheckpointError, atomic_save, load_file

FORMAT = "vrm-snapshot-v1"
REQUIRED = ("s", "s_v", "targets", "index", "image", "image_v", "epoch", "kind", "classes")


def probe_indices(labels: torch.Tensor, size: int, seed: int) -> torch.Tensor:
    """``size`` indices spread evenly over the classes (round-robin over seeded per-class orders)."""
    size = min(size, labels.numel())
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(labels.numel(), generator=g)
    per_class = [order[labels[order] == c] for c in labels.unique().tolist()]
    picked: list[int] = []
    rank = 0
    while len(picked) < size:
        for members in per_class:
            if rank < members.numel() and len(picked) < size:
                picked.append(int(members[rank]))
        rank += 1
    return torch.tensor(picked, dtype=torch.long)


@torch.no_grad()
def relation_snapshot(
    student: nn.Module,
    teacher: nn.Module | None,
    images_u8: torch.Tensor,
    *,
    virtual_view: nn.Module,
    normalize: nn.Module,
    virtual_seed: int,
) -> dict[str, torch.Tensor]:
    """Both models (eval mode) on the unaugmented real view and a seeded virtual view of ``images_u8``.

    The virtual view is drawn under a forked RNG seeded with ``virtual_seed``: the same images and seed
    give the same views, and the caller's random stream is left untouched.
    """
    x01 = images_u8.float() / 255.0
    devices = [images_u8.device] if images_u8.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(virtual_seed)
        xv01 = virtual_view(x01)
    x, x_v = normalize(x01), normalize(xv01)
    out = {"image": _to_u8(x01), "image_v": _to_u8(xv01)}
    b = x.shape[0]
    for tag, model in (("s", student), ("t", teacher)):
        if model is None:
            continue
        was = model.training
        model.eval()
        logits, feats = model(torch.cat([x, x_v]), return_features=True)
        model.train(was)
        out[tag], out[f"{tag}_v"] = logits[:b].float(), logits[b:].float()
        out[f"feat_{tag}"] = feats["pooled"][:b].float()
    return out


def _to_u8(x01: torch.Tensor) -> torch.Tensor:
    return (x01.clamp(0, 1) * 255.0).round().to(torch.uint8)


def save_snapshot(path: str, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Write one snapshot (tensors moved to CPU) atomically."""
    payload = {"format": FORMAT, **meta}
    payload.update({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()})
    missing = [k for k in REQUIRED if k not in payload]
    if missing:
        raise ValueError(f"snapshot for {path} lacks {missing}")
    atomic_save(payload, path)


def load_snapshot(path: str) -> dict:
    """Load and check a snapshot file (weights_only); raises CheckpointError for foreign files."""
    obj = load_file(path)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(
            f"{os.path.basename(path)} is not a relation snapshot (expected format {FORMAT!r}); "
            "snapshots are written by the trainer or `vrm-train snapshot`"
        )
    missing = [k for k in REQUIRED if k not in obj]
    if missing:
        raise CheckpointError(f"snapshot {path} is incomplete: missing {', '.join(missing)}")
    return obj
