"""Teacher vs student: the two models' relation graphs side by side, agreement metrics and their evolution."""

import pandas as pd
import streamlit as st

from vrm_app import state
from vrm_app.state import graphs as gs
from vrm_app.widgets import figure, table
from vrm_viz import compare as C
from vrm_viz import graphs as G
from vrm_viz.figures import compare as FC
from vrm_viz.figures import graphs as FG

st.title("Teacher vs student")
st.caption(
    "How closely the student's relations follow the teacher's on a saved batch. Graphs are recomputed from "
    "the snapshot's logits with `vrm_train.relations`, using the options below."
)
runs = state.runs()
if runs is None:
    st.stop()
run = state.pick_run(runs, key="compare_run")
snap = gs.pick_snapshot(run, "compare") if run else None
if snap is None:
    st.stop()
if not snap.has_teacher:
    st.info(
        f"**{run.name}** has no teacher (method `{run.method}`), so there is nothing to compare the student "
        "with. Pick a distillation run (kd, dist, rkd or vrm)."
    )
    st.stop()
opts = gs.graph_options(run, "compare")

st.subheader("Edge lengths, teacher and student")
k1, k2, k3 = st.columns(3)
kind = k1.radio("Graph", (G.INTER_SAMPLE, G.INTER_CLASS), key="compare_kind", horizontal=True)
gs.init_widget("compare_sort", [True, False], True)
sort = k2.toggle(
    "Sort by class", key="compare_sort", disabled=kind == G.INTER_CLASS, help="Group vertices by true class."
)
views = k3.radio(
    "Vertices",
    ("real views", "real and virtual views"),
    key="compare_views",
    horizontal=True,
    disabled=kind == G.INTER_CLASS or not opts.virtual,
    help="Real views only keep the matrices small enough to read; add the virtual views to see them all.",
)
g = gs.graph(snap, kind, opts)
n = g.batch_size if kind == G.INTER_SAMPLE and views == "real views" else len(g.labels)
order = FG.class_order(g.vertices.iloc[:n]) if sort and kind == G.INTER_SAMPLE else list(range(n))
labels = [g.labels[i] + (f" · {g.vertices['class'][i]}" if kind == G.INTER_SAMPLE else "") for i in order]
st.caption(
    "‖x_u − x_v‖ between every two vertices of each model (z-scored logits when z-score is on); teacher and "
    "student share one colour scale, the last panel is their difference."
)
fig = FG.teacher_student_heatmaps(
    g.length_t[order][:, order],
    g.length_s[order][:, order],
    labels,
    labels,
    title=f"{kind.capitalize()} graph: edge lengths of teacher and student",
    value_label="‖x_u − x_v‖",
)
figure(fig, key="compare_heatmaps", filename=f"{run.name}_{kind}_teacher_student")

st.subheader("Agreement")
m = gs.agreement(snap, opts)
cols = st.columns(5)
cards = {
    "is_cos_mean": "IS edge cosine",
    "ic_cos_mean": "IC edge cosine",
    "is_length_spearman": "IS length ρ",
}
cards.update(cka_logits="CKA of logits", cka_features="CKA of features")
for col, (key, label) in zip(cols, cards.items(), strict=True):
    col.metric(label, f"{m[key]:.3f}", help=C.METRICS[key])
st.caption(
    "Edge cosines: cos(teacher edge, student edge) over the edge set (1 = same directions). Length "
    "correlations: teacher vs student edge lengths. CKA: linear centred kernel alignment (1 = same up to rotation and scale)."
)
table(
    pd.DataFrame({"metric": [C.METRICS[k] for k in m], "key": list(m), "value": list(m.values())}),
    key="compare_metrics",
    filename=f"{run.name}_e{snap.epoch}_agreement",
)

st.subheader("Mean logits by true class")
st.caption(
    "Row c: the mean logit vector over the batch's images of class c; the difference is student − teacher."
)
classes = list(snap.classes)
t_mean = C.class_mean_logits(snap.t, snap.targets, snap.num_classes)
s_mean = C.class_mean_logits(snap.s, snap.targets, snap.num_classes)
fig = FG.teacher_student_heatmaps(
    t_mean,
    s_mean,
    classes,
    classes,
    title="Mean logits by true class (rows) and logit (columns)",
    value_label="mean logit",
    x_title="logit of class d",
    y_title="true class c",
)
figure(fig, key="compare_class_logits", filename=f"{run.name}_class_logits")
figure(
    FC.class_logit_figure(C.mean_logit_difference(snap), classes),
    key="compare_logit_diff",
    filename="logit_diff",
)

st.subheader("Across epochs")
st.caption("The same metrics on every snapshot of the run: the probe batch and the logged training batches.")
m1, m2 = st.columns([3, 1])
chosen = m1.multiselect(
    "Metrics",
    list(C.METRICS),
    default=["is_cos_mean", "ic_cos_mean", "is_length_spearman", "cka_logits"],
    format_func=C.METRICS.get,
    key="compare_evolution_metrics",
)
sources = gs.snapshot_sources(run)
gs.init_widget("compare_evolution_sources", sources, sources[:1])
shown = m2.multiselect("Batches", sources, key="compare_evolution_sources")
evolution = gs.agreement_evolution(run, opts, shown)
if chosen and shown:
    long = C.long_metrics(evolution[evolution.source.isin(shown)], chosen)
    title = "Agreement across the run's snapshots"
    fig = FC.lines_figure(
        long, x="epoch", y="value", color="metric", dash="source", title=title, y_title="value"
    )
    figure(fig, key="compare_evolution", filename=f"{run.name}_agreement_evolution")
    table(evolution, key="compare_evolution_rows", filename=f"{run.name}_agreement_evolution")
else:
    st.info("Choose at least one metric and one batch.")
