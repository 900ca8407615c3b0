"""Pruned edges: which inter-sample edges UEP detaches on a batch, where, and how that evolves."""

import streamlit as st

from vrm_app import state
from vrm_app.state import graphs as gs
from vrm_app.widgets import figure, table
from vrm_viz import compare as C
from vrm_viz import graphs as G
from vrm_viz.figures import compare as FC

st.title("Pruned edges")
st.caption(
    "Every inter-sample edge of a saved batch with its UEP score and whether the real pruning code "
    "(`vrm_train.relations`, re-run on the snapshot's logits with the options below) keeps it."
)
runs = state.runs()
if runs is None:
    st.stop()
run = state.pick_run(runs, key="pruned_run")
snap = gs.pick_snapshot(run, "pruned") if run else None
if snap is None:
    st.stop()
opts = gs.graph_options(run, "pruned")
if not snap.has_teacher:
    st.info(
        f"**{run.name}** has no teacher: UEP still ranks the student's edges, but edge loss and cosine are empty."
    )
g = gs.graph(snap, G.INTER_SAMPLE, opts)
for note in g.notes:
    st.caption(note)

m = st.columns(4)
m[0].metric("Edges", g.n_edges)
m[1].metric("Pruned", g.n_pruned)
m[2].metric("Pruned fraction", f"{g.n_pruned / max(g.n_edges, 1):.1%}")
m[3].metric("Mean loss of kept edges", f"{g.terms['L_IS']:.4f}" if g.terms else "—")

st.subheader("Edges")
f = st.columns([1.2, 1.4, 1, 2])
status = f[0].radio("Status", ("all", "kept", "pruned"), key="pruned_status", horizontal=True)
pair = f[1].radio("Endpoint classes", ("all", "same", "different"), key="pruned_pair", horizontal=True)
diagonal = f[2].checkbox("Inter-view diagonal only", key="pruned_diagonal", disabled=not opts.virtual)
classes = f[3].multiselect("Class (either endpoint)", list(snap.classes), key="pruned_classes")
edges = C.filter_edges(g.edges, status=status, pair=pair, diagonal_only=diagonal, classes=classes)
shown = [
    "u",
    "v",
    "u_class",
    "v_class",
    "u_pred_t_class",
    "v_pred_t_class",
    "u_pred_s_class",
    "v_pred_s_class",
]
shown += ["same_class", "diagonal", "score", "status", "loss", "cosine"]
st.caption(
    f"{len(edges)} of {g.n_edges} edges. Click a header to sort; u, v: r = real view, v = virtual view."
)
table(edges[shown], key="pruned_edges", filename=f"{run.name}_{snap.kind}_e{snap.epoch}_edges")

st.subheader("Where UEP prunes")
summary = C.pruning_summary(g)
figure(FC.pruning_summary_figure(summary), key="pruned_summary", filename=f"{run.name}_pruning_summary")
table(summary, key="pruned_summary_rows", filename=f"{run.name}_pruning_summary")

st.subheader("Across epochs and batches")
st.caption("The same breakdown on every snapshot of the run (probe batch and logged training batches).")
evolution = gs.pruning_evolution(run, opts)
e1, e2 = st.columns([2, 1])
groups = [x for x in dict.fromkeys(evolution.group) if x != "all"]
group = e1.radio("Breakdown", groups, key="pruned_group", horizontal=True)
sources = sorted(set(evolution.source))
gs.init_widget("pruned_sources", sources, sources[:1])
shown = e2.multiselect("Batches", sources, key="pruned_sources")
d = evolution[(evolution.group == group) & evolution.source.isin(shown)]
if len(d):
    title = f"Pruned fraction by {group}, per snapshot"
    fig = FC.lines_figure(
        d,
        x="epoch",
        y="pruned_frac",
        color="category",
        dash="source",
        percent=True,
        title=title,
        y_title="pruned fraction",
    )
    figure(fig, key="pruned_evolution", filename=f"{run.name}_pruning_evolution")
else:
    st.info("Choose at least one batch.")
