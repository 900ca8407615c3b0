"""Data of the guided "Learn VRM" demo: one tiny batch, taken through VRM one step at a time.

    batch = tiny_batch(snap, [0, 1, 2, 3, 4], config=run.config)
    vertex_frame(batch, "teacher")      # 2-D positions of the 2B vertices (logits of both views)
    rep_frame(batch); uep_frame(batch, uep_ratio=0.2); loss_summary(batch, uep_ratio=0.2)

Every number is computed by :mod:`vrm_train.relations` on logits saved in a snapshot; this module only
arranges them in tables. The lesson always shows the default edge set (REP "cross_view", §3.1 of the
spec); z-scoring, Huber δ, the UEP rule and the λ's come from the run's config.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from vrm_train import relations, relations_display
from vrm_train.config import VRMConfig

__all__ = [
    "EXPLANATIONS",
    "STEPS",
    "STEP_TITLES",
    "TinyBatch",
    "edge_frame",
    "ic_loss_matrix",
    "logit_frame",
    "loss_summary",
    "rep_counts",
    "rep_frame",
    "tiny_batch",
    "uep_frame",
    "vertex_frame",
]

STEPS = ("logits", "edges", "virtual", "rep", "uep", "loss")
STEP_TITLES = {
    "logits": "1 · Logits",
    "edges": "2 · Edges",
    "virtual": "3 · Virtual views",
    "rep": "4 · Redundant edges (REP)",
    "uep": "5 · Unreliable edges (UEP)",
    "loss": "6 · The loss",
}
EXPLANATIONS = {
    "logits": (
        "VRM works on logits, the raw scores a network gives each class before softmax. Each image of the "
        "batch gets one score vector from the teacher and one from the student. Instead of copying the "
        "teacher's vector sample by sample, VRM asks the student to reproduce how these vectors relate to "
        "one another."
    ),
    "edges": (
        "A relation is an edge between two prediction vectors: their difference, scaled to length one. "
        "Unlike a single similarity number, the edge keeps one entry per class, so it records in which "
        "classes two predictions differ. Each arrow below is one edge E_mn = unit(z_m − z̃_n), drawn from "
        "the virtual vertex n to the real vertex m, on a 2-D projection of the (z-scored) logit vectors."
    ),
    "virtual": (
        "Each image also gets a virtual view: a random RandAugment transform that keeps what the image "
        "shows. Both networks score both views, which doubles the vertices of the graph and adds "
        "relations between an image and its own transformed copy (the inter-view edges). These teach the "
        "student how the teacher's answer moves when the picture changes."
    ),
    "rep": (
        "Many edges carry no new information. E_vu is just −E_uv, so one orientation of each pair is "
        "enough; VRM also drops the real–real and virtual–virtual edges. What remains are the B² "
        "cross-view edges from each real vertex to each virtual vertex, the inter-view edges on the "
        "diagonal."
    ),
    "uep": (
        "Some edges are unreliable: they join predictions the student is unsure of, or that disagree. "
        "Each edge is scored by the cross entropy between the student's two endpoint predictions, and the "
        "highest-scoring fraction of edges is left out of the loss for this step. The scores are "
        "recomputed at every step, so an edge pruned now may count later."
    ),
    "loss": (
        "For every kept edge the student's edge is compared with the teacher's by a Huber loss summed over "
        "classes; L_IS averages it over the kept inter-sample edges. The class graph (IC) relates classes "
        "instead of samples and adds L_IC. The student minimises cross-entropy + λ_IS·L_IS + λ_IC·L_IC."
    ),
}


@dataclass
class TinyBatch:
    """A few samples of a snapshot with both models' logits on both views. options: the VRM options of
    the run (is_edges forced to "cross_view")."""

    samples: list[int]
    index: list[int]
    targets: list[int]
    classes: list[str]
    s: Tensor
    s_v: Tensor
    t: Tensor
    t_v: Tensor
    image: Tensor
    image_v: Tensor
    options: dict

    @property
    def size(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> list[str]:
        return [f"{i}: {self.classes[c]}" for i, c in enumerate(self.targets)]

    def logits(self, model: str) -> tuple[Tensor, Tensor]:
        if model not in ("teacher", "student"):
            raise ValueError(f"model must be 'teacher' or 'student'; got {model!r}")
        return (self.t, self.t_v) if model == "teacher" else (self.s, self.s_v)


def tiny_batch(
    snap, samples: list[int] | None = None, *, size: int = 5, config: dict | None = None
) -> TinyBatch:
    """The lesson's batch: the given snapshot positions, or the first ``size`` (the probe batch is drawn
    round-robin over classes, so these are different classes). Needs a snapshot with teacher logits."""
    if not snap.has_teacher:
        raise ValueError(f"snapshot {snap.path} has no teacher logits (a run trained without teacher)")
    samples = list(range(min(size, snap.batch_size))) if not samples else [int(i) for i in samples]
    if len(samples) < 2 or len(set(samples)) != len(samples):
        raise ValueError("the lesson needs at least 2 distinct samples")
    if not all(0 <= i < snap.batch_size for i in samples):
        raise ValueError(f"samples must lie in [0, {snap.batch_size - 1}]; got {samples}")
    opts = asdict(VRMConfig())
    opts.update({k: v for k, v in ((config or {}).get("vrm") or {}).items() if k in opts})
    opts["is_edges"] = "cross_view"
    idx = torch.tensor(samples)
    return TinyBatch(
        samples=samples,
        index=snap.index[idx].tolist(),
        targets=snap.targets[idx].tolist(),
        classes=list(snap.classes),
        s=snap.s[idx].double(),
        s_v=snap.s_v[idx].double(),
        t=snap.t[idx].double(),
        t_v=snap.t_v[idx].double(),
        image=snap.image[idx],
        image_v=snap.image_v[idx],
        options=opts,
    )


def logit_frame(batch: TinyBatch) -> pd.DataFrame:
    """One row per (model, view, sample): its logits (one column per class), top class and probability."""
    rows = []
    for model in ("teacher", "student"):
        for view, z in zip(("real", "virtual"), batch.logits(model), strict=True):
            p = z.softmax(1)
            for i in range(batch.size):
                c = int(z[i].argmax())
                row = {"model": model, "view": view, "sample": i, "label": batch.classes[batch.targets[i]]}
                row.update({"predicted": batch.classes[c], "p_top": float(p[i, c])})
                row.update({name: float(v) for name, v in zip(batch.classes, z[i], strict=True)})
                rows.append(row)
    return pd.DataFrame(rows)


def vertex_frame(batch: TinyBatch, model: str) -> pd.DataFrame:
    """2-D PCA of one model's 2B vertices [z; z̃] (z-scored when the run z-scores, as the edges are):
    columns vertex, sample, view, x, y, label. PCA via SVD of the centred vertices (display only)."""
    z, z_v = batch.logits(model)
    x = torch.cat([z, z_v])
    x = relations.zscore(x) if batch.options["zscore"] else x
    x = x - x.mean(0, keepdim=True)
    u, sv, _ = torch.linalg.svd(x, full_matrices=False)
    xy = (u[:, :2] * sv[:2]).numpy()
    xy = xy * np.where(np.abs(xy).max(0) == xy.max(0), 1.0, -1.0)  # fixed signs: largest coordinate > 0
    b = batch.size
    return pd.DataFrame(
        {
            "vertex": range(2 * b),
            "sample": list(range(b)) * 2,
            "view": ["real"] * b + ["virtual"] * b,
            "x": xy[:, 0],
            "y": xy[:, 1],
            "label": batch.labels * 2,
        }
    )


def edge_frame(batch: TinyBatch) -> pd.DataFrame:
    """The B² cross-view edges (m real, n virtual): inter_view (m == n) and cosine = cos(E^S_mn, E^T_mn)
    from :func:`relations_display.is_edge_cosines` (1 = the student relates m and ñ exactly as the
    teacher)."""
    cos = relations_display.is_edge_cosines(
        batch.s, batch.s_v, batch.t, batch.t_v, is_edges="cross_view", zscore=batch.options["zscore"]
    )
    m, n = np.meshgrid(range(batch.size), range(batch.size), indexing="ij")
    return pd.DataFrame(
        {"m": m.ravel(), "n": n.ravel(), "inter_view": (m == n).ravel(), "cosine": cos.numpy().ravel()}
    )


def _vertex_name(u: int, b: int) -> str:
    return f"z{u}" if u < b else f"z̃{u - b}"


def rep_frame(batch: TinyBatch) -> pd.DataFrame:
    """Every ordered pair (u, v), u ≠ v, of the 2B vertices [real; virtual]: block (RR, RV, VR, VV),
    kept (in :func:`relations.rep_candidates` "cross_view") and the reason an edge is dropped."""
    b = batch.size
    kept = relations.rep_candidates("cross_view", b)
    rows = []
    for u in range(2 * b):
        for v in range(2 * b):
            if u == v:
                continue
            block = ("R" if u < b else "V") + ("R" if v < b else "V")
            keep = block == "RV" and bool(kept[u, v - b])
            if keep:
                reason = "kept: cross-view edge" + (" (inter-view)" if u == v - b else "")
            elif block == "VR":
                reason = f"anti-symmetric: the negative of {_vertex_name(v, b)}→{_vertex_name(u, b)}"
            else:
                reason = "intra-view: both vertices from the same view"
            name = f"{_vertex_name(u, b)}→{_vertex_name(v, b)}"
            rows.append({"u": u, "v": v, "edge": name, "block": block, "kept": keep, "reason": reason})
    return pd.DataFrame(rows)


def rep_counts(batch: TinyBatch) -> dict:
    """Edge counts along REP, and the measured anti-symmetry of the teacher's dense IS graph
    (max |E_uv + E_vu| over all pairs, from :func:`relations_display.is_graph`: 0 up to rounding)."""
    b = batch.size
    g = relations_display.is_graph(batch.t, batch.t_v, zscore=batch.options["zscore"])
    return {
        "ordered_pairs": 2 * b * (2 * b - 1),
        "after_antisymmetry": b * (2 * b - 1),
        "after_intra_view": int(relations.rep_candidates("cross_view", b).sum()),
        "antisymmetry_error": float((g + g.transpose(0, 1)).abs().max()),
    }


def _uep(batch: TinyBatch, uep: str | None) -> str:
    rule = uep or batch.options["uep"]
    return rule if rule in ("cross_entropy", "joint_entropy") else "cross_entropy"


def uep_frame(batch: TinyBatch, *, uep_ratio: float, uep: str | None = None) -> pd.DataFrame:
    """The B² cross-view edges with their UEP score (:func:`relations.uep_scores` on the student's
    logits), rank (1 = least reliable) and kept (:func:`relations.uep_mask` at ``uep_ratio``), plus the
    student's predictions at both ends. ``uep`` None: the run's rule (cross_entropy if it has none)."""
    rule = _uep(batch, uep)
    scores = relations.uep_scores(batch.s, batch.s_v, is_edges="cross_view", uep=rule)
    kept = relations.uep_mask(scores, relations.rep_candidates("cross_view", batch.size), uep_ratio=uep_ratio)
    p, p_v = batch.s.softmax(1), batch.s_v.softmax(1)
    m, n = np.meshgrid(range(batch.size), range(batch.size), indexing="ij")
    df = pd.DataFrame({"m": m.ravel(), "n": n.ravel(), "score": scores.numpy().ravel()})
    df["rank"] = df["score"].rank(ascending=False, method="first").astype(int)
    df["kept"] = kept.numpy().ravel()
    df["student_real"] = [f"{batch.classes[int(p[i].argmax())]} ({float(p[i].max()):.2f})" for i in df.m]
    df["student_virtual"] = [
        f"{batch.classes[int(p_v[j].argmax())]} ({float(p_v[j].max()):.2f})" for j in df.n
    ]
    return df


def loss_summary(batch: TinyBatch, *, uep_ratio: float, uep: str | None = None) -> tuple[pd.DataFrame, dict]:
    """(per-edge table, totals). Table: the B² cross-view edges with loss ℓ_mn
    (:func:`relations_display.is_edge_losses`) and kept (UEP). Totals from :func:`relations.vrm_loss`: L_IS,
    L_IC, loss = λ_IS·L_IS + λ_IC·L_IC, kept_frac, and L_IS_from_edges = mean ℓ over the kept edges of the table
    (equal to L_IS: the same maths by two routes)."""
    o = batch.options
    rule = _uep(batch, uep)
    edges = relations_display.is_edge_losses(
        batch.s,
        batch.s_v,
        batch.t,
        batch.t_v,
        is_edges="cross_view",
        zscore=o["zscore"],
        huber_delta=o["huber_delta"],
        residual=False,
    ).loss
    out = relations.vrm_loss(
        batch.s,
        batch.s_v,
        batch.t,
        batch.t_v,
        is_edges="cross_view",
        zscore=o["zscore"],
        uep=rule,
        uep_ratio=uep_ratio,
        huber_delta=o["huber_delta"],
        lambda_is=o["lambda_is"],
        lambda_ic=o["lambda_ic"],
    )
    kept = out.masks["is"]
    m, n = np.meshgrid(range(batch.size), range(batch.size), indexing="ij")
    df = pd.DataFrame(
        {"m": m.ravel(), "n": n.ravel(), "loss": edges.numpy().ravel(), "kept": kept.numpy().ravel()}
    )
    totals = {
        "L_IS": float(out.terms["is"]),
        "L_IS_from_edges": float(edges[kept].mean()),
        "L_IC": float(out.terms["ic"]),
        "lambda_is": float(o["lambda_is"]),
        "lambda_ic": float(o["lambda_ic"]),
        "loss": float(out.loss),
        "kept_frac": float(out.terms["is_kept_frac"]),
        "huber_delta": float(o["huber_delta"]),
    }
    return df, totals


def ic_loss_matrix(batch: TinyBatch) -> pd.DataFrame:
    """Per-edge IC losses ℓ_cd (c < d; NaN elsewhere) from :func:`relations_display.ic_edge_losses`,
    classes as index and columns."""
    o = batch.options
    m = relations_display.ic_edge_losses(
        batch.s, batch.s_v, batch.t, batch.t_v, zscore=o["zscore"], huber_delta=o["huber_delta"]
    ).numpy()
    m = np.where(np.triu(np.ones_like(m, dtype=bool), 1), m, np.nan)
    return pd.DataFrame(m, index=batch.classes, columns=batch.classes)
