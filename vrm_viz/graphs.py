"""Affinity graphs of one relation snapshot, recomputed from its saved logits with the real VRM maths.

Every formula comes from :mod:`vrm_train.relations` (REP candidates, UEP scores and masks, the matching
loss) and :mod:`vrm_train.relations_display` (graphs, edge losses and cosines, undefined edges); this module
only arranges the results for display.

    opts = GraphOptions(uep_ratio=0.3)              # defaults: vrm_train.config.VRMConfig
    g = inter_sample_graph(snap, opts)              # Graph over the [real; virtual] vertices
    g.matrix("loss"); g.edges; g.terms["L_IS"]      # per-edge values in vertex coordinates, edge table
    block, diag = inter_view(g, "loss")             # the real→virtual block and its diagonal

Node-link data (top edges, networkx graph): :mod:`vrm_viz.nodelink`.

Vertex labels: "r3" is the real view of image 3 of the batch, "v3" its virtual view. Matrices are indexed
by vertex (real vertices first); an edge is stored once, in the orientation vrm_train.relations uses
(cross_view: row = real m, column = virtual n; all / real_only: u < v), NaN elsewhere.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from functools import cached_property

import numpy as np
import pandas as pd
import torch

from vrm_train import relations as R
from vrm_train import relations_display as RD
from vrm_train.config import VRMConfig
from vrm_viz.snapshot import Snapshot

_CFG = VRMConfig()
INTER_SAMPLE, INTER_CLASS, INTER_VIEW = "inter-sample", "inter-class", "inter-view"
GRAPH_KINDS = (INTER_SAMPLE, INTER_CLASS, INTER_VIEW)
QUANTITIES = {
    "loss": "edge loss ℓ (Huber, teacher vs student)",
    "cosine": "cos(teacher edge, student edge)",
    "score": "UEP score",
    "status": "kept / pruned / undefined",
    "length": "edge length ‖x_u − x_v‖",
}
MODELS = ("student", "teacher", "difference")
_VERTEX_COLS = ("view", "image", "class", "pred_t_class", "pred_s_class")


@dataclass(frozen=True)
class GraphOptions:
    """The pruning/graph options of :func:`vrm_train.relations.vrm_loss` (same names and meanings)."""

    is_edges: str = _CFG.is_edges
    zscore: bool = _CFG.zscore
    uep: str = _CFG.uep
    uep_ratio: float = _CFG.uep_ratio
    huber_delta: float = _CFG.huber_delta

    def __post_init__(self):
        for name, ok in (
            ("is_edges", self.is_edges in R.IS_EDGE_SETS),
            ("uep", self.uep in R.UEP_RULES),
            ("uep_ratio", 0 <= self.uep_ratio < 1),
            ("huber_delta", self.huber_delta > 0),
        ):
            if not ok:
                raise ValueError(f"invalid {name}={getattr(self, name)!r} (see vrm_train.relations.vrm_loss)")

    @classmethod
    def from_config(cls, config: dict | None) -> GraphOptions:
        """The options a run trained with (its config's ``vrm`` section; missing keys: defaults)."""
        section = (config or {}).get("vrm") or {}
        cast = {"is_edges": str, "zscore": bool, "uep": str, "uep_ratio": float, "huber_delta": float}
        return cls(**{f.name: cast[f.name](section[f.name]) for f in fields(cls) if f.name in section})

    @property
    def virtual(self) -> bool:
        return self.is_edges != "real_only"

    def as_kwargs(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class Graph:
    """One recomputed graph. Matrices are [N, N] over ``vertices`` (see the module docstring)."""

    kind: str
    options: GraphOptions
    vertices: pd.DataFrame
    candidates: np.ndarray  # bool: the edge set (REP), one orientation
    kept: np.ndarray  # bool: candidates that survive UEP
    loss: np.ndarray  # per-edge ℓ (NaN off the edge set, all NaN without teacher)
    cosine: np.ndarray  # cos(E^T_uv, E^S_uv)
    score: np.ndarray  # UEP score (residual rule: dropped elements); NaN without a score
    length_s: np.ndarray  # ‖x_u − x_v‖ of the student, every pair (NaN diagonal)
    length_t: np.ndarray | None
    batch_size: int
    notes: tuple[str, ...] = ()
    logits: tuple = field(default=(), repr=False)  # (s, s_v, t, t_v) as vrm_loss gets them
    # bool: edges of the set with no direction (spec §2.4: vertices coincide for the student or the teacher);
    # they add nothing to the loss, whatever UEP decided. None: no edge is undefined.
    undefined: np.ndarray | None = field(default=None, repr=False)

    @cached_property
    def terms(self) -> dict:
        """L_IS, L_IC and the kept fraction of :func:`vrm_train.relations.vrm_loss` (empty without teacher)."""
        if not self.has_teacher:
            return {}
        kw = dict(lambda_is=_CFG.lambda_is, lambda_ic=_CFG.lambda_ic)
        with torch.no_grad():
            out = R.vrm_loss(*self.logits, **self.options.as_kwargs(), **kw)
        return {
            "L_IS": float(out.terms["is"]),
            "L_IC": float(out.terms["ic"]),
            "is_kept_frac": float(out.terms["is_kept_frac"]),
        }

    @cached_property
    def edges(self) -> pd.DataFrame:
        """One row per edge of the set: endpoints, their views/classes/predictions, flags, values."""
        u, v = np.nonzero(self.candidates)
        vx = self.vertices
        lab = vx["label"].to_numpy()
        df = {"u": lab[u], "v": lab[v], "u_id": u, "v_id": v}
        for col in _VERTEX_COLS:
            if col in vx:
                arr = vx[col].to_numpy()
                df[f"u_{col}"], df[f"v_{col}"] = arr[u], arr[v]
        tgt = vx["target"].to_numpy()
        df["same_class"] = tgt[u] == tgt[v]
        img, view = vx.get("image", vx["vertex"]).to_numpy(), vx["view"].to_numpy()
        df["diagonal"] = (img[u] == img[v]) & (view[u] != view[v])
        undefined = self.undefined_mask[u, v]
        df["status"] = np.where(undefined, "undefined", np.where(self.kept[u, v], "kept", "pruned"))
        df["kept"] = self.kept[u, v]
        df["undefined"] = undefined
        for name in ("score", "loss", "cosine", "length_s", "length_t"):
            mat = getattr(self, name)
            df[name] = mat[u, v] if mat is not None else np.full(len(u), np.nan)
        return pd.DataFrame(df)

    @property
    def has_teacher(self) -> bool:
        return self.length_t is not None

    @property
    def n_edges(self) -> int:
        return int(self.candidates.sum())

    @property
    def n_kept(self) -> int:
        return int(self.kept.sum())

    @property
    def n_pruned(self) -> int:
        return self.n_edges - self.n_kept

    @property
    def undefined_mask(self) -> np.ndarray:
        return np.zeros_like(self.candidates) if self.undefined is None else self.undefined

    @property
    def n_undefined(self) -> int:
        return int((self.undefined_mask & self.candidates).sum())

    @property
    def labels(self) -> list[str]:
        return self.vertices["label"].tolist()

    def unavailable(self, quantity: str, model: str = "student") -> str | None:
        """Why ``quantity`` (for ``model``) cannot be shown for this graph, or None when it can."""
        if quantity not in QUANTITIES:
            raise ValueError(f"quantity must be one of {list(QUANTITIES)}; got {quantity!r}")
        needs_teacher = quantity in ("loss", "cosine") or (quantity == "length" and model != "student")
        if needs_teacher and not self.has_teacher:
            return (
                f"The {QUANTITIES[quantity]} compares the teacher's graph with the student's, and this run "
                "has no teacher: only the student's graph (edge length, UEP score, kept / pruned) is shown."
            )
        if quantity == "score" and np.isnan(self.score).all():
            if self.kind == INTER_CLASS:
                return "UEP ranks inter-sample edges only: the inter-class graph has no UEP score."
            return f"No UEP score: the rule uep={self.options.uep!r} ranks no edge by score."
        return None

    def matrix(self, quantity: str, model: str = "student") -> np.ndarray:
        """[N, N] float matrix of a quantity; "status": 0 kept, 1 pruned, 2 undefined, NaN not an edge."""
        why = self.unavailable(quantity, model)
        if why:
            raise ValueError(why)
        if quantity == "length":
            if model not in MODELS:
                raise ValueError(f"model must be one of {MODELS}; got {model!r}")
            if model == "difference":
                return self.length_s - self.length_t
            return self.length_s if model == "student" else self.length_t
        if quantity == "status":
            status = np.where(self.undefined_mask, 2.0, np.where(self.kept, 0.0, 1.0))
            return np.where(self.candidates, status, np.nan)
        return getattr(self, quantity)

    def edge(self, u: int, v: int) -> pd.Series | None:
        """The edge-table row of the edge between vertices u and v (either orientation), or None."""
        hit = self.edges[
            ((self.edges.u_id == u) & (self.edges.v_id == v))
            | ((self.edges.u_id == v) & (self.edges.v_id == u))
        ]
        return None if hit.empty else hit.iloc[0]


def vertex_table(snap: Snapshot, virtual: bool = True) -> pd.DataFrame:
    """One row per inter-sample vertex: [real views; virtual views] with class and predictions."""
    b, names = snap.batch_size, np.asarray(snap.classes, dtype=object)
    views = [("real", "r", snap.s, snap.t)]
    if virtual:
        views.append(("virtual", "v", snap.s_v, snap.t_v))
    parts = []
    image, target = np.arange(b), snap.targets.numpy()
    for view, prefix, s, t in views:
        part = {"label": [f"{prefix}{i}" for i in image], "view": view, "image": image, "target": target}
        pred_s, pred_t = s.argmax(1).numpy(), (t.argmax(1).numpy() if t is not None else np.full(b, -1))
        part.update(
            {"class": names[target], "pred_s": pred_s, "pred_s_class": names[pred_s], "pred_t": pred_t}
        )
        part["pred_t_class"] = np.where(pred_t >= 0, names[pred_t.clip(0)], None)
        parts.append(pd.DataFrame(part))
    out = pd.concat(parts, ignore_index=True)
    out.insert(0, "vertex", np.arange(len(out)))
    return out


def _class_table(snap: Snapshot) -> pd.DataFrame:
    c = snap.num_classes
    counts = np.bincount(snap.targets.numpy(), minlength=c)
    pred = np.bincount(snap.s.argmax(1).numpy(), minlength=c)
    return pd.DataFrame(
        {"vertex": np.arange(c), "label": list(snap.classes), "view": "class", "target": np.arange(c)}
        | {"class": list(snap.classes), "count": counts, "predicted_by_student": pred}
    )


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().double().numpy()


def _lengths(z: torch.Tensor, z_v: torch.Tensor | None, standardise: bool, columns: bool) -> np.ndarray:
    """‖x_u − x_v‖ between the vertices of one model (z-scored per sample with relations.zscore)."""
    x = torch.cat([z, z_v]) if z_v is not None else z
    x = R.zscore(x.double()) if standardise else x.double()
    x = x.T if columns else x
    d = (x[:, None, :] - x[None, :, :]).norm(dim=-1).numpy()
    np.fill_diagonal(d, np.nan)
    return d


def _place(mat: np.ndarray, is_edges: str, b: int, fill) -> np.ndarray:
    """A relations matrix in vertex coordinates (cross_view: the [B, B] block rows real, cols virtual)."""
    if is_edges != "cross_view":
        return mat
    out = np.full((2 * b, 2 * b), fill, dtype=mat.dtype)
    out[:b, b:] = mat
    return out


def _views(snap: Snapshot, opts: GraphOptions):
    t_v = snap.t_v if snap.has_teacher and opts.virtual else None
    return snap.s, snap.s_v if opts.virtual else None, snap.t, t_v


@torch.no_grad()
def inter_sample_graph(snap: Snapshot, opts: GraphOptions | None = None) -> Graph:
    """The IS graph over [real; virtual] vertices (real only for is_edges="real_only"), pruned by REP/UEP."""
    opts = opts or GraphOptions()
    s, s_v, t, t_v = _views(snap, opts)
    b, teacher, notes = snap.batch_size, snap.has_teacher, []
    cand = R.rep_candidates(opts.is_edges, b)
    nan = torch.full(cand.shape, float("nan"), dtype=torch.float64)
    loss = cos = score = nan
    kept = cand  # uep="none"; the scored rules prune with relations.uep_mask, as vrm_loss does
    if opts.uep in R.SCORED_UEP and (teacher or opts.uep != "teacher_student"):
        pair = dict(t=t, t_v=t_v) if opts.uep == "teacher_student" else {}
        raw = R.uep_scores(s, s_v, is_edges=opts.is_edges, uep=opts.uep, **pair)
        score, kept = torch.where(cand, raw, nan), R.uep_mask(raw, cand, uep_ratio=opts.uep_ratio)
    elif opts.uep == "teacher_student":
        notes.append(
            "The teacher_student rule compares teacher and student predictions: no teacher, no pruning."
        )
    if teacher:
        kw = dict(is_edges=opts.is_edges, zscore=opts.zscore)
        kw_loss = dict(huber_delta=opts.huber_delta, residual=opts.uep == "residual")
        el = RD.is_edge_losses(s, s_v, t, t_v, **kw, **kw_loss)
        loss = torch.where(cand, el.loss.double(), nan)
        cos = torch.where(cand, RD.is_edge_cosines(s, s_v, t, t_v, **kw).double(), nan)
        if opts.uep == "residual":  # kept: no element dropped (vrm_loss's own mask)
            kept = R.vrm_loss(s, s_v, t, t_v, **opts.as_kwargs(), lambda_is=1.0, lambda_ic=0.0).masks["is"]
            score = torch.where(cand, el.dropped.double(), nan)
    elif opts.uep == "residual":
        notes.append("The residual rule compares teacher and student edges: no teacher, no pruning.")
    mats = {
        k: _place(_np(m), opts.is_edges, b, np.nan)
        for k, m in (("loss", loss), ("cosine", cos), ("score", score))
    }
    cand_np, kept_np = (_place(m.numpy(), opts.is_edges, b, False) for m in (cand, kept))
    pair = (t, t_v) if teacher else (s, s_v)  # without a teacher: the rule on the student alone
    undefined = RD.is_undefined_edges(s, s_v, *pair, is_edges=opts.is_edges, zscore=opts.zscore)
    undefined = _place(undefined.numpy(), opts.is_edges, b, False)
    length_t = _lengths(t, t_v, opts.zscore, columns=False) if teacher else None
    vertices = vertex_table(snap, virtual=opts.virtual)
    lengths = dict(length_s=_lengths(s, s_v, opts.zscore, columns=False), length_t=length_t)
    extra = dict(batch_size=b, notes=tuple(notes), logits=(s, s_v, t, t_v), undefined=undefined)
    return Graph(INTER_SAMPLE, opts, vertices, cand_np, kept_np, **mats, **lengths, **extra)


@torch.no_grad()
def reprune(graph: Graph, uep_ratio: float) -> Graph:
    """``graph`` (an IS graph) under another UEP ratio: relations.uep_mask re-run on its stored UEP scores,
    every ratio-independent value reused (what a ratio slider needs); the loss terms follow lazily."""
    opts = replace(graph.options, uep_ratio=float(uep_ratio))
    if graph.kind != INTER_SAMPLE or opts.uep not in R.SCORED_UEP or np.isnan(graph.score).all():
        return replace(graph, options=opts)  # the ratio is unused
    b = graph.batch_size
    score = torch.from_numpy(graph.score[:b, b:] if opts.is_edges == "cross_view" else graph.score)
    kept = R.uep_mask(score, R.rep_candidates(opts.is_edges, b), uep_ratio=opts.uep_ratio)
    return replace(graph, options=opts, kept=_place(kept.numpy(), opts.is_edges, b, False))


@torch.no_grad()
def inter_class_graph(snap: Snapshot, opts: GraphOptions | None = None) -> Graph:
    """The IC graph over the C classes (vertex c = column c of [z; z̃]); every edge c < d is kept."""
    opts = opts or GraphOptions()
    s, s_v, t, t_v = _views(snap, opts)
    c = snap.num_classes
    cand = np.triu(np.ones((c, c), dtype=bool), 1)
    nan = np.full((c, c), np.nan)
    loss = cos = nan
    if snap.has_teacher:
        ic_loss = RD.ic_edge_losses(s, s_v, t, t_v, zscore=opts.zscore, huber_delta=opts.huber_delta)
        loss = np.where(cand, _np(ic_loss), nan)
        cos = np.where(cand, _np(RD.ic_edge_cosines(s, s_v, t, t_v, zscore=opts.zscore)), nan)
    length_s = _lengths(s, s_v, opts.zscore, columns=True)
    length_t = _lengths(t, t_v, opts.zscore, columns=True) if snap.has_teacher else None
    note = "UEP prunes inter-sample edges only: every class edge c < d is kept (REP keeps one orientation)."
    extra = dict(length_s=length_s, length_t=length_t, batch_size=snap.batch_size, notes=(note,))
    extra["logits"] = (s, s_v, t, t_v)
    pair = (t, t_v) if snap.has_teacher else (s, s_v)
    extra["undefined"] = RD.ic_undefined_edges(s, s_v, *pair, zscore=opts.zscore).numpy()
    return Graph(INTER_CLASS, opts, _class_table(snap), cand, cand.copy(), loss, cos, nan, **extra)


def inter_view(
    graph: Graph, quantity: str = "status", model: str = "student"
) -> tuple[np.ndarray, pd.DataFrame]:
    """The inter-view relations of an IS graph: the real→virtual block [B, B] of a quantity (row m = real
    r_m, column n = virtual ṽ_n) and its diagonal as edge-table rows (one per image: its two views' edge)."""
    if graph.kind != INTER_SAMPLE:
        raise ValueError(f"inter-view relations are part of the inter-sample graph, not the {graph.kind} one")
    if not graph.options.virtual:
        raise ValueError("is_edges='real_only' has no virtual views, hence no inter-view relations")
    b, e = graph.batch_size, graph.edges
    return graph.matrix(quantity, model)[:b, b:], e[e.diagonal].sort_values("u_image").reset_index(drop=True)


def build_graph(snap: Snapshot, kind: str, opts: GraphOptions | None = None) -> Graph:
    """The graph shown for ``kind`` (the inter-view graph is the inter-sample one, viewed by block)."""
    if kind not in GRAPH_KINDS:
        raise ValueError(f"kind must be one of {GRAPH_KINDS}; got {kind!r}")
    return (inter_class_graph if kind == INTER_CLASS else inter_sample_graph)(snap, opts)


def edge_vectors(snap: Snapshot, kind: str, opts: GraphOptions, u: int, v: int) -> pd.DataFrame:
    """The edge vectors E_uv of teacher and student (relations_display.is_graph / ic_graph), one row per
    dimension.

    IS: C rows (classes); IC: one row per IS vertex (the batch is the feature dimension of class edges)."""
    s, s_v, t, t_v = _views(snap, opts)
    if kind == INTER_CLASS:
        fn, dims = RD.ic_graph, vertex_table(snap, opts.virtual)["label"].tolist()
    else:
        fn, dims = RD.is_graph, list(snap.classes)
    out = {"dimension": dims}
    partner = (t, t_v) if t is not None else None  # an edge undefined for either model is 0 for both
    for name, z, z_v, other in (("teacher", t, t_v, (s, s_v)), ("student", s, s_v, partner)):
        if z is not None:
            out[name] = _np(fn(z, z_v, zscore=opts.zscore, partner=other)[u, v])
    return pd.DataFrame(out)


def vertex_image(snap: Snapshot, graph: Graph, vertex: int) -> np.ndarray:
    """The uint8 image [H, W, 3] of an IS vertex (its real or virtual view; grayscale repeated)."""
    row = graph.vertices.iloc[vertex]
    img = (snap.image if row["view"] == "real" else snap.image_v)[int(row["image"])]
    img = img.permute(1, 2, 0).numpy()
    return np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img
