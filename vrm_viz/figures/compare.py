"""Plotly figures of the comparison pages (:mod:`vrm_viz.compare`): mean-logit maps, metric curves across
epochs, and where UEP prunes.

    fig = class_logit_figure(mean_logit_difference(snap), snap.classes)
    fig = lines_figure(long_metrics(evolution, ["is_cos_mean"]), x="epoch", y="value", color="metric", ...)
    fig = pruning_summary_figure(pruning_summary(graph))
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vrm_viz.figures.graphs import CLASS_COLORS, PRUNED


def class_logit_figure(diff: np.ndarray, classes: list[str], *, title: str = "") -> go.Figure:
    """C×C map: row c = true class, column d = logit of class d, value = mean (student − teacher) logit."""
    span = float(np.nanmax(np.abs(diff))) if np.isfinite(diff).any() else 1.0
    fig = go.Figure(
        go.Heatmap(
            z=diff,
            x=list(classes),
            y=list(classes),
            colorscale="RdBu",
            zmid=0.0,
            zmin=-span,
            zmax=span,
            hoverongaps=False,
            colorbar=dict(title="S − T"),
            hovertemplate="true class %{y}<br>logit of %{x}<br>student − teacher: %{z:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        title=title or "Mean logit difference (student − teacher) by true class",
        height=480,
        xaxis_title="logit of class d",
        yaxis_title="true class c",
        margin=dict(t=60, l=10, r=10, b=10),
    )
    fig.update_xaxes(type="category", tickangle=-45)
    fig.update_yaxes(type="category", autorange="reversed")
    return fig


def pruning_summary_figure(summary: pd.DataFrame, *, title: str = "Where UEP prunes") -> go.Figure:
    """Pruned fraction per category, one panel per group (pair type, inter-view, class); the dashed line is
    the overall pruned fraction."""
    groups = [g for g in dict.fromkeys(summary.group) if g != "all"]
    sizes = [max(int((summary.group == g).sum()), 1) for g in groups]
    fig = make_subplots(
        rows=1, cols=len(groups), column_widths=sizes, subplot_titles=groups, shared_yaxes=True
    )
    for i, group in enumerate(groups, 1):
        d = summary[summary.group == group]
        text = [f"{p}/{n}" for p, n in zip(d.pruned, d.edges, strict=True)]
        fig.add_trace(
            go.Bar(
                x=d.category,
                y=d.pruned_frac,
                text=text,
                name=group,
                marker_color=PRUNED,
                textposition="outside",
                textangle=0,
                textfont=dict(size=9),
                cliponaxis=False,
                hovertemplate="%{x}: %{y:.1%} pruned (%{text})<extra></extra>",
            ),
            row=1,
            col=i,
        )
    overall = summary.loc[summary.group == "all", "pruned_frac"]
    if len(overall) and groups:
        fig.add_hline(y=float(overall.iloc[0]), line_dash="dash", line_color="black", row="all", col="all")
    fig.update_layout(title=title, showlegend=False, height=440, margin=dict(t=80, l=10, r=10, b=10))
    fig.update_xaxes(tickangle=-35, automargin=True)
    fig.update_yaxes(title="pruned fraction", tickformat=".0%", row=1, col=1)
    return fig


def lines_figure(
    df: pd.DataFrame,
    *,
    x: str,
    y: str,
    color: str,
    dash: str | None = None,
    title: str,
    y_title: str,
    percent: bool = False,
) -> go.Figure:
    """One line per (color, dash) pair of a long table, e.g. a metric per epoch for each batch source."""
    fig = go.Figure()
    dashes = ["solid", "dash", "dot", "dashdot", "longdash"]
    names = list(dict.fromkeys(df[color]))
    styles = list(dict.fromkeys(df[dash])) if dash else [None]
    for i, name in enumerate(names):
        for j, style in enumerate(styles):
            d = df[(df[color] == name) & ((df[dash] == style) if dash else True)].sort_values(x)
            if d.empty:
                continue
            fig.add_trace(
                go.Scatter(
                    x=d[x],
                    y=d[y],
                    mode="lines+markers",
                    name=f"{name}" + (f" · {style}" if dash else ""),
                    line=dict(color=CLASS_COLORS[i % len(CLASS_COLORS)], dash=dashes[j % len(dashes)]),
                    legendgroup=str(name),
                )
            )
    fig.update_layout(title=title, height=460, xaxis_title=x, yaxis_title=y_title)
    fig.update_layout(legend=dict(orientation="h", y=-0.2, yanchor="top"), margin=dict(b=10))
    if percent:
        fig.update_yaxes(tickformat=".0%")
    return fig
