"""Runs: every run of the chosen folder, its accuracy curves (the overfitting gap) and its loss terms."""

import streamlit as st

from vrm_app import state
from vrm_app.widgets import figure, table
from vrm_viz.figures.runs import accuracy_figure, terms_figure
from vrm_viz.runs import runs_table
from vrm_viz.runstats import accuracy_curves, default_runs, default_terms, loss_terms, term_curves

st.title("Runs")
runs = state.runs()
if runs is None:
    st.stop()
by_name = {r.name: r for r in runs}
state.follow_source("runs_curves_runs", "runs_terms")
st.caption(f"{len(runs)} runs in `{state.source()}`. Click a column header to sort.")

table(
    runs_table(runs),
    key="runs_overview",
    filename="runs",
    column_config={
        c: st.column_config.NumberColumn(format="%.2f")
        for c in ("best_top1", "last_top1", "last_train_top1", "gap")
    },
)
st.caption(
    "best/last: test top-1 (%) at the best and at the final epoch; gap = last train top-1 − last test "
    "top-1 (positive: the student fits its training images better than unseen ones)."
)

st.subheader("Training curves")
chosen = st.multiselect("Runs to plot", list(by_name), default=default_runs(runs), key="runs_curves_runs")
picked = [by_name[n] for n in chosen]
waiting = [r.name for r in picked if not r.epochs_done]
if waiting:
    st.info(f"No finished epoch yet: {', '.join(waiting)} (curves appear after the first epoch).")
if not picked:
    st.info("Choose at least one run to plot its curves.")
    st.stop()

curves = accuracy_curves(picked)
if len(curves):
    figure(accuracy_figure(curves), key="runs_accuracy", filename="accuracy_curves")

terms = loss_terms(picked)
if terms:
    shown = st.multiselect(
        "Loss terms (one plot each)",
        terms,
        default=default_terms(terms),
        key="runs_terms",
        help="Every term the runs logged in metrics.csv: total train/test/val losses, then each "
        "distillation term (a run that does not log a term is absent from its plot).",
    )
    if shown:
        figure(terms_figure(term_curves(picked, shown)), key="runs_terms_fig", filename="loss_terms")

st.subheader("Run details")
run = state.pick_run(runs, key="runs_detail_run")
st.markdown(f"**{run.name}** · {run.method} · {run.pair} · {run.dataset} · {run.status}")
if not run.epochs_done:
    st.info(f"{run.name}: no finished epoch yet — metrics appear when its first epoch ends.")
checkpoints = [w for w in ("student", "last", "best") if run.checkpoint(w)]
st.caption(
    f"Folder `{run.path}` · checkpoints: {', '.join(checkpoints) or 'none yet'} · "
    f"{len(run.snapshots)} relation snapshots"
)
if len(run.snapshots):
    status = state.snapshot_status(run)
    for row in status[status.status != "ok"].itertuples():
        st.error(f"Snapshot {row.file} cannot be read: {row.status}")
    table(status, key="runs_snapshots", filename=f"{run.name}_snapshots")
with st.expander("Resolved config (config.yaml)"):
    st.json(run.config, expanded=False)
