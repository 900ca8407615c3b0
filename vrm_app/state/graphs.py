"""Cached graph computations and the shared controls of the graph pages (Affinity graphs, Teacher vs
student, Pruned edges).

Everything expensive is cached on (snapshot path, its mtime, graph options): moving a pruning slider
recomputes one batch's graph with :mod:`vrm_train.relations` (milliseconds) and reuses every figure
that does not depend on it.
"""

from __future__ import annotations

import os
from dataclasses import astuple, replace

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from vrm_app import state
from vrm_app.state import url
from vrm_train.relations import UEP_RULES
from vrm_viz import across as A
from vrm_viz import compare as C
from vrm_viz import explain as X
from vrm_viz import graphs as G
from vrm_viz import nodelink as N
from vrm_viz.figures import graphs as FG
from vrm_viz.figures import nodelink as FN
from vrm_viz.glossary import OPTION_HELP
from vrm_viz.runs import Run, RunError
from vrm_viz.snapshot import Snapshot

PROBE = "probe batch (test set)"
SCORED = tuple(r for r in UEP_RULES if r not in ("residual", "none"))  # rules that rank edges by a score
HEATMAP_CAPTIONS = {
    G.INTER_SAMPLE: "Each cell is one edge, shown in both orientations (blank: not in the edge set). The thick "
    "lines split real (r) from virtual (v) vertices; labels: vertex · true class.",
    G.INTER_VIEW: "Rows: real views, columns: virtual views; the diagonal links the two views of one image.",
    G.INTER_CLASS: "Each cell is the edge between two classes (vertex c: column c of the batch's logits).",
}


def _mtime(snap: Snapshot) -> float:
    return os.path.getmtime(snap.path)


def _source(kind: str, batch: int) -> str:
    return "probe" if kind == "probe" else f"train b{batch}"


def snapshot_sources(run: Run) -> list[str]:
    """The batches ``run`` saved snapshots of: "probe", "train b0", … (the evolutions' ``source``)."""
    return sorted({_source(k, int(b)) for k, b in zip(run.snapshots.kind, run.snapshots.batch, strict=True)})


def _snapshots(run: Run, sources: list[str] | None = None) -> tuple[tuple[str, float], ...]:
    """(path, mtime) of the snapshots of ``run`` (of the batches ``sources``, default all): the cache key of
    the run-wide computations."""
    snaps = run.snapshots.sort_values(["kind", "batch", "epoch"])
    if sources is not None:
        keep = [_source(k, int(b)) in sources for k, b in zip(snaps.kind, snaps.batch, strict=True)]
        snaps = snaps[keep]
    return tuple((p, os.path.getmtime(p)) for p in snaps.path.tolist() if os.path.exists(p))


def _computed(kind: str) -> str:
    """The graph actually computed for a view: the inter-view graph is a block of the inter-sample one."""
    return G.INTER_CLASS if kind == G.INTER_CLASS else G.INTER_SAMPLE


def _key(opts: G.GraphOptions) -> tuple:
    """The options without the UEP ratio: what the ratio-independent values depend on."""
    return astuple(replace(opts, uep_ratio=0.0))


@st.cache_resource(show_spinner=False, max_entries=32)
def _base(path: str, mtime: float, kind: str, key: tuple, _opts: G.GraphOptions) -> G.Graph:
    """The graph at the first UEP ratio asked for; cached by everything but the ratio."""
    return G.build_graph(state.snapshot(path, mtime), kind, _opts)


@st.cache_resource(show_spinner=False, max_entries=128)
def _graph(path: str, mtime: float, kind: str, opts: tuple) -> G.Graph:
    o = G.GraphOptions(*opts)
    base = _base(path, mtime, kind, _key(o), o)
    g = base if base.options == o else G.reprune(base, o.uep_ratio)
    g.edges  # noqa: B018  (build the cached edge table once, here)
    return g


def graph(snap: Snapshot, kind: str, opts: G.GraphOptions) -> G.Graph:
    """The recomputed graph of a snapshot (cached per snapshot file and options)."""
    return _graph(snap.path, _mtime(snap), _computed(kind), astuple(opts))


@st.cache_resource(show_spinner=False, max_entries=64)
def _heatmap(path, mtime, kind, opts, quantity, model, block, sort) -> go.Figure:
    g = _graph(path, mtime, _computed(kind), opts)
    return FG.graph_heatmap(g, quantity, model, block=block, sort_by_class=sort, clickable=True)


def heatmap(snap, kind, opts, quantity, model, *, sort: bool) -> go.Figure:
    """Matrix view of the graph ``kind`` (the inter-view graph: the real→virtual block)."""
    block = "inter-view" if kind == G.INTER_VIEW else "full"
    return _heatmap(snap.path, _mtime(snap), kind, astuple(opts), quantity, model, block, sort)


@st.cache_resource(show_spinner=False, max_entries=64)
def _positions(path, mtime, kind, key, top_k, layout, show, _nxg) -> dict:
    """Node positions of every vertex, computed once per edge choice and kept while the UEP ratio moves
    (the picture stays put; only the edges drawn change)."""
    return FN.node_positions(_nxg, layout)


@st.cache_resource(show_spinner=False, max_entries=64)
def _node_link(path, mtime, kind, opts, top_k, layout, show) -> go.Figure:
    g = _graph(path, mtime, _computed(kind), opts)
    by = N.rank_column(g)
    chosen = X.choose_edges(_shown_edges(g, kind), show, top_k, by=by)
    nxg = N.to_networkx(g, by=by, edges=chosen)
    pos = _positions(path, mtime, kind, _key(G.GraphOptions(*opts)), top_k, layout, show, nxg)
    n_pruned = int((~chosen.kept).sum())
    title = f"Node-link view: {len(chosen)} edges ({n_pruned} pruned, red) — {X.SHOW[show]}"
    return FN.node_link_figure(nxg, value=by, layout=layout, pos=pos, title=title)


def _shown_edges(g: G.Graph, kind: str) -> pd.DataFrame:
    """The edges of the graph ``kind``: the inter-view graph keeps the real→virtual edges only."""
    return g.edges[g.edges.u_view != g.edges.v_view] if kind == G.INTER_VIEW else g.edges


def node_link(snap, kind, opts, *, top_k: int, layout: str, show: str = "both") -> go.Figure:
    """Node-link view of the edges :func:`vrm_viz.explain.choose_edges` picks (``show``: kept, pruned,
    both, or by UEP score; top-k by loss with a teacher, else UEP score, else length)."""
    return _node_link(snap.path, _mtime(snap), kind, astuple(opts), top_k, layout, show)


@st.cache_data(show_spinner="Comparing teacher and student…", max_entries=64)
def _agreement(path: str, mtime: float, opts: tuple) -> dict:
    return C.agreement(state.snapshot(path, mtime), G.GraphOptions(*opts), build=graph)


def agreement(snap: Snapshot, opts: G.GraphOptions) -> dict:
    return _agreement(snap.path, _mtime(snap), astuple(opts))


@st.cache_data(show_spinner="Recomputing every snapshot of the run…", max_entries=32)
def _evolution(what: str, snaps: tuple, opts: tuple) -> tuple[pd.DataFrame, list[str]]:
    loaded, broken = [], []
    for path, mtime in snaps:
        try:
            loaded.append(state.snapshot(path, mtime))
        except RunError as e:
            broken.append(f"{os.path.basename(path)} ({e})")
    fn = C.agreement_evolution if what == "agreement" else C.pruning_evolution
    return fn(loaded, G.GraphOptions(*opts), build=graph), broken


def _evolution_of(what: str, run: Run, opts: G.GraphOptions, sources: list[str] | None) -> pd.DataFrame:
    df, broken = _evolution(what, _snapshots(run, sources), astuple(opts))
    if broken:
        st.warning("Left out unreadable snapshot files: " + "; ".join(broken))
    return df


def agreement_evolution(run: Run, opts: G.GraphOptions, sources: list[str] | None = None) -> pd.DataFrame:
    """Teacher–student agreement metrics of the snapshots of ``run`` (of the batches ``sources``; default
    all), one row per snapshot. Only the chosen batches are recomputed: moving a slider stays fast."""
    return _evolution_of("agreement", run, opts, sources)


def pruning_evolution(run: Run, opts: G.GraphOptions, sources: list[str] | None = None) -> pd.DataFrame:
    """Where UEP prunes, for the snapshots of ``run`` (of the batches ``sources``; long table: snapshot ×
    category)."""
    return _evolution_of("pruning", run, opts, sources)


# ---------------------------------------------------------------- shared controls
def init_widget(key: str, options: list, default) -> None:
    """Give a widget a valid session value before it is drawn (runs and batches change the options); a
    list value (multiselect) keeps its valid items, or falls back to ``default``."""
    value = st.session_state.get(key)
    if isinstance(default, list):
        kept = [v for v in value or [] if v in options]
        st.session_state[key] = kept if value is not None and (kept or not value) else default
    elif value not in options:
        st.session_state[key] = default


def pick_snapshot(run: Run, prefix: str) -> Snapshot | None:
    """Batch (probe or a logged training batch) and epoch selectors; the snapshot, or None after a message."""
    snaps = run.snapshots
    if snaps.empty:
        st.warning(
            f"Run **{run.name}** has no relation snapshots, so there is no graph to rebuild. Snapshots are "
            "saved by the trainer for the epochs listed in `snapshot.epochs`; pick another run."
        )
        return None
    sources = ([PROBE] if (snaps.kind == "probe").any() else []) + [
        f"training batch {b}" for b in sorted(snaps.loc[snaps.kind == "train", "batch"].unique())
    ]
    col_b, col_e = st.columns(2)
    linked = url.take("batch")
    if linked is not None:
        st.session_state[f"{prefix}_batch"] = PROBE if linked == "probe" else f"training batch {linked}"
    init_widget(f"{prefix}_batch", sources, sources[0])
    source = col_b.selectbox(
        "Batch",
        sources,
        key=f"{prefix}_batch",
        help="The fixed probe batch of test images (eval mode), or a training batch logged at that epoch.",
    )
    kind, batch = ("probe", -1) if source == PROBE else ("train", int(source.rsplit(" ", 1)[1]))
    sel = snaps[(snaps.kind == kind) & (snaps.batch == batch)]
    epochs = sorted(int(e) for e in sel.epoch.unique())
    linked = url.as_float(url.take("epoch"))
    if linked is not None and int(linked) in epochs:
        st.session_state[f"{prefix}_epoch"] = int(linked)
    init_widget(f"{prefix}_epoch", epochs, epochs[-1])
    epoch = col_e.selectbox("Epoch", epochs, key=f"{prefix}_epoch")
    url.share("batch", "probe" if kind == "probe" else batch)
    url.share("epoch", epoch)
    return state.load_snapshot(run, kind, epoch, batch)


def _apply_link(prefix: str) -> None:
    """Options given by the link the session was opened with (valid values only)."""
    ss = st.session_state
    is_edges = url.take("is_edges")
    if is_edges in ("cross_view", "all", "real_only"):
        ss[f"{prefix}_virtual"], ss[f"{prefix}_rep"] = is_edges != "real_only", is_edges == "cross_view"
    uep = url.take("uep")
    if uep in UEP_RULES:
        ss[f"{prefix}_uep"] = uep
    ratio = url.as_float(url.take("uep_ratio"))
    if ratio is not None and 0 <= ratio <= 0.95:
        ss[f"{prefix}_ratio"] = round(ratio, 2)
    zscore = url.as_bool(url.take("zscore"))
    if zscore is not None:
        ss[f"{prefix}_zscore"] = zscore
    delta = url.as_float(url.take("huber_delta"))
    if delta is not None and 0.01 <= delta <= 100:
        ss[f"{prefix}_delta"] = delta


def trained_with(run: Run, base: G.GraphOptions) -> str:
    """What the options panel says about the run's own options (only VRM runs were trained with them)."""
    if run.method == "vrm":
        return (
            f"Trained with is_edges={base.is_edges}, uep={base.uep}, ratio={base.uep_ratio}, zscore="
            f"{base.zscore}, δ={base.huber_delta}."
        )
    what = "snapshots of checkpoints" if run.method == "live" else f"trained with `{run.method}`"
    return (
        f"**{run.name}** is {what}, not VRM: it has no VRM options, so these start from VRM's defaults and "
        "show the graphs VRM would build from its logits."
    )


def graph_options(run: Run, prefix: str) -> G.GraphOptions:
    """REP / UEP / z-score / δ controls, starting from the options the run trained with (or VRM's
    defaults for other methods), then from the link's; written back to the URL."""
    ss, base = st.session_state, G.GraphOptions.from_config(run.config)
    names = ("virtual", "rep", "uep", "ratio", "zscore", "delta")  # (widget states vanish on other pages)
    if ss.get(f"{prefix}_opts_run") != run.path or any(f"{prefix}_{n}" not in ss for n in names):
        ss[f"{prefix}_opts_run"] = run.path
        ss[f"{prefix}_virtual"], ss[f"{prefix}_rep"] = base.virtual, base.is_edges != "all"
        ss[f"{prefix}_uep"], ss[f"{prefix}_ratio"] = base.uep, min(float(base.uep_ratio), 0.95)
        ss[f"{prefix}_zscore"], ss[f"{prefix}_delta"] = base.zscore, min(max(base.huber_delta, 0.01), 100.0)
    _apply_link(prefix)
    with st.container(border=True):
        c = st.columns([1, 1, 1.3, 1.6, 1, 1])
        virtual = c[0].toggle(
            "Virtual", key=f"{prefix}_virtual", help="Virtual views. Off: is_edges=real_only."
        )
        rep = c[1].toggle(
            "REP",
            key=f"{prefix}_rep",
            disabled=not virtual,
            help="Redundant-edge pruning. "
            "On: real→virtual edges only (is_edges=cross_view). Off: every pair u < v (all).",
        )
        uep = c[2].selectbox("UEP rule", UEP_RULES, key=f"{prefix}_uep", help=OPTION_HELP["uep"])
        ratio = c[3].slider(
            "UEP ratio",
            0.0,
            0.95,
            step=0.01,
            key=f"{prefix}_ratio",
            disabled=uep not in SCORED,
            help=OPTION_HELP["uep_ratio"],
        )
        zscore = c[4].toggle("z-score", key=f"{prefix}_zscore", help=OPTION_HELP["zscore"])
        delta = c[5].number_input(
            "Huber δ", 0.01, 100.0, step=0.25, key=f"{prefix}_delta", help=OPTION_HELP["huber_delta"]
        )
        st.caption(
            trained_with(run, base) + " Changing these re-runs `vrm_train.relations` on the saved logits."
        )
    is_edges = "real_only" if not virtual else ("cross_view" if rep else "all")
    opts = G.GraphOptions(is_edges, bool(zscore), uep, float(ratio), float(delta))
    for name, value in (("is_edges", is_edges), ("uep", uep), ("uep_ratio", ratio), ("zscore", zscore)):
        url.share(name, value)
    url.share("huber_delta", delta)
    return opts


def _clicked(selection) -> list | None:
    """The [u_id, v_id] of the first clicked point of a plotly selection (edge marker or heatmap cell)."""
    points = (selection or {}).get("selection", {}).get("points", []) if selection else []
    picked = [p.get("customdata") for p in points if isinstance(p.get("customdata"), list | tuple)]
    return list(picked[0]) if picked and len(picked[0]) == 2 else None


def edge_picker(g: G.Graph, kind: str, selections: list, prefix: str, *, source: str) -> tuple[int, int]:
    """Two endpoint selectors, set by a click on an edge of the node-link view or a heatmap cell
    (``selections``: the charts' selection states) or by the link's ``edge``; returns vertex ids. They
    follow the batch: another snapshot (``source``: its path) or graph starts again from its top edge."""
    labels = g.labels
    rows, cols = (
        (labels[: g.batch_size], labels[g.batch_size :]) if kind == G.INTER_VIEW else (labels, labels)
    )
    ss = st.session_state
    here = f"{source}|{kind}|{g.kind}"
    if ss.get(f"{prefix}_edge_source") != here:  # a vertex label such as r3 names another image here
        ss[f"{prefix}_edge_source"] = here
        for k in ("u", "v"):
            ss.pop(f"{prefix}_edge_{k}", None)
    top = N.top_edges(_shown_edges(g, kind), 1, N.rank_column(g))
    u0, v0 = (top.u.iloc[0], top.v.iloc[0]) if len(top) else (rows[0], cols[-1])
    linked = url.take("edge")
    if linked and linked.count(",") == 1:
        u, v = linked.split(",")
        if u in rows and v in cols:
            ss[f"{prefix}_edge_u"], ss[f"{prefix}_edge_v"] = u, v
    init_widget(f"{prefix}_edge_u", rows, u0)
    init_widget(f"{prefix}_edge_v", cols, v0)
    for i, selection in enumerate(selections):
        picked = _clicked(selection)
        if picked and ss.get(f"{prefix}_edge_applied{i}") != picked:
            ss[f"{prefix}_edge_applied{i}"] = picked
            if max(picked) < len(labels):
                u, v = (labels[int(j)] for j in picked)
                if u not in rows or v not in cols:
                    u, v = v, u  # a mirrored heatmap cell
                if u in rows and v in cols:
                    ss[f"{prefix}_edge_u"], ss[f"{prefix}_edge_v"] = u, v
    c1, c2 = st.columns(2)
    u = c1.selectbox("Endpoint u", rows, key=f"{prefix}_edge_u")
    v = c2.selectbox("Endpoint v", cols, key=f"{prefix}_edge_v")
    url.share("edge", f"{u},{v}")
    return labels.index(u), labels.index(v)


def describe_edge(row: pd.Series) -> str:
    """One line about an edge-table row: status and the values that exist (no teacher: no loss/cosine)."""
    values = [
        (label, row[col]) for label, col in (("loss", "loss"), ("cosine", "cosine"), ("UEP score", "score"))
    ]
    shown = "".join(f", {label} {value:.4g}" for label, value in values if pd.notna(value))
    return (
        f"Edge {row.u} – {row.v}: **{row.status}**{shown}; same class: {'yes' if row.same_class else 'no'}."
    )


def open_in_graphs(run: Run, prefix: str, snap: Snapshot, u: str, v: str) -> None:
    """Button callback: show edge u – v of this snapshot in the Affinity graphs page, with this page's options."""
    ss = st.session_state
    batch = PROBE if snap.kind == "probe" else f"training batch {snap.batch}"
    ss[state.run_key("graphs_run")] = run.name
    ss["graphs_batch"], ss["graphs_epoch"], ss["graphs_kind"] = batch, snap.epoch, G.INTER_SAMPLE
    ss["graphs_opts_run"] = run.path
    for name in ("virtual", "rep", "uep", "ratio", "zscore", "delta"):
        ss[f"graphs_{name}"] = ss[f"{prefix}_{name}"]
    ss["graphs_edge_source"] = f"{snap.path}|{G.INTER_SAMPLE}|{G.INTER_SAMPLE}"
    ss["graphs_edge_u"], ss["graphs_edge_v"] = u, v


@st.cache_data(show_spinner="Recomputing the runs' graphs…", max_entries=32)
def _across(paths: tuple, stamps: tuple, kind: str, epoch: int, batch: int, opts: tuple | None, _runs):
    return A.across_runs(
        list(_runs),
        kind=kind,
        epoch=epoch,
        batch=batch,
        opts=G.GraphOptions(*opts) if opts else None,
        build=graph,
    )


def across(runs: list[Run], kind: str, epoch: int, batch: int, opts: G.GraphOptions | None) -> pd.DataFrame:
    """:func:`vrm_viz.across.across_runs`, cached on the runs' snapshot files and the options."""
    paths = tuple(r.path for r in runs)
    stamps = tuple(_snapshots(r) for r in runs)
    return _across(paths, stamps, kind, epoch, batch, astuple(opts) if opts else None, tuple(runs))
