"""Attributions: which pixels drive the teacher's and the student's answer (captum IG and Saliency)."""

import pandas as pd
import streamlit as st

from vrm_app import state
from vrm_app.state import models as mstate
from vrm_app.widgets import figure, table
from vrm_viz.figures.models import attribution_figure

st.title("Attributions")
st.caption(
    "Pixel attributions of the run's final teacher and student (loaded from their checkpoints) on test "
    "images of the probe batch. Integrated Gradients adds up, pixel by pixel, how moving from a black image "
    "to this one changes the target logit; Saliency is the size of the logit's gradient at each pixel."
)
runs = state.runs()
if runs is None:
    st.stop()
run = state.pick_run(
    mstate.full_vrm_first(runs), key="attr_run", need=lambda r: len(r.snapshot_epochs("probe")) > 0
)
if run is None:
    st.stop()
if run.checkpoint("student") is None:
    st.error(
        f"Run {run.name} has no final checkpoint (checkpoints/student.pt): it is still training or stopped "
        "early. Attributions need the trained weights; pick a finished run."
    )
    st.stop()
loaded = mstate.models(run)
if not loaded:
    st.stop()
epochs = run.snapshot_epochs("probe")
snap = state.load_snapshot(run, "probe", epochs[-1])
if snap is None:
    st.stop()

labels = mstate.sample_labels(snap)
c1, c2 = st.columns([3, 2])
with c1:
    samples = st.multiselect(
        "Probe images",
        list(range(snap.batch_size)),
        default=[0, 1, 2][: snap.batch_size],
        format_func=lambda i: labels[i],
        max_selections=6,
        key="attr_samples",
    )
    view = st.radio("View", ["real", "virtual"], horizontal=True, key="attr_view")
with c2:
    method = st.radio(
        "Method",
        ["saliency", "integrated_gradients"],  # saliency first: one backward pass, the page opens fast
        horizontal=True,
        key="attr_method",
        format_func=lambda m: "Integrated Gradients" if m.startswith("int") else "Saliency",
    )
    target = st.radio(
        "Explain the logit of",
        ["true", "predicted"],
        horizontal=True,
        key="attr_target",
        format_func=lambda t: "the true class" if t == "true" else "each model's predicted class",
    )
    n_steps = st.slider(
        "IG steps", 8, 128, 32, 8, key="attr_steps", disabled=method != "integrated_gradients"
    )
if not samples:
    st.info("Choose at least one probe image.")
    st.stop()

results = mstate.attributions(
    run, loaded, snap, samples, method=method, target=target, view=view, n_steps=n_steps
)
if results is None:
    st.stop()
figure(
    attribution_figure(results, method=method), key="attr_maps", filename=f"attributions_{run.name}_{method}"
)
st.caption(
    "Each map is scaled by its own largest value. Integrated Gradients: red pixels raise the target logit, "
    "blue ones lower it. Saliency: brighter = the logit is more sensitive to that pixel."
)
rows = [
    {
        "sample": r.sample,
        "dataset_index": r.index,
        "label": r.label,
        "model": m,
        "target": a.target_label,
        "predicted": a.predicted_label,
        "p_target": a.prob_target,
        "ig_convergence_delta": a.delta,
    }
    for r in results
    for m, a in r.models.items()
]
table(pd.DataFrame(rows), key="attr_results", filename=f"attributions_{run.name}")
st.caption(
    "ig_convergence_delta: sum of the attributions minus the logit change from the black image (0 for an "
    "exact integral; grows when the steps are too few). Empty for Saliency."
)
