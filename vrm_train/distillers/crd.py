"""CRD: Tian et al. ICLR 2020, "Contrastive Representation Distillation" (memory bank + NCE).

As RepDistiller's ``crd/``: both pooled features are embedded (linear, L2-normalised) into ``feat_dim``;
each sample is scored against its positive and ``nce_k`` negatives of the *other* network's memory bank
(exp(⟨v, m⟩ / T) / Z, Z fixed on the first step); the NCE loss of both sides is summed; then the bank rows
of the batch move towards the new embeddings (momentum ``nce_m``) and are re-normalised.

The contrast indices: column 0 is the sample itself (mode ``exact``) or another sample of its class
(``relax``), the ``nce_k`` negatives are drawn uniformly, with replacement, from the other classes: the
layout of RepDistiller's ``CIFAR100InstanceSample``, drawn here on the device from the batch's sample
indices (the engine passes them: ``needs_index``). Tested on one process; under DDP the banks are
buffers, which DDP broadcasts from rank 0 at each forward, so updates made from other ranks' batches
are lost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from vrm_train.feature_losses import crd_nce_loss

from .base import DataInfo, Distiller, logit_relation, step_output
from .registry import register_method


@dataclass
class CRDConfig:
    # RepDistiller `--distill crd -a 0 -b 0.8` (CE 1) and mdistiller CFG.CRD: feat_dim 128, nce_k 16384,
    # nce_t 0.07, nce_m 0.5, mode exact, on the pooled features.
    ce_weight: float = 1.0
    weight: float = 0.8
    feat_dim: int = 128
    nce_k: int = 16384
    nce_t: float = 0.07
    nce_m: float = 0.5
    mode: Literal["exact", "relax"] = "exact"

    def check(self) -> list[str]:
        bad = []
        for key in ("feat_dim", "nce_k"):
            if getattr(self, key) < 1:
                bad.append(f"config key 'crd.{key}' must be >= 1, got {getattr(self, key)}")
        if not self.nce_t > 0:
            bad.append(f"config key 'crd.nce_t' must be > 0, got {self.nce_t}")
        if not 0 <= self.nce_m < 1:
            bad.append(f"config key 'crd.nce_m' must be in [0, 1), got {self.nce_m}")
        return bad


class Embed(nn.Module):
    """Linear projection then L2 normalisation (no eps), as CRD's ``Embed``."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.linear = nn.Linear(dim_in, dim_out)

    def forward(self, x):
        x = self.linear(x.reshape(x.shape[0], -1))
        return x / x.pow(2).sum(1, keepdim=True).pow(0.5)


class ContrastMemory(nn.Module):
    """The two memory banks (student ``memory_v1``, teacher ``memory_v2``) and CRD's ``params`` buffer
    [K, T, Z_v1, Z_v2, momentum]; Z < 0 means "not set yet"."""

    def __init__(self, feat_dim: int, n_data: int, k: int, t: float, momentum: float):
        super().__init__()
        self.n_data = n_data
        self.register_buffer("params", torch.tensor([k, t, -1.0, -1.0, momentum]))
        stdv = 1.0 / math.sqrt(feat_dim / 3)
        self.register_buffer("memory_v1", torch.rand(n_data, feat_dim).mul_(2 * stdv).add_(-stdv))
        self.register_buffer("memory_v2", torch.rand(n_data, feat_dim).mul_(2 * stdv).add_(-stdv))

    def forward(self, v1, v2, idx, contrast_idx):
        b, k1 = contrast_idx.shape
        t, momentum = self.params[1].clone(), self.params[4].clone()  # copies: params changes in place
        w1 = self.memory_v1.index_select(0, contrast_idx.reshape(-1)).detach().reshape(b, k1, -1)
        w2 = self.memory_v2.index_select(0, contrast_idx.reshape(-1)).detach().reshape(b, k1, -1)
        out_v2 = torch.exp(torch.bmm(w1, v2.unsqueeze(2)) / t)
        out_v1 = torch.exp(torch.bmm(w2, v1.unsqueeze(2)) / t)
        with torch.no_grad():  # Z from the first batch's scores, then frozen (no host sync: torch.where)
            for i, out in ((2, out_v1), (3, out_v2)):
                self.params[i] = torch.where(self.params[i] < 0, out.mean() * self.n_data, self.params[i])
        z = self.params[2:4].clone()
        out_v1 = out_v1 / z[0]
        out_v2 = out_v2 / z[1]
        with torch.no_grad():
            for memory, v in ((self.memory_v1, v1), (self.memory_v2, v2)):
                pos = memory.index_select(0, idx) * momentum + v.detach() * (1 - momentum)
                memory.index_copy_(0, idx, pos / pos.pow(2).sum(1, keepdim=True).pow(0.5))
        return out_v1, out_v2


class ContrastSampler(nn.Module):
    """Draws each sample's contrast indices: [positive, nce_k negatives from other classes]."""

    def __init__(self, labels: torch.Tensor, k: int, mode: str):
        super().__init__()
        labels = labels.long().cpu()
        order = torch.argsort(labels, stable=True)
        counts = torch.bincount(labels)
        self.k, self.mode, self.n = k, mode, len(labels)
        self.register_buffer("labels", labels, persistent=False)
        self.register_buffer("order", order, persistent=False)  # dataset positions sorted by class
        self.register_buffer("start", torch.cumsum(counts, 0) - counts, persistent=False)
        self.register_buffer("count", counts, persistent=False)
        if bool((counts == self.n).any()):
            raise ValueError(
                "CRD needs at least two classes in the training set (negatives come from other classes)"
            )

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        y = self.labels[idx]
        start, count = self.start[y].unsqueeze(1), self.count[y].unsqueeze(1)
        # uniform over the n − count[y] positions outside y's block of the class-sorted order
        u = (torch.rand(len(idx), self.k, device=idx.device) * (self.n - count)).long()
        u = u + (u >= start).long() * count
        neg = self.order[u]
        if self.mode == "exact":
            pos = idx.unsqueeze(1)
        else:
            pos = self.order[start + (torch.rand(len(idx), 1, device=idx.device) * count).long()]
        return torch.cat([pos, neg], 1)


@register_method(
    "crd", config=CRDConfig, summary="CRD: contrastive NCE of embedded features against memory banks"
)
class CRD(Distiller):
    """Tian et al. 2020, "Contrastive Representation Distillation", on the pooled features."""

    needs_index = True

    def __init__(self, student, teacher, *, ce_weight, weight, feat_dim, nce_k, nce_t, nce_m, mode):
        super().__init__(student, teacher, ce_weight)
        self.weight, self.feat_dim, self.mode = weight, feat_dim, mode
        self.nce = dict(k=nce_k, t=nce_t, momentum=nce_m)
        self.crd = nn.ModuleDict(
            {
                "embed_s": Embed(student.num_features, feat_dim),
                "embed_t": Embed(teacher.num_features, feat_dim),
            }
        )
        self.sampler: ContrastSampler | None = None

    def bind(self, data: DataInfo) -> None:
        n = len(data.train_labels)
        self.crd["memory"] = ContrastMemory(self.feat_dim, n, **self.nce)
        self.sampler = ContrastSampler(data.train_labels, self.nce["k"], self.mode)

    def extra_modules(self) -> nn.ModuleDict:
        return self.crd

    def forward(self, x, x_v, y, epoch, index=None):
        if self.sampler is None or index is None:
            raise RuntimeError("CRD needs bind(DataInfo) and the batch's sample indices (index=...)")
        s, fs = self.student(x, return_features=True)
        t, ft = self.teacher_forward(x)
        v1 = self.crd["embed_s"](fs["pooled"].float())
        v2 = self.crd["embed_t"](ft["pooled"].float())
        p1, p2 = self.crd["memory"](v1, v2, index, self.sampler(index))
        n = self.crd["memory"].n_data
        crd = self.weight * (crd_nce_loss(p1, n_data=n) + crd_nce_loss(p2, n_data=n))
        return step_output({"ce": self.ce(s, y), "crd": crd}, s, relation=logit_relation(s, t, fs, ft))
