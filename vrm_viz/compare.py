"""Comparisons of recomputed graphs: teacher vs student (edge cosines, correlations of edge matrices,
linear CKA, the class-by-class mean-logit difference map) and kept vs pruned edges (where UEP prunes),
for one snapshot or across a run's snapshots.

    m = agreement(snap, GraphOptions())            # dict of metrics (needs a teacher)
    df = agreement_evolution(snaps, GraphOptions())  # one row per snapshot
    diff = mean_logit_difference(snap)             # C×C: mean over class-c samples of (s − t)[:, d]
    summary = pruning_summary(G.inter_sample_graph(snap, opts))  # pruned fraction by pair type, view, class
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import torch

from vrm_viz.graphs import INTER_CLASS, INTER_SAMPLE, Graph, GraphOptions, build_graph
from vrm_viz.snapshot import Snapshot

METRICS = {
    "is_cos_mean": "IS edges: mean cos(teacher, student)",
    "is_cos_median": "IS edges: median cos(teacher, student)",
    "ic_cos_mean": "IC edges: mean cos(teacher, student)",
    "ic_cos_median": "IC edges: median cos(teacher, student)",
    "is_length_pearson": "IS edge lengths: Pearson r",
    "is_length_spearman": "IS edge lengths: Spearman ρ",
    "ic_length_pearson": "IC edge lengths: Pearson r",
    "ic_length_spearman": "IC edge lengths: Spearman ρ",
    "cka_logits": "linear CKA of logits (real view)",
    "cka_features": "linear CKA of pooled features",
    "top1_agreement": "top-1 agreement (real view)",
    "L_IS": "VRM loss L_IS (kept edges)",
    "L_IC": "VRM loss L_IC",
}


def _array(x) -> np.ndarray:
    return x.detach().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)


def linear_cka(x, y) -> float:
    """Linear CKA (Kornblith et al., 2019) between representations x [n, p] and y [n, q] of the same n samples:
    HSIC(X, Y) / sqrt(HSIC(X, X) HSIC(Y, Y)) with HSIC(X, Y) = ‖Ycᵀ Xc‖_F² and Xc, Yc column-centred.
    NaN when a representation is constant over the samples."""
    x, y = _array(x), _array(y)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"need [n, p] and [n, q] arrays with the same n; got {x.shape} and {y.shape}")
    xc, yc = x - x.mean(0), y - y.mean(0)
    hsic_xy = np.linalg.norm(yc.T @ xc) ** 2
    denom = np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc)
    return float(hsic_xy / denom) if denom > 0 else float("nan")


def _ranks(a: np.ndarray) -> np.ndarray:
    return pd.Series(a).rank(method="average").to_numpy()


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else float("nan")


def matrix_correlation(a, b, mask=None) -> dict[str, float]:
    """Pearson and Spearman (Pearson of average ranks) correlations of the entries of two same-shape
    matrices where ``mask`` holds and both are finite (mask None: every entry)."""
    a, b = _array(a), _array(b)
    if a.shape != b.shape:
        raise ValueError(f"matrices must have the same shape; got {a.shape} and {b.shape}")
    sel = np.isfinite(a) & np.isfinite(b)
    if mask is not None:
        sel &= np.asarray(mask, dtype=bool)
    av, bv = a[sel], b[sel]
    if av.size < 2:
        return {"pearson": float("nan"), "spearman": float("nan")}
    return {"pearson": _pearson(av, bv), "spearman": _pearson(_ranks(av), _ranks(bv))}


def cosine_agreement(cosines) -> dict[str, float]:
    """Mean and median of the finite per-edge cosines (NaN marks entries outside the edge set)."""
    c = _array(cosines)
    c = c[np.isfinite(c)]
    if c.size == 0:
        return {"mean": float("nan"), "median": float("nan")}
    return {"mean": float(c.mean()), "median": float(np.median(c))}


def class_mean_logits(logits, targets, num_classes: int) -> np.ndarray:
    """[C, C]: row c = mean logit vector over the samples of true class c (NaN row for an absent class)."""
    z, y = _array(logits), np.asarray(targets).astype(int)
    out = np.full((num_classes, z.shape[1]), np.nan)
    for c in range(num_classes):
        if (y == c).any():
            out[c] = z[y == c].mean(0)
    return out


def mean_logit_difference(snap: Snapshot, view: str = "real") -> np.ndarray:
    """[C, C]: entry (c, d) = mean over samples of true class c of (student logit − teacher logit) for class d."""
    if not snap.has_teacher:
        raise ValueError("the mean-logit difference compares student and teacher: this run has no teacher")
    s, t = (snap.s, snap.t) if view == "real" else (snap.s_v, snap.t_v)
    c = snap.num_classes
    return class_mean_logits(s, snap.targets, c) - class_mean_logits(t, snap.targets, c)


def agreement(snap: Snapshot, opts: GraphOptions | None = None, *, build=build_graph) -> dict[str, float]:
    """Every metric of :data:`METRICS` for one snapshot, its graphs recomputed with ``opts`` by
    ``build(snap, kind, opts)`` (default :func:`vrm_viz.graphs.build_graph`; the app passes a cached one)."""
    if not snap.has_teacher:
        raise ValueError("teacher–student agreement needs a teacher: this run has none")
    g_is, g_ic = build(snap, INTER_SAMPLE, opts), build(snap, INTER_CLASS, opts)
    out = {}
    for name, g in (("is", g_is), ("ic", g_ic)):
        cos = cosine_agreement(g.cosine)
        out[f"{name}_cos_mean"], out[f"{name}_cos_median"] = cos["mean"], cos["median"]
        corr = matrix_correlation(g.length_t, g.length_s, g.candidates)
        out[f"{name}_length_pearson"], out[f"{name}_length_spearman"] = corr["pearson"], corr["spearman"]
    out["cka_logits"] = linear_cka(snap.s, snap.t)
    feats = snap.feat_s is not None and snap.feat_t is not None
    out["cka_features"] = linear_cka(snap.feat_s, snap.feat_t) if feats else float("nan")
    out["top1_agreement"] = float((snap.s.argmax(1) == snap.t.argmax(1)).double().mean())
    out["L_IS"], out["L_IC"] = g_is.terms["L_IS"], g_is.terms["L_IC"]
    return out


def agreement_evolution(
    snaps: Iterable[Snapshot], opts: GraphOptions | None = None, *, build=build_graph
) -> pd.DataFrame:
    """:func:`agreement` of each snapshot with a teacher: one row per snapshot (epoch, kind, batch, source)."""
    rows = []
    for snap in snaps:
        if snap.has_teacher:
            source = "probe" if snap.kind == "probe" else f"train b{snap.batch}"
            rows.append({"epoch": snap.epoch, "kind": snap.kind, "batch": snap.batch, "source": source})
            rows[-1].update(agreement(snap, opts, build=build))
    cols = ["epoch", "kind", "batch", "source", *METRICS]
    return pd.DataFrame(rows, columns=cols).sort_values(["source", "epoch"], ignore_index=True)


def long_metrics(evolution: pd.DataFrame, metrics: Iterable[str]) -> pd.DataFrame:
    """The chosen metric columns of :func:`agreement_evolution` in long form (epoch, source, metric, value)."""
    metrics = list(metrics)
    out = evolution.melt(
        id_vars=["epoch", "source"], value_vars=metrics, var_name="metric", value_name="value"
    )
    out["metric"] = out["metric"].map(lambda m: METRICS.get(m, m))
    return out


# ---------------------------------------------------------------- kept vs pruned edges
def pruning_summary(graph: Graph) -> pd.DataFrame:
    """How many edges are pruned, and where: by pair type, inter-view diagonal, and class (edges touching it)."""
    e = graph.edges
    groups = [("all", "all edges", np.ones(len(e), dtype=bool))]
    groups += [
        ("pair", "same class", e.same_class.to_numpy()),
        ("pair", "different class", ~e.same_class.to_numpy()),
    ]
    if graph.kind == INTER_SAMPLE and graph.options.virtual:
        diag = e.diagonal.to_numpy()
        groups += [("inter-view", "diagonal (same image)", diag), ("inter-view", "off-diagonal", ~diag)]
    for name in graph.vertices["class"].unique():
        groups.append(("class", name, ((e.u_class == name) | (e.v_class == name)).to_numpy()))
    rows = []
    for group, category, sel in groups:
        n, kept = int(sel.sum()), int(e.kept.to_numpy()[sel].sum())
        rows.append(dict(group=group, category=category, edges=n, kept=kept, pruned=n - kept))
    out = pd.DataFrame(rows)
    out["pruned_frac"] = out.pruned / out.edges.where(out.edges > 0)
    return out


def pruning_evolution(
    snaps: Iterable[Snapshot], opts: GraphOptions | None = None, *, build=build_graph
) -> pd.DataFrame:
    """:func:`pruning_summary` of each snapshot's IS graph, with its epoch, kind, batch and source label."""
    frames = []
    for snap in snaps:
        g = build(snap, INTER_SAMPLE, opts)
        df = pruning_summary(g)
        kept_loss = g.edges.loss[g.edges.kept].mean() if g.has_teacher else np.nan
        df = df.assign(epoch=snap.epoch, kind=snap.kind, batch=snap.batch, mean_kept_loss=kept_loss)
        frames.append(df.assign(source="probe" if snap.kind == "probe" else f"train b{snap.batch}"))
    cols = ["group", "category", "edges", "kept", "pruned", "pruned_frac", "epoch", "kind", "batch"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*cols, "source"])


def filter_edges(
    edges: pd.DataFrame,
    *,
    status: str = "all",
    pair: str = "all",
    diagonal_only: bool = False,
    classes: Iterable[str] = (),
) -> pd.DataFrame:
    """Edge-table rows: status "kept" | "pruned" | "all"; pair "same" | "different" | "all"; classes: an
    endpoint of one of these classes (empty = any)."""
    sel = np.ones(len(edges), dtype=bool)
    if status != "all":
        sel &= edges.status.to_numpy() == status
    if pair != "all":
        sel &= edges.same_class.to_numpy() == (pair == "same")
    if diagonal_only:
        sel &= edges.diagonal.to_numpy()
    classes = list(classes)
    if classes:
        sel &= (edges.u_class.isin(classes) | edges.v_class.isin(classes)).to_numpy()
    return edges[sel]
