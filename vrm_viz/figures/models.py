"""Plotly figures of the Embeddings and Attributions pages (data in, figure out; no streamlit).

fig = embedding_figure(embedding_frame(snap, method="pca"))     # teacher | student, colour = class
fig = image_grid([img0, img1], ["real", "virtual"], cols=2)      # uint8 [H, W] or [H, W, 3] images
fig = attribution_figure(explain(models, snap, [0, 1], method="saliency"))
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

__all__ = ["attribution_figure", "class_colors", "embedding_figure", "image_grid", "snapshot_views_figure"]

_PALETTE = qualitative.Plotly + qualitative.Dark24


def class_colors(labels: list[str]) -> dict[str, str]:
    """A stable colour per class name, in the order given."""
    return {c: _PALETTE[i % len(_PALETTE)] for i, c in enumerate(dict.fromkeys(labels))}


def embedding_figure(df: pd.DataFrame, *, classes: list[str] | None = None, height: int = 520) -> go.Figure:
    """Scatter of an :func:`vrm_viz.embeddings.embedding_frame` table, one panel per model (teacher left,
    student right), one colour per class; a cross marks a sample the model misclassifies. Each point
    carries its batch position as ``customdata`` (read back from a selection)."""
    models = [m for m in ("teacher", "student") if m in set(df["model"])]
    colors = class_colors(classes or sorted(df["label"].unique()))
    fig = make_subplots(rows=1, cols=len(models), subplot_titles=[m.capitalize() for m in models])
    for col, model in enumerate(models, start=1):
        part = df[df["model"] == model]
        for label, color in colors.items():
            d = part[part["label"] == label]
            if d.empty:
                continue
            fig.add_trace(
                go.Scatter(
                    x=d["x"],
                    y=d["y"],
                    mode="markers",
                    name=label,
                    legendgroup=label,
                    showlegend=col == 1,
                    customdata=d["sample"].to_numpy(),
                    marker={
                        "color": color,
                        "size": 10,
                        "symbol": np.where(d["correct"], "circle", "x").tolist(),
                        "line": {"width": 0.5, "color": "white"},
                    },
                    text=[
                        f"sample {s} (index {i})<br>class: {lab}<br>{model} says: {p}"
                        for s, i, lab, p in zip(
                            d["sample"], d["index"], d["label"], d["predicted_label"], strict=True
                        )
                    ],
                    hovertemplate="%{text}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(showticklabels=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, zeroline=False)
    fig.update_layout(height=height, legend_title_text="class", dragmode="lasso", margin={"t": 40})
    return fig


def _rgb(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    return np.repeat(img[:, :, None], 3, axis=2) if img.ndim == 2 else img


def image_grid(images: list[np.ndarray], titles: list[str], *, cols: int = 6, size: int = 130) -> go.Figure:
    """uint8 images ([H, W] grey or [H, W, 3]) in a grid, row by row, each with its title."""
    if len(images) != len(titles):
        raise ValueError("one title per image")
    if not images:
        raise ValueError("no images to show")
    cols = max(1, min(cols, len(images)))
    rows = -(-len(images) // cols)
    fig = make_subplots(
        rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.02, vertical_spacing=0.08
    )
    for k, img in enumerate(images):
        fig.add_trace(go.Image(z=_rgb(img), hoverinfo="skip"), row=k // cols + 1, col=k % cols + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_annotations(font_size=11)
    fig.update_layout(
        height=rows * size + 40, width=max(cols * size, 260), margin={"t": 30, "b": 0, "l": 0, "r": 0}
    )
    return fig


def snapshot_views_figure(snap, samples: list[int], *, cols: int = 6) -> go.Figure:
    """The real and the virtual view of each chosen sample of a snapshot, side by side."""
    images, titles = [], []
    for i in samples:
        label = snap.classes[int(snap.targets[i])]
        for view, data in (("real", snap.image), ("virtual", snap.image_v)):
            images.append(data[i].permute(1, 2, 0).numpy())
            titles.append(f"{i}: {label} ({view})")
    return image_grid(images, titles, cols=cols)


# Overlay colour scales: transparent where the attribution is 0, so the image shows through.
_SIGNED = [
    [0.0, "rgba(33,102,172,1)"],
    [0.25, "rgba(103,169,207,0.75)"],
    [0.5, "rgba(247,247,247,0)"],
    [0.75, "rgba(239,138,98,0.75)"],
    [1.0, "rgba(178,24,43,1)"],
]
_UNSIGNED = [
    [0.0, "rgba(255,255,178,0)"],
    [0.3, "rgba(254,204,92,0.6)"],
    [0.6, "rgba(253,141,60,0.85)"],
    [1.0, "rgba(227,26,28,1)"],
]


def attribution_figure(results, *, method: str, size: int = 230) -> go.Figure:
    """One row per sample: the image, then each model's attribution map laid over the image.

    ``results``: :func:`vrm_viz.attribution.explain`'s list. Each map is divided by its own largest
    absolute value (teacher and student attributions differ in scale; the pattern is what compares).
    Integrated Gradients: diverging colours, red = pushes the target logit up, blue = down; saliency:
    one colour scale from 0."""
    models = list(results[0].models) if results else []
    cols = 1 + len(models)
    titles = []
    for r in results:
        titles.append(f"sample {r.sample}: {r.label} ({r.view})")
        for m in models:
            a = r.models[m]
            titles.append(f"{m}: target {a.target_label}, p={a.prob_target:.2f}")
    fig = make_subplots(
        rows=len(results), cols=cols, subplot_titles=titles, horizontal_spacing=0.03, vertical_spacing=0.06
    )
    signed = method == "integrated_gradients"
    scale = _SIGNED if signed else _UNSIGNED
    for row, r in enumerate(results, start=1):
        rgb = _rgb(r.image)
        fig.add_trace(go.Image(z=rgb, hoverinfo="skip"), row=row, col=1)
        for col, m in enumerate(models, start=2):
            heat = r.models[m].heatmap
            peak = float(np.abs(heat).max()) or 1.0
            fig.add_trace(go.Image(z=(rgb * 0.55).astype(np.uint8), hoverinfo="skip"), row=row, col=col)
            fig.add_trace(
                go.Heatmap(
                    z=heat / peak,
                    coloraxis="coloraxis",
                    hovertemplate=f"{m} (x %{{x}}, y %{{y}}): %{{z:.2f}}<extra></extra>",
                ),
                row=row,
                col=col,
            )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_annotations(font_size=11)
    fig.update_layout(
        coloraxis={
            "colorscale": scale,
            "cmin": -1.0 if signed else 0.0,
            "cmax": 1.0,
            "colorbar": {"title": {"text": "attribution / max |attribution|", "side": "right"}},
        },
        height=len(results) * size + 50,
        width=cols * size + 120,
        margin={"t": 40, "b": 10, "l": 10, "r": 10},
    )
    return fig
