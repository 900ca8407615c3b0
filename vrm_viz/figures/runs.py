"""Plotly figures of the Runs and Ablations pages; each takes the tables of :mod:`vrm_viz.runstats`.

fig = accuracy_figure(accuracy_curves(runs))      # test solid, train dashed, one colour per run
fig = terms_figure(term_curves(runs, terms))      # one subplot per loss term
fig = seed_bars_figure(seed_groups(runs))         # best and last test top-1, mean ± std over seeds
fig = parcoords_figure(options_frame(runs), ["vrm.uep", "vrm.lambda_ic"], color="best_top1")
"""

from __future__ import annotations

import math
import numbers

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from vrm_viz.runstats import MISSING, option_text

PALETTE = qualitative.Plotly + qualitative.D3


def run_colors(names: list[str]) -> dict[str, str]:
    """A stable colour per run name (in the order given), shared by every figure of a page."""
    return {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(dict.fromkeys(names))}


def accuracy_figure(curves: pd.DataFrame, *, height: int = 460) -> go.Figure:
    """Top-1 per epoch from a ``run, epoch, split, top1`` table: test solid, train dashed (the gap shows
    how much a run overfits its training set)."""
    colors = run_colors(curves["run"].tolist())
    fig = go.Figure()
    for run, color in colors.items():
        for split, dash in (("test", "solid"), ("train", "dash")):
            d = curves[(curves.run == run) & (curves.split == split)].sort_values("epoch")
            if d.empty:
                continue
            fig.add_trace(
                go.Scatter(
                    x=d.epoch,
                    y=d.top1,
                    mode="lines+markers",
                    name=f"{run} · {split}",
                    legendgroup=run,
                    line={"color": color, "dash": dash},
                    marker={"size": 6, "symbol": "circle" if split == "test" else "circle-open"},
                    hovertemplate=f"{run}<br>{split} top-1 %{{y:.2f}}% at epoch %{{x}}<extra></extra>",
                )
            )
    fig.update_layout(
        title="Top-1 accuracy per epoch: test (solid) vs train (dashed)",
        xaxis_title="epoch",
        yaxis_title="top-1 accuracy (%)",
        height=height,
        legend={"groupclick": "togglegroup"},
        margin={"t": 60, "b": 40},
    )
    fig.update_xaxes(dtick=1)
    return fig


def terms_figure(curves: pd.DataFrame, *, cols: int = 2, height_per_row: int = 280) -> go.Figure:
    """One subplot per loss term of a ``run, epoch, term, value`` table; a run's colour is the same in
    every subplot and in :func:`accuracy_figure` when both get the runs in the same order."""
    terms = list(dict.fromkeys(curves["term"].tolist()))
    cols = max(1, min(cols, len(terms)))
    rows = max(1, math.ceil(len(terms) / cols))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=terms or ["no loss term chosen"])
    colors = run_colors(curves["run"].tolist())
    for i, term in enumerate(terms):
        for run, color in colors.items():
            d = curves[(curves.term == term) & (curves.run == run)].sort_values("epoch")
            if d.empty:
                continue
            fig.add_trace(
                go.Scatter(
                    x=d.epoch,
                    y=d.value,
                    mode="lines+markers",
                    name=run,
                    legendgroup=run,
                    showlegend=i == 0 or run not in set(curves[curves.term.isin(terms[:i])].run),
                    line={"color": color},
                    hovertemplate=f"{run}<br>{term} %{{y:.4g}} at epoch %{{x}}<extra></extra>",
                ),
                row=i // cols + 1,
                col=i % cols + 1,
            )
    fig.update_xaxes(title_text="epoch", dtick=1)
    fig.update_layout(
        title="Loss terms per epoch (training averages; test/val losses on their split)",
        height=max(320, rows * height_per_row + 80),
        margin={"t": 80, "b": 40},
    )
    return fig


def seed_bars_figure(groups: pd.DataFrame, *, zoom: bool = True, height: int = 440) -> go.Figure:
    """Bars of mean best and mean last test top-1 per seed group, error bars ± one std over seeds.

    ``zoom`` (default) starts the y axis just below the lowest bar instead of at zero (small gaps become
    visible). Value labels sit inside the bars, horizontal, and are hidden where they would not fit (never
    printed over each other); the hover shows them all."""
    fig = go.Figure()
    series = (
        ("best", "best test top-1 (max over epochs)", "#1f77b4"),
        ("last", "last test top-1 (final epoch)", "#ff7f0e"),
    )
    for prefix, label, color in series:
        mean, std = groups[f"{prefix}_mean"], groups[f"{prefix}_std"]
        text = [
            f"{m:.2f} ± {s:.2f}" if n > 1 else f"{m:.2f} (1 seed)"
            for m, s, n in zip(mean, std.fillna(0.0), groups.n, strict=True)
        ]
        fig.add_trace(
            go.Bar(
                x=groups.group,
                y=mean,
                name=label,
                marker_color=color,
                error_y={"type": "data", "array": std.fillna(0.0).tolist(), "visible": True},
                text=text,
                textposition="inside",
                insidetextanchor="end",
                textangle=0,
                customdata=list(zip(groups.n, groups.seeds, strict=True)),
                hovertemplate=(
                    f"%{{x}}<br>{label}<br>%{{text}}<br>n=%{{customdata[0]}} seeds: %{{customdata[1]}}"
                    "<extra></extra>"
                ),
            )
        )
    fig.update_layout(
        title="Test top-1 over seeds: mean ± std (error bar) of the best and of the last epoch",
        barmode="group",
        yaxis_title="top-1 accuracy (%)",
        height=height,
        margin={"t": 60, "b": 40},
        legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 1, "xanchor": "right"},
        uniformtext={"minsize": 9, "mode": "hide"},
    )
    fig.update_xaxes(tickangle=-30, automargin=True)
    if zoom and len(groups):
        spread = [(groups[f"{p}_mean"], groups[f"{p}_std"].fillna(0.0)) for p in ("best", "last")]
        low = float(min((m - s).min() for m, s in spread))
        high = float(max((m + s).max() for m, s in spread))
        pad = max(1.0, 0.15 * (high - low))
        fig.update_yaxes(range=[max(0.0, low - pad), min(100.0, high + pad)])
    return fig


def _is_numeric(values: list) -> bool:
    return all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values)


def parcoords_dimension(label: str, values: list) -> dict:
    """A ``go.Parcoords`` dimension: numbers as they are; anything else (strings, booleans, options a run's
    method lacks) as categories coded 0..k-1 with their labels as tick text."""
    values = list(values)
    if _is_numeric(values) and not any(isinstance(v, float) and math.isnan(v) for v in values):
        return {"label": label, "values": values}
    labels = [option_text(v) for v in values]
    cats = sorted(set(labels), key=lambda c: (c == MISSING, c))
    code = {c: i for i, c in enumerate(cats)}
    return {
        "label": label,
        "values": [code[c] for c in labels],
        "tickvals": list(range(len(cats))),
        "ticktext": cats,
        "range": [-0.25, len(cats) - 0.75] if len(cats) > 1 else [-1, 1],
    }


def parcoords_figure(frame: pd.DataFrame, options: list[str], *, color: str = "best_top1", height: int = 480):
    """Parallel coordinates of ``options`` (columns of ``frame``) then the two accuracies, one line per run
    coloured by ``color``. Rows whose ``color`` is missing (runs without a finished epoch) are dropped."""
    frame = frame[frame[color].notna()]
    dims = [parcoords_dimension(o, frame[o].tolist()) for o in options]
    dims += [{"label": c.replace("_", " "), "values": frame[c].tolist()} for c in ("best_top1", "last_top1")]
    fig = go.Figure(
        go.Parcoords(
            line={
                "color": frame[color].tolist(),
                "colorscale": "Viridis",
                "showscale": True,
                "colorbar": {"title": {"text": color.replace("_", " ")}},
            },
            dimensions=dims,
            labelangle=-20,
            labelside="top",
        )
    )
    fig.update_layout(
        title=f"Options vs accuracy ({len(frame)} runs, colour: {color.replace('_', ' ')})",
        height=height,
        margin={"t": 150, "l": 70, "r": 70, "b": 30},
    )
    return fig
