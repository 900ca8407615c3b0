"""Figures that explain pruning and compare runs: the UEP score histogram with its cut-off, the endpoints'
class probabilities, and metric deltas of several runs against a baseline.

    fig = score_histogram_figure(g.edges, score_cutoff(g), rule="cross_entropy")
    fig = endpoint_probability_figure(endpoint_probabilities(snap, g, [u, v]))
    fig = delta_bars_figure(with_deltas(across_runs(runs), "kd"), ["cka_logits", "is_cos_mean"], "kd")
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vrm_viz.figures.graphs import KEPT, PRUNED


def score_histogram_figure(
    edges: pd.DataFrame, cutoff: float | None, *, rule: str, bins: int = 60, highlight: float | None = None
) -> go.Figure:
    """Stacked histogram of the UEP scores of kept and pruned edges, the cut-off as a dashed line and
    ``highlight`` (one edge's score) as a solid one."""
    scores = edges.score.to_numpy(dtype=float)
    finite = scores[np.isfinite(scores)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    edges_ = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    mids, width = (edges_[:-1] + edges_[1:]) / 2, edges_[1] - edges_[0]
    fig = go.Figure()
    for status, color in (("kept", KEPT), ("pruned", PRUNED)):
        sel = scores[(edges.status == status).to_numpy() & np.isfinite(scores)]
        counts, _ = np.histogram(
            sel, bins=edges_
        )  # binned here: the figure holds 2·bins numbers, not B² scores
        fig.add_trace(
            go.Bar(
                x=mids,
                y=counts,
                width=width,
                name=f"{status} ({sel.size})",
                marker_color=color,
                hovertemplate=f"{status}<br>score ≈ %{{x:.3g}}<br>%{{y}} edges<extra></extra>",
            )
        )
    if cutoff is not None:
        fig.add_vline(
            x=cutoff, line=dict(color="black", dash="dash"), annotation_text=f"cut-off {cutoff:.3g}"
        )
    if highlight is not None and np.isfinite(highlight):
        fig.add_vline(
            x=highlight,
            line=dict(color="#9467bd", width=3),
            annotation_text="this edge",
            annotation_position="bottom right",
        )
    fig.update_layout(
        title=f"UEP scores ({rule}): edges scoring above the cut-off are pruned",
        barmode="stack",
        xaxis_title="UEP score J",
        yaxis_title="edges",
        height=360,
        margin=dict(t=60, l=10, r=10, b=10),
        legend=dict(orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right"),
    )
    return fig


def endpoint_probability_figure(probs: pd.DataFrame, *, title: str = "") -> go.Figure:
    """One panel per endpoint: horizontal bars of the student's and teacher's most probable classes
    (the true class marked ✓)."""
    vertices = list(dict.fromkeys(probs.label))
    fig = make_subplots(rows=1, cols=max(len(vertices), 1), subplot_titles=vertices, horizontal_spacing=0.12)
    colors = {"teacher": "#1f77b4", "student": "#ff7f0e"}
    for col, label in enumerate(vertices, 1):
        part = probs[probs.label == label]
        order = part.groupby("class", sort=False)["prob"].max().sort_values(ascending=True).index.tolist()
        truth = set(part.loc[part["true"], "class"])
        names = {c: f"{c} ✓" if c in truth else c for c in order}
        for model in ("teacher", "student"):
            m = part[part.model == model].set_index("class").reindex(order)
            fig.add_trace(
                go.Bar(
                    x=m.prob,
                    y=[names[c] for c in order],
                    orientation="h",
                    name=model,
                    marker_color=colors[model],
                    showlegend=col == 1,
                    hovertemplate=f"{model}<br>%{{y}}: %{{x:.3f}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(range=[0, 1], title="probability", row=1, col=col)
    fig.update_layout(
        title=title or "Class probabilities at the two endpoints (softmax of raw logits, T = 1)",
        barmode="group",
        height=320,
        margin=dict(t=70, l=10, r=10, b=10),
    )
    return fig


def delta_bars_figure(frame: pd.DataFrame, metrics: list[str], baseline: str, *, labels=None) -> go.Figure:
    """One panel per metric: each run's difference to ``baseline`` (the "Δ metric" columns of
    :func:`vrm_viz.across.with_deltas`), green above zero, red below."""
    labels = labels or {}
    width = max(
        14, 110 // max(len(metrics), 1)
    )  # characters per title line: titles never run into each other
    titles = ["<br>".join(textwrap.wrap(labels.get(m, m), width)) for m in metrics]
    fig = make_subplots(rows=1, cols=max(len(metrics), 1), subplot_titles=titles, horizontal_spacing=0.06)
    fig.update_annotations(font_size=11)
    others = frame[frame.run != baseline]
    for col, metric in enumerate(metrics, 1):
        d = pd.to_numeric(others[f"Δ {metric}"])
        fig.add_trace(
            go.Bar(
                x=others.run,
                y=d,
                marker_color=np.where(d.fillna(0) >= 0, "#2ca02c", "#d62728"),
                showlegend=False,
                hovertemplate="%{x}<br>Δ %{y:.4g}<extra></extra>",
            ),
            row=1,
            col=col,
        )
        fig.add_hline(y=0, line=dict(color="black", width=1), row=1, col=col)
    fig.update_xaxes(tickangle=-45, automargin=True)
    fig.update_layout(
        title=f"Difference to the baseline run {baseline}", height=440, margin=dict(t=110, l=10, r=10, b=10)
    )
    return fig
