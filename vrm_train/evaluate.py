"""Evaluation: top-1 / top-5 accuracy and cross-entropy of a model on a dataset split."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vrm_train.runtime import Runtime, all_reduce_sum


@torch.no_grad()
def evaluate(
    model: nn.Module,
    batches,
    rt: Runtime,
    *,
    amp_context=None,
    channels_last: bool = False,
) -> dict[str, float]:
    """Accuracy and loss of ``model`` over ``batches``, an iterable of (normalized images, labels).

    In a distributed run each process passes its own disjoint shard; the sums are all-reduced, so every
    process returns the metrics of the whole split. Returns top1/top5 in percent and the mean loss.
    """
    was_training = model.training
    model.eval()
    sums = torch.zeros(4, dtype=torch.float64, device=rt.device)  # correct1, correct5, loss, count
    for x, y in batches:
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if amp_context is not None:
            with amp_context():
                logits = model(x)
        else:
            logits = model(x)
        logits = logits.float()
        k = min(5, logits.shape[1])
        top = logits.topk(k, dim=1).indices
        hit = top.eq(y[:, None])
        sums[0] += hit[:, 0].sum()
        sums[1] += hit.any(dim=1).sum()
        sums[2] += F.cross_entropy(logits, y, reduction="sum").double()
        sums[3] += y.numel()
    all_reduce_sum(sums, rt)
    model.train(was_training)
    n = max(sums[3].item(), 1.0)
    return {
        "top1": 100.0 * sums[0].item() / n,
        "top5": 100.0 * sums[1].item() / n,
        "loss": sums[2].item() / n,
    }
