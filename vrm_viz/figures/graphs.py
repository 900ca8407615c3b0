"""Plotly figures of recomputed affinity graphs (:mod:`vrm_viz.graphs`).

fig = graph_heatmap(g, "loss", sort_by_class=True)        # matrix view, real/virtual blocks delimited
fig = teacher_student_heatmaps(t, s, rows, cols, ...)     # one shared colour scale + their difference
fig = edge_vector_bars(edge_vectors(snap, kind, opts, u, v))

The node-link view: :mod:`vrm_viz.figures.nodelink`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from vrm_viz.graphs import INTER_CLASS, INTER_SAMPLE, INTER_VIEW, QUANTITIES, Graph

CLASS_COLORS = qualitative.Plotly + qualitative.Dark24
KEPT, PRUNED, UNDEFINED = "#2ca02c", "#d62728", "#9467bd"
_SCALES = {"loss": "Viridis", "length": "Viridis", "score": "Cividis", "cosine": "RdBu"}
_SHORT = {
    QUANTITIES[k]: v
    for k, v in (("loss", "ℓ"), ("cosine", "cos"), ("score", "score"), ("length", "‖x_u − x_v‖"))
}


def class_color(target: int) -> str:
    return CLASS_COLORS[int(target) % len(CLASS_COLORS)]


def _axis_labels(graph: Graph) -> list[str]:
    v = graph.vertices
    if graph.kind == INTER_CLASS:
        return v["label"].tolist()
    return [f"{lab} · {cls}" for lab, cls in zip(v["label"], v["class"], strict=True)]


def _mirror(m: np.ndarray) -> np.ndarray:
    """Show each stored edge in both cells (u, v) and (v, u): edges are undirected for display."""
    return np.where(np.isnan(m) & ~np.isnan(m.T), m.T, m)


def class_order(vertices: pd.DataFrame) -> np.ndarray:
    """Vertex permutation sorting by class within each view (views keep their order: real first)."""
    view = vertices["view"].map({"real": 0, "virtual": 1}).fillna(0).to_numpy()
    return np.lexsort((vertices["vertex"].to_numpy(), vertices["target"].to_numpy(), view))


def matrix_heatmap(
    z: np.ndarray,
    rows: list[str],
    cols: list[str],
    *,
    title: str,
    value_label: str,
    x_title: str,
    y_title: str,
    colorscale: str = "Viridis",
    zmid: float | None = None,
    status: bool = False,
    row_split: int | None = None,
    col_split: int | None = None,
    height: int = 620,
) -> go.Figure:
    """Heatmap of a matrix (rows top to bottom); ``status``: a categorical kept (0) / pruned (1) / undefined
    (2) map, NaN = not an edge; splits draw lines before that row/column (e.g. the real/virtual boundary)."""
    kw: dict = dict(z=z, x=cols, y=rows, colorscale=colorscale, hoverongaps=False, zmid=zmid)
    kw["hovertemplate"] = f"%{{y}} – %{{x}}<br>{value_label}: %{{z:.4g}}<extra></extra>"
    if status:
        names = np.array(["kept", "pruned", "undefined (no direction)"], dtype=object)
        text = np.where(np.isnan(z), "not an edge", names[np.nan_to_num(z).astype(int).clip(0, 2)])
        third = 1 / 3
        scale = [[0, KEPT], [third, KEPT], [third, PRUNED], [2 * third, PRUNED], [2 * third, UNDEFINED]]
        kw.update(text=text, colorscale=[*scale, [1, UNDEFINED]], zmin=0, zmax=2, zmid=None)
        kw["colorbar"] = dict(
            tickvals=[1 / 3, 1, 5 / 3], ticktext=["kept", "pruned", "undefined"], title="edge"
        )
        kw["hovertemplate"] = "%{y} – %{x}<br>%{text}<extra></extra>"
    else:
        kw["colorbar"] = dict(title=_SHORT.get(value_label, value_label[:14]))
    fig = go.Figure(go.Heatmap(**kw))
    line = dict(color="black", width=2)
    if row_split:
        fig.add_shape(
            type="line", x0=-0.5, x1=len(cols) - 0.5, y0=row_split - 0.5, y1=row_split - 0.5, line=line
        )
    if col_split:
        fig.add_shape(
            type="line", y0=-0.5, y1=len(rows) - 0.5, x0=col_split - 0.5, x1=col_split - 0.5, line=line
        )
    fig.update_layout(title=title, height=height, margin=dict(t=60, l=10, r=10, b=10))
    fig.update_xaxes(title=x_title, type="category", tickangle=-60, tickfont=dict(size=9))
    fig.update_yaxes(title=y_title, type="category", autorange="reversed", tickfont=dict(size=9))
    return fig


def graph_heatmap(
    graph: Graph,
    quantity: str,
    model: str = "student",
    *,
    block: str = "full",
    sort_by_class: bool = False,
    height: int = 620,
    clickable: bool = False,
) -> go.Figure:
    """Matrix view of a graph quantity. block "full": every vertex, each edge shown in both cells, the
    real/virtual boundary drawn; "inter-view": the real→virtual block only (rows real, columns virtual).
    ``clickable``: an invisible marker on every edge cell carries customdata [u_id, v_id], so a click on a
    cell selects that edge (plotly heatmaps themselves cannot be selected)."""
    m = graph.matrix(quantity, model)
    labels = np.asarray(_axis_labels(graph), dtype=object)
    b = graph.batch_size
    if block == INTER_VIEW or block == "inter-view":
        rows_i, cols_i = np.arange(b), np.arange(b, 2 * b)
        if sort_by_class:
            rows_i, cols_i = (
                np.sort(i)[np.argsort(graph.vertices.target.to_numpy()[i], kind="stable")]
                for i in (rows_i, cols_i)
            )
        z, split, x_title, y_title = m[np.ix_(rows_i, cols_i)], None, "virtual view ṽ_n", "real view r_m"
    else:
        order = class_order(graph.vertices) if sort_by_class else np.arange(len(labels))
        rows_i = cols_i = order
        z = _mirror(m)[np.ix_(order, order)]
        split = b if graph.kind == INTER_SAMPLE and graph.options.virtual else None
        x_title = y_title = "class" if graph.kind == INTER_CLASS else "vertex"
    diff = quantity == "length" and model == "difference"
    scale = "RdBu" if diff else _SCALES.get(quantity, "Viridis")
    zmid = 0.0 if diff or quantity == "cosine" else None
    what = QUANTITIES[quantity] + (f" — {model}" if quantity == "length" else "")
    if diff:
        what = f"{QUANTITIES[quantity]} — student − teacher"
    kind = INTER_VIEW if block in (INTER_VIEW, "inter-view") else graph.kind
    title = f"{kind.capitalize()} graph: {what}"
    if quantity == "status":
        title += f" ({graph.n_pruned} of {graph.n_edges} edges pruned"
        title += f", {graph.n_undefined} undefined)" if graph.n_undefined else ")"
    fig = matrix_heatmap(
        z,
        labels[rows_i].tolist(),
        labels[cols_i].tolist(),
        title=title,
        value_label=QUANTITIES[quantity],
        x_title=x_title,
        y_title=y_title,
        colorscale=scale,
        zmid=zmid,
        status=quantity == "status",
        row_split=split,
        col_split=split,
        height=height,
    )
    if clickable:
        _add_cell_markers(fig, graph, labels, rows_i, cols_i, z)
    return fig


def _add_cell_markers(fig: go.Figure, graph: Graph, labels, rows_i, cols_i, z) -> None:
    """Invisible, selectable markers on the edge cells of a heatmap (customdata: the edge's [u_id, v_id])."""
    cand = graph.candidates | graph.candidates.T
    sub = cand[np.ix_(rows_i, cols_i)]
    r, c = np.nonzero(sub)
    u, v = np.asarray(rows_i)[r], np.asarray(cols_i)[c]
    trace = go.Scattergl if len(r) > 2000 else go.Scatter
    fig.add_trace(
        trace(
            x=labels[v],
            y=labels[u],
            mode="markers",
            marker=dict(color="rgba(0,0,0,0)", size=max(4, min(14, 600 // max(len(rows_i), 1)))),
            customdata=np.stack([u, v], axis=1),
            hovertext=[
                f"{labels[a]} – {labels[b]}: {val:.4g} (click to inspect)"
                for a, b, val in zip(u, v, z[r, c], strict=True)
            ],
            hoverinfo="text",
            name="edge cells",
            showlegend=False,
        )
    )


STACK_ABOVE = 32  # more rows than this: the three panels are stacked (each full width) to stay readable


def teacher_student_heatmaps(
    teacher: np.ndarray,
    student: np.ndarray,
    rows: list[str],
    cols: list[str],
    *,
    title: str,
    value_label: str,
    x_title: str = "",
    y_title: str = "",
    height: int | None = None,
) -> go.Figure:
    """Teacher and student on one shared colour scale, then student − teacher (diverging). Small matrices
    sit side by side; above :data:`STACK_ABOVE` rows the panels are stacked, each as wide as the page and
    about 6 px per row (at B = 96 real vertices: cells of ~10 px instead of < 2 px)."""
    n = len(rows)
    stack = n > STACK_ABOVE
    names = ("teacher", "student", "student − teacher")
    if stack:
        fig = make_subplots(rows=3, cols=1, subplot_titles=names, vertical_spacing=0.06)
        panel = height or int(min(max(6 * n, 420), 1000))
        height = 3 * panel + 160
    else:
        fig = make_subplots(rows=1, cols=3, subplot_titles=names, horizontal_spacing=0.13, shared_yaxes=True)
        height = height or 480
    both = np.concatenate([np.ravel(teacher), np.ravel(student)])
    lo, hi = (float(np.nanmin(both)), float(np.nanmax(both))) if np.isfinite(both).any() else (0.0, 1.0)
    diff = np.asarray(student) - np.asarray(teacher)
    span = float(np.nanmax(np.abs(diff))) if np.isfinite(diff).any() else 1.0
    hover = f"%{{y}} – %{{x}}<br>{value_label}: %{{z:.4g}}<extra></extra>"
    for i, (mat, axis) in enumerate(
        ((teacher, "coloraxis"), (student, "coloraxis"), (diff, "coloraxis2")), 1
    ):
        fig.add_trace(
            go.Heatmap(z=mat, x=cols, y=rows, coloraxis=axis, hovertemplate=hover, hoverongaps=False),
            row=i if stack else 1,
            col=1 if stack else i,
        )
    bar1 = dict(len=0.9, thickness=12, title=dict(text=value_label[:16], side="right"))
    bar2 = dict(x=1.01, len=0.9, title="S − T")
    if stack:
        top, bottom = fig.layout.yaxis2.domain[0], fig.layout.yaxis.domain[1]
        bar1.update(x=1.01, y=(top + bottom) / 2, len=bottom - top)
        bar2.update(y=sum(fig.layout.yaxis3.domain) / 2, len=fig.layout.yaxis3.domain[1])
    else:
        bar1.update(x=fig.layout.xaxis2.domain[1] + 0.01)
    fig.update_layout(
        title=title,
        height=height,
        margin=dict(t=80, l=10, r=10, b=10),
        coloraxis=dict(colorscale="Viridis", cmin=lo, cmax=hi, colorbar=bar1),
        coloraxis2=dict(colorscale="RdBu", cmid=0.0, cmin=-span, cmax=span, colorbar=bar2),
    )
    tick = 9 if n <= 64 else 7
    fig.update_xaxes(type="category", tickangle=-60, tickfont=dict(size=tick), title=x_title)
    fig.update_yaxes(type="category", autorange="reversed", tickfont=dict(size=tick))
    fig.update_yaxes(title=y_title, row=1, col=1)
    return fig


def edge_vector_bars(vectors: pd.DataFrame, *, title: str, x_title: str = "class") -> go.Figure:
    """Teacher and student edge vectors of one edge as grouped bars over their dimensions."""
    fig = go.Figure()
    for model, color in (("teacher", "#1f77b4"), ("student", "#ff7f0e")):
        if model in vectors:
            fig.add_trace(go.Bar(x=vectors["dimension"], y=vectors[model], name=model, marker_color=color))
    fig.update_layout(
        title=title, barmode="group", height=380, xaxis_title=x_title, yaxis_title="edge component"
    )
    return fig


def edge_images_figure(images: list[np.ndarray], titles: list[str], *, title: str = "") -> go.Figure:
    """The uint8 images [H, W, 3] of an edge's endpoints side by side."""
    fig = make_subplots(rows=1, cols=len(images), subplot_titles=titles, horizontal_spacing=0.04)
    for i, img in enumerate(images, 1):
        fig.add_trace(go.Image(z=img, hoverinfo="skip"), row=1, col=i)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(title=title, height=300, margin=dict(t=70, l=10, r=10, b=10))
    return fig
