"""Plotly figures of the Learn VRM page: the steps of the guided demo and the spurious-response bars.

Inputs are the tables of :mod:`vrm_viz.lesson` and :mod:`vrm_viz.spurious`; no streamlit here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from vrm_viz.figures.models import image_grid

__all__ = [
    "edge_loss_figure",
    "edges_figure",
    "ic_loss_figure",
    "logits_figure",
    "rep_figure",
    "spurious_figure",
    "uep_figure",
    "views_figure",
]

_SAMPLE_COLORS = qualitative.Bold + qualitative.Safe


def logits_figure(logits: pd.DataFrame, classes: list[str], *, height: int = 520) -> go.Figure:
    """Heatmaps of :func:`vrm_viz.lesson.logit_frame`: rows real/virtual view, columns teacher/student;
    one row per sample, one column per class."""
    fig = make_subplots(
        rows=2,
        cols=2,
        subplot_titles=[
            "Teacher, real view",
            "Student, real view",
            "Teacher, virtual view",
            "Student, virtual view",
        ],
        vertical_spacing=0.2,
        horizontal_spacing=0.03,
        shared_yaxes=True,  # one set of sample labels per row: none printed over the left panel's cells
    )
    for r, view in enumerate(("real", "virtual"), start=1):
        for c, model in enumerate(("teacher", "student"), start=1):
            d = logits[(logits.model == model) & (logits.view == view)].sort_values("sample")
            z = d[classes].to_numpy()
            fig.add_trace(
                go.Heatmap(
                    z=z,
                    x=classes,
                    y=[f"{s}: {lab}" for s, lab in zip(d["sample"], d["label"], strict=True)],
                    coloraxis="coloraxis",
                    text=np.round(z, 1),
                    texttemplate="%{text}",
                    hovertemplate="%{y} · %{x}: %{z:.3f}<extra></extra>",
                ),
                row=r,
                col=c,
            )
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_xaxes(tickangle=-40, automargin=True, tickfont={"size": 10})
    fig.update_layout(
        coloraxis={"colorscale": "Viridis", "colorbar": {"title": {"text": "logit"}}},
        height=height,
        margin={"t": 50, "l": 10, "r": 10, "b": 10},
    )
    return fig


def edges_figure(
    vertices: dict[str, pd.DataFrame],
    edges: pd.DataFrame,
    *,
    inter_view_only: bool = False,
    height: int = 520,
) -> go.Figure:
    """The 2B vertices of each model (circle = real view, diamond = virtual view, colour = sample) and one
    arrow per cross-view edge E_mn, from virtual vertex n to real vertex m (the direction of z_m − z̃_n).
    Inter-view edges (m = n) are drawn thick in the sample's colour, the others thin and grey."""
    models = list(vertices)
    fig = make_subplots(rows=1, cols=len(models), subplot_titles=[m.capitalize() for m in models])
    shown = edges[edges.inter_view] if inter_view_only else edges
    for col, model in enumerate(models, start=1):
        v = vertices[model]
        axis = "" if col == 1 else str(col)
        for _, e in shown.iterrows():
            head = v[(v.view == "real") & (v["sample"] == e.m)].iloc[0]
            tail = v[(v.view == "virtual") & (v["sample"] == e.n)].iloc[0]
            color = (
                _SAMPLE_COLORS[int(e.m) % len(_SAMPLE_COLORS)] if e.inter_view else "rgba(120,120,120,0.45)"
            )
            fig.add_annotation(
                x=head.x,
                y=head.y,
                ax=tail.x,
                ay=tail.y,
                xref=f"x{axis}",
                yref=f"y{axis}",
                axref=f"x{axis}",
                ayref=f"y{axis}",
                showarrow=True,
                arrowhead=3,
                arrowsize=1.2,
                arrowwidth=2.5 if e.inter_view else 1.0,
                arrowcolor=color,
                standoff=6,
                startstandoff=6,
                text="",
            )
        for view, symbol in (("real", "circle"), ("virtual", "diamond")):
            d = v[v.view == view]
            fig.add_trace(
                go.Scatter(
                    x=d.x,
                    y=d.y,
                    mode="markers+text",
                    text=[f"z{s}" if view == "real" else f"z̃{s}" for s in d["sample"]],
                    # real labels above, virtual below: a sample's two views sit close together
                    textposition="top center" if view == "real" else "bottom center",
                    textfont={"size": 12},
                    marker={
                        "size": 14,
                        "symbol": symbol,
                        "color": [_SAMPLE_COLORS[int(s) % len(_SAMPLE_COLORS)] for s in d["sample"]],
                        "line": {"width": 1, "color": "black"},
                    },
                    name=f"{view} view",
                    legendgroup=view,
                    showlegend=col == 1,
                    customdata=d["label"],
                    hovertemplate="%{text} · %{customdata}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(title_text="PC 1")
    fig.update_yaxes(title_text="PC 2")
    fig.update_layout(height=height, margin={"t": 40})
    return fig


def views_figure(image: np.ndarray, image_v: np.ndarray, labels: list[str]) -> go.Figure:
    """Real views (top row) above their virtual views (bottom row); uint8 [B, C, H, W] arrays."""

    def show(x):
        x = np.transpose(x, (1, 2, 0))
        return x[:, :, 0] if x.shape[2] == 1 else x

    imgs = [show(x) for x in image] + [show(x) for x in image_v]
    titles = [f"real {lab}" for lab in labels] + [f"virtual {lab.split(':')[0]}" for lab in labels]
    return image_grid(imgs, titles, cols=len(labels), size=150)


_REP_CODES = {"self": 0, "intra-view": 1, "anti-symmetric": 2, "kept": 3}
_REP_COLORS = ["#ffffff", "#d9d9d9", "#f4a582", "#1a9850"]


def rep_figure(rep: pd.DataFrame, batch_size: int, *, height: int = 480) -> go.Figure:
    """The full 2B×2B edge grid of :func:`vrm_viz.lesson.rep_frame`: green = kept cross-view edge,
    orange = dropped as the negative of a kept edge, grey = dropped as intra-view, white = no self-loop."""
    b = batch_size
    names = [f"z{i}" for i in range(b)] + [f"z̃{i}" for i in range(b)]
    code = np.zeros((2 * b, 2 * b))
    text = np.full((2 * b, 2 * b), "self-loop: undefined", dtype=object)
    for _, r in rep.iterrows():
        kind = "kept" if r.kept else ("anti-symmetric" if r.reason.startswith("anti") else "intra-view")
        code[r.u, r.v] = _REP_CODES[kind]
        text[r.u, r.v] = f"{r.edge}: {r.reason}"
    n = len(_REP_COLORS)
    scale = [[k / n + e, c] for k, c in enumerate(_REP_COLORS) for e in (0.0, 1.0 / n)]
    fig = go.Figure(
        go.Heatmap(
            z=code,
            x=names,
            y=names,
            zmin=-0.5,
            zmax=n - 0.5,
            colorscale=scale,
            text=text,
            xgap=2,
            ygap=2,
            hovertemplate="%{text}<extra></extra>",
            colorbar={"tickvals": list(range(n)), "ticktext": list(_REP_CODES), "title": {"text": "edge"}},
        )
    )
    fig.update_yaxes(autorange="reversed", title_text="from vertex u")
    fig.update_xaxes(title_text="to vertex v", side="top")
    fig.update_layout(height=height, margin={"t": 60})
    return fig


def _grid(df: pd.DataFrame, value: str, b: int) -> np.ndarray:
    z = np.full((b, b), np.nan)
    z[df.m.to_numpy(), df.n.to_numpy()] = df[value].to_numpy()
    return z


def _edge_heatmap(df, value, b, title, colorscale, label, height):
    z = _grid(df, value, b)
    kept = _grid(df, "kept", b).astype(bool)
    text = np.where(kept, np.vectorize(lambda x: f"{x:.3f}")(z), "✂ pruned")
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[f"z̃{i}" for i in range(b)],
            y=[f"z{i}" for i in range(b)],
            colorscale=colorscale,
            text=text,
            texttemplate="%{text}",
            xgap=2,
            ygap=2,
            colorbar={"title": {"text": label}},
            hovertemplate="edge %{y}→%{x}: %{text}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", title_text="real vertex m")
    fig.update_xaxes(title_text="virtual vertex n", side="top")
    fig.update_layout(height=height, title={"text": title, "y": 0.98}, margin={"t": 90})
    return fig


def uep_figure(uep: pd.DataFrame, batch_size: int, *, height: int = 460) -> go.Figure:
    """UEP scores of the B² cross-view edges (:func:`vrm_viz.lesson.uep_frame`); pruned cells say so."""
    return _edge_heatmap(
        uep, "score", batch_size, "UEP score (higher = less reliable)", "YlOrRd", "score", height
    )


def edge_loss_figure(losses: pd.DataFrame, batch_size: int, *, height: int = 460) -> go.Figure:
    """Per-edge Huber losses ℓ_mn (:func:`vrm_viz.lesson.loss_summary`); pruned edges marked."""
    return _edge_heatmap(losses, "loss", batch_size, "Per-edge loss ℓ_mn", "Blues", "ℓ", height)


def ic_loss_figure(ic: pd.DataFrame, *, height: int = 460) -> go.Figure:
    """Per-edge IC losses ℓ_cd between classes (upper triangle; :func:`vrm_viz.lesson.ic_loss_matrix`)."""
    fig = go.Figure(
        go.Heatmap(
            z=ic.to_numpy(),
            x=list(ic.columns),
            y=list(ic.index),
            colorscale="Purples",
            xgap=1,
            ygap=1,
            colorbar={"title": {"text": "ℓ"}},
            hovertemplate="%{y} – %{x}: %{z:.4f}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(height=height, title={"text": "Inter-class edges (IC graph)"}, margin={"t": 50})
    return fig


def spurious_figure(df: pd.DataFrame, *, height_per_loss: int = 170) -> go.Figure:
    """One panel per loss of :func:`vrm_viz.spurious.spurious_gradients`: the change in each sample's
    logit gradient caused by the corruption (red = the corrupted sample). Each panel has its own y-scale."""
    losses = list(dict.fromkeys(df["loss"]))
    labels = [df.loc[df.loss == name, "label"].iloc[0] for name in losses]
    fig = make_subplots(
        rows=len(losses), cols=1, shared_xaxes=True, subplot_titles=labels, vertical_spacing=0.06
    )
    for row, name in enumerate(losses, start=1):
        d = df[df.loss == name]
        fig.add_trace(
            go.Bar(
                x=d["sample"],
                y=d["change"],
                marker_color=np.where(d["corrupted"], "#d62728", "#4c78a8").tolist(),
                showlegend=False,
                customdata=np.stack([d["grad_clean"], d["grad_corrupted"]], axis=1),
                hovertemplate=(
                    "sample %{x}<br>‖Δ gradient‖ %{y:.3g}<br>clean ‖g‖ %{customdata[0]:.3g}"
                    "<br>corrupted ‖g‖ %{customdata[1]:.3g}<extra></extra>"
                ),
            ),
            row=row,
            col=1,
        )
    fig.update_xaxes(title_text="sample of the batch", row=len(losses), col=1, dtick=1)
    fig.update_yaxes(title_text="‖Δ∂L/∂s‖", rangemode="tozero")
    fig.update_layout(height=height_per_loss * len(losses) + 60, margin={"t": 40})
    return fig
