"""Plotly node-link view of a recomputed affinity graph (:func:`vrm_viz.nodelink.to_networkx`).

fig = node_link_figure(to_networkx(g, top_k=100), value="loss")  # nodes by class and view, pruned edges red
pos = node_positions(nxg, "circular")                            # reuse positions across redraws
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from vrm_viz.figures.graphs import PRUNED, UNDEFINED, class_color

VIEW_SYMBOLS = {"real": "circle", "virtual": "diamond", "class": "square"}


def node_positions(g: nx.Graph, layout: str = "spring", seed: int = 0) -> dict:
    """Vertex positions: a seeded spring layout, or a circle ordered by view then class."""
    if layout == "circular":
        nodes = sorted(g.nodes, key=lambda n: (g.nodes[n].get("view", ""), g.nodes[n].get("target", 0), n))
        return nx.circular_layout(nodes)
    if layout != "spring":
        raise ValueError(f"layout must be 'spring' or 'circular'; got {layout!r}")
    return nx.spring_layout(g, seed=seed, k=2 / math.sqrt(max(g.number_of_nodes(), 1)))


def _status(d: dict) -> str:
    """An edge-table row's status: its "status" column, else kept / pruned from "kept"."""
    return d.get("status") or ("kept" if d.get("kept", True) else "pruned")


def _segments(pos: dict, edges: list) -> tuple[list, list]:
    xs, ys = [], []
    for u, v, _ in edges:
        xs += [pos[u][0], pos[v][0], None]
        ys += [pos[u][1], pos[v][1], None]
    return xs, ys


def node_link_figure(
    g: nx.Graph,
    *,
    value: str,
    layout: str = "spring",
    pos: dict | None = None,
    bins: int = 5,
    title: str = "",
) -> go.Figure:
    """Node-link view: nodes coloured by true class, real (●) / virtual (◆) by symbol, black outline = student
    wrong; kept edges coloured by ``value`` (binned), pruned edges red dashed; a clickable marker at each edge
    midpoint carries customdata [u_id, v_id]. ``pos``: precomputed :func:`node_positions`."""
    pos = pos or node_positions(g, layout)
    edges = list(g.edges(data=True))
    status = [_status(d) for _, _, d in edges]
    kept = [e for e, st in zip(edges, status, strict=True) if st == "kept"]
    pruned = [e for e, st in zip(edges, status, strict=True) if st == "pruned"]
    undefined = [e for e, st in zip(edges, status, strict=True) if st == "undefined"]
    vals = np.array([e[2].get(value, np.nan) for e in edges], dtype=float)
    finite = vals[np.isfinite(vals)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    hi = hi if hi > lo else lo + 1e-12
    fig = go.Figure()
    kept_vals = np.array([e[2].get(value, np.nan) for e in kept], dtype=float)
    idx = np.clip(((kept_vals - lo) / (hi - lo) * bins).astype(int, copy=False) if kept else [], 0, bins - 1)
    idx = np.where(np.isfinite(kept_vals), idx, 0) if kept else idx
    colors = sample_colorscale("Viridis", [(i + 0.5) / bins for i in range(bins)])
    first = True
    for i in range(bins):
        sel = [e for e, k in zip(kept, idx, strict=True) if k == i]
        if sel:
            xs, ys = _segments(pos, sel)
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines",
                    line=dict(color=colors[i], width=1.5),
                    name="kept edges",
                    legendgroup="kept",
                    showlegend=first,
                    hoverinfo="skip",
                )
            )
            first = False
    # pruned edges, and undefined ones (vertices that coincide: no direction, no loss, no gradient)
    for group, name, line in (
        (pruned, "pruned edges", dict(color=PRUNED, width=2, dash="dash")),
        (undefined, "undefined edges (no direction)", dict(color=UNDEFINED, width=1.5, dash="dot")),
    ):
        if group:
            xs, ys = _segments(pos, group)
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=name, hoverinfo="skip", line=line))
    mid_x = [(pos[u][0] + pos[v][0]) / 2 for u, v, _ in edges]
    mid_y = [(pos[u][1] + pos[v][1]) / 2 for u, v, _ in edges]
    hover = [
        f"{d.get('u')} – {d.get('v')}<br>{value}: {d.get(value, np.nan):.4g}<br>{st}"
        for (_, _, d), st in zip(edges, status, strict=True)
    ]
    fig.add_trace(
        go.Scatter(
            x=mid_x,
            y=mid_y,
            mode="markers",
            name="edges (click to inspect)",
            hovertext=hover,
            hoverinfo="text",
            customdata=[[u, v] for u, v, _ in edges],
            marker=dict(
                size=7,
                color=np.nan_to_num(vals, nan=lo),
                colorscale="Viridis",
                cmin=lo,
                cmax=hi,
                symbol=[{"kept": "circle", "pruned": "x"}.get(st, "diamond-open") for st in status],
                colorbar=dict(title=value[:12], x=1.02),
            ),
        )
    )
    for view, symbol in VIEW_SYMBOLS.items():
        nodes = [n for n, d in g.nodes(data=True) if d.get("view") == view]
        if not nodes:
            continue
        data = [g.nodes[n] for n in nodes]
        wrong = [d.get("pred_s", d.get("target")) != d.get("target") for d in data]
        text = [
            f"{d['label']} · {d.get('class')}"
            + (f"<br>student: {d['pred_s_class']}" if "pred_s_class" in d else "")
            + (f"<br>teacher: {d['pred_t_class']}" if d.get("pred_t_class") is not None else "")
            for d in data
        ]
        fig.add_trace(
            go.Scatter(
                x=[pos[n][0] for n in nodes],
                y=[pos[n][1] for n in nodes],
                mode="markers",
                name=f"{view} vertices",
                hovertext=text,
                hoverinfo="text",
                customdata=nodes,
                marker=dict(
                    size=13,
                    symbol=symbol,
                    color=[class_color(d["target"]) for d in data],
                    line=dict(color=["black" if w else "white" for w in wrong], width=2),
                ),
            )
        )
    classes = {d["target"]: d.get("class") for _, d in g.nodes(data=True)}
    for target, name in sorted(classes.items()):
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                name=str(name),
                marker=dict(size=10, color=class_color(target)),
            )
        )
    fig.update_layout(
        title=title or f"Node-link view: {g.number_of_edges()} edges ({len(pruned)} pruned)",
        height=700,
        xaxis=dict(visible=False),
        yaxis=dict(visible=False, scaleanchor="x"),
        margin=dict(t=60, l=10, r=10, b=10),
        legend=dict(itemsizing="constant", orientation="h", y=-0.02, yanchor="top"),
    )
    return fig
