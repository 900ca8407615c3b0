"""What one training epoch accumulates, kept on the device so that a step never waits for the host.

The engine adds every step's loss terms, metrics, gradient norm and correct predictions; the progress bar
and the NaN check read them every ``log_every`` steps; :meth:`TrainMeter.row` all-reduces them across
processes at the end of the epoch (one collective) into the row of ``metrics.csv``.
"""

from __future__ import annotations

import torch

from vrm_train import runtime as R


def grad_norm(params: list[torch.nn.Parameter], clip: float | None) -> torch.Tensor:
    """The total 2-norm of the gradients *before* clipping (clipping to ``clip`` when it is set).

    fp16 steps whose gradients overflowed are skipped by the loss scaler; their norm counts as 0."""
    params = [p for p in params if p.grad is not None]
    if clip:
        norm = torch.nn.utils.clip_grad_norm_(params, clip)
    else:
        norm = torch.nn.utils.get_total_norm([p.grad for p in params])
    return torch.nan_to_num(norm.detach().float(), nan=0.0, posinf=0.0)


class TrainMeter:
    """Batch-size-weighted sums of the epoch's terms, the number of correct predictions, and the largest
    gradient norm (a blow-up shows as a spike of ``grad_norm_max`` even when the mean hides it). A metric
    whose name ends in ``_min`` is the smallest value of the epoch instead of a mean (e.g. VRM's
    ``view_gap_s_min``, the smallest relative inter-view gap: 0 means an undefined edge)."""

    def __init__(self, device: torch.device):
        self.sums: dict[str, torch.Tensor] = {}
        self.mins: dict[str, torch.Tensor] = {}
        self.correct = torch.zeros((), device=device)
        self.grad_max = torch.zeros((), device=device)
        self.seen = 0

    def add(self, out: dict, loss: torch.Tensor, norm: torch.Tensor, labels: torch.Tensor) -> None:
        b = labels.numel()
        self.seen += b
        terms = [("loss", loss), ("grad_norm", norm), *out["losses"].items(), *out["metrics"].items()]
        for k, v in terms:
            v = v.detach().float()
            if k.endswith("_min"):
                self.mins[k] = torch.minimum(self.mins[k], v) if k in self.mins else v
            else:
                self.sums[k] = self.sums.get(k, 0.0) + v * b
        self.correct += (out["logits"].argmax(1) == labels).sum()
        self.grad_max = torch.maximum(self.grad_max, norm)

    def loss_is_finite(self) -> bool:
        return bool(torch.isfinite(self.sums["loss"]).item())

    def describe(self) -> str:
        """Every running sum, for an error message."""
        return ", ".join(f"{k}={v.item():.4g}" for k, v in self.sums.items())

    def postfix(self) -> dict[str, str]:
        """Running mean loss and accuracy of this process, for the progress bar."""
        return {
            "loss": f"{self.sums['loss'].item() / self.seen:.3f}",
            "acc": f"{100 * self.correct.item() / self.seen:.1f}",
        }

    def row(self, rt: R.Runtime) -> dict[str, float]:
        """Epoch means over all processes: ``train_loss``, each term, ``grad_norm``, ``train_top1``, and
        ``grad_norm_max`` (gradients are all-reduced by DDP, so every rank saw the same norms)."""
        keys = sorted(self.sums)
        seen = torch.tensor(float(self.seen), device=self.correct.device)
        packed = torch.stack([self.sums[k] for k in keys] + [self.correct.float(), seen])
        packed = R.all_reduce_sum(packed.double(), rt)
        total = packed[-1].item()
        row = {f"train_{k}" if k == "loss" else k: packed[i].item() / total for i, k in enumerate(keys)}
        row["train_top1"] = 100.0 * packed[-2].item() / total
        row["grad_norm_max"] = self.grad_max.item()
        if self.mins:
            keys = sorted(self.mins)
            mins = R.all_reduce_min(torch.stack([self.mins[k] for k in keys]).double(), rt)
            row.update({k: mins[i].item() for i, k in enumerate(keys)})
        return row
