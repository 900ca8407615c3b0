"""Ablations: what differs between runs, accuracy over seeds with error bars, options vs accuracy."""

import streamlit as st

from vrm_app import state
from vrm_app.state.graphs import init_widget
from vrm_app.widgets import figure, table
from vrm_viz.figures.runs import parcoords_figure, seed_bars_figure
from vrm_viz.runs import config_diff
from vrm_viz.runstats import (
    NOISE_KEYS,
    ablation_runs,
    default_axes,
    display_frame,
    group_deltas,
    options_frame,
    seed_groups,
)

st.title("Ablations")
runs = state.runs()
if runs is None:
    st.stop()
by_name = {r.name: r for r in runs}
state.follow_source("abl_runs", "abl_axes", "abl_color", "abl_zoom", "abl_baseline")
chosen = st.multiselect(
    "Runs to compare",
    list(by_name),
    default=ablation_runs(runs),
    key="abl_runs",
    help="Default: the VRM runs — the full method, its other seeds and its ablations.",
)
picked = [by_name[n] for n in chosen]
if len(picked) < 2:
    st.info("Choose at least two runs to compare.")
    st.stop()

st.subheader("What differs")
diff = config_diff(picked, ignore=NOISE_KEYS)
if len(diff):
    st.caption(
        f"{len(diff)} config keys differ between these {len(picked)} runs (— : not used by that method)."
    )
    table(display_frame(diff.reset_index(names="option")), key="abl_diff", filename="config_diff")
else:
    st.info("These runs have identical configs (apart from their names).")

st.subheader("Accuracy over seeds")
groups = seed_groups(picked)
if groups.empty:
    st.info("None of these runs has finished an epoch yet.")
else:
    st.caption(
        "Runs whose configs differ only in `seed` form a group. **best** = the highest test top-1 over "
        "epochs, **last** = test top-1 after the final epoch; bars are the mean over the group's seeds and "
        "error bars one standard deviation (none for a single seed)."
    )
    zoom = st.checkbox("Zoom the accuracy axis to the bars", value=True, key="abl_zoom")
    figure(seed_bars_figure(groups, zoom=zoom), key="abl_seeds", filename="accuracy_over_seeds")
    names = groups.group.tolist()
    full = [g for g in names if by_name.get(g) is not None and by_name[g].method == "vrm"]
    init_widget("abl_baseline", names, min(full, key=len) if full else names[0])
    baseline = st.selectbox(
        "Baseline for the Δ columns",
        names,
        key="abl_baseline",
        help="Δ = group mean − baseline mean; Δ (paired) = mean over the seeds both ran of the per-seed "
        "difference (cancels the seed's share of the noise).",
    )
    groups = group_deltas(groups, picked, baseline)
    fmt = {
        c: st.column_config.NumberColumn(format="%+.2f" if c.startswith("Δ") else "%.2f")
        for c in groups.columns
        if c.endswith(("_mean", "_std")) or c.startswith("Δ")
    }
    table(groups, key="abl_groups", filename="seed_groups", column_config=fmt)

st.subheader("Options vs accuracy")
finished = [r for r in picked if r.epochs_done]
frame = options_frame(finished)
options = [c for c in frame.columns if c not in ("run", "best_top1", "last_top1")]
if len(finished) < 2 or not options:
    st.info("Needs two finished runs (at least one epoch each) with different options.")
    st.stop()
axes = st.multiselect(
    "Options (axes)",
    options,
    default=default_axes(options),
    key="abl_axes",
    help="Text options become categories. `seed` is left out by default: it varies by design.",
)
color = st.radio("Colour lines by", ["best_top1", "last_top1"], horizontal=True, key="abl_color")
figure(parcoords_figure(frame, axes, color=color), key="abl_parcoords", filename="options_vs_accuracy")
st.caption("Drag along an axis to highlight the runs within a range; drag an axis title to reorder.")
