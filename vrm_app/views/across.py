"""Across runs: agreement metrics and pruning statistics of several runs on the same batch and epoch,
with their differences to a baseline run."""

import streamlit as st

from vrm_app import state
from vrm_app.state import graphs as gs
from vrm_app.state import url
from vrm_app.widgets import figure, table
from vrm_viz import across as A
from vrm_viz import compare as C
from vrm_viz.figures import explain as FX
from vrm_viz.runstats import default_runs

st.title("Across runs")
st.caption(
    "Several runs on the same saved batch at the same epoch: teacher–student agreement and where UEP prunes, "
    "each value beside its difference to the baseline run (Δ = run − baseline)."
)
runs = state.runs()
if runs is None:
    st.stop()
by_name = {r.name: r for r in runs}
state.follow_source("across_runs", "across_baseline")
with_snaps = [r.name for r in runs if len(r.snapshots)]
gs.init_widget("across_runs", with_snaps, [n for n in default_runs(runs) if n in with_snaps])
chosen = st.multiselect("Runs", with_snaps, key="across_runs", help="Runs that saved relation snapshots.")
picked = [by_name[n] for n in chosen]
if len(picked) < 2:
    st.info("Choose at least two runs.")
    st.stop()

c1, c2, c3 = st.columns(3)
linked = url.take("baseline")
if linked in chosen:
    st.session_state["across_baseline"] = linked
kd = [n for n in chosen if by_name[n].method == "kd"]
gs.init_widget("across_baseline", chosen, kd[0] if kd else chosen[0])
baseline = c1.selectbox("Baseline run", chosen, key="across_baseline")
url.share("baseline", baseline)
batches = sorted(set.intersection(*[set(r.snapshots.batch) for r in picked]))
labels = {b: gs.PROBE if b < 0 else f"training batch {b}" for b in batches}
if not batches:
    st.warning("These runs share no batch: their snapshots cover different batches.")
    st.stop()
gs.init_widget("across_batch", batches, batches[0])
batch = c2.selectbox("Batch", batches, format_func=labels.get, key="across_batch")
kind = "probe" if batch < 0 else "train"
epochs = A.common_epochs(picked, kind)
if not epochs:
    st.warning(f"No epoch has a {labels[batch]} snapshot in every chosen run; choose other runs.")
    st.stop()
gs.init_widget("across_epoch", epochs, epochs[-1])
epoch = c3.selectbox(
    "Epoch", epochs, key="across_epoch", help="Epochs at which every chosen run saved this batch."
)
own = st.toggle(
    "Each run's own VRM options", value=True, key="across_own",
    help="On: each VRM run's graphs use the options it trained with (other methods: VRM's defaults). "
    "Off: one set of options for every run, set below.",
)  # fmt: skip
opts = None if own else gs.graph_options(by_name[baseline], "across")
frame = gs.across(picked, kind, epoch, batch, opts)
frame = A.with_deltas(frame, baseline)
for row in frame[frame.note != ""].itertuples():
    st.caption(f"{row.run}: {row.note}")

metrics = {**{k: v for k, v in C.METRICS.items()}, **A.PRUNING, "best_top1": "best test top-1 (%)"}
default = ["best_top1", "is_cos_mean", "cka_logits", "top1_agreement", "is_pruned_frac"]
gs.init_widget("across_metrics", list(metrics), default)
shown = st.multiselect("Metrics", list(metrics), format_func=metrics.get, key="across_metrics")
if shown:
    fig = FX.delta_bars_figure(frame, shown, baseline, labels=metrics)
    figure(fig, key="across_deltas", filename=f"across_runs_e{epoch}_deltas")
cols = ["run", "method", "epoch", *[c for m in shown for c in (m, f"Δ {m}")]]
table(
    frame[cols],
    key="across_table",
    filename=f"across_runs_e{epoch}",
    column_config={c: st.column_config.NumberColumn(format="%.4f") for c in cols[3:]},
)
st.caption(
    "One batch, one epoch: differences this small can be noise. Compare runs over seeds in Ablations "
    "(paired differences) before drawing conclusions."
)
