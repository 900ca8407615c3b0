"""Affinity graphs: one batch's VRM graphs rebuilt from its saved logits, with live REP/UEP pruning."""

import streamlit as st

from vrm_app import state
from vrm_app.state import graphs as gs
from vrm_app.widgets import figure, table
from vrm_viz import explain as X
from vrm_viz import graphs as G
from vrm_viz.figures import explain as FX
from vrm_viz.figures import graphs as FG

st.title("Affinity graphs")
st.caption(
    "The graphs VRM matches, recomputed from a saved batch's teacher and student logits with "
    "`vrm_train.relations` — the trainer's own code — so the pruning controls re-run the real REP/UEP."
)
runs = state.runs()
if runs is None:
    st.stop()
run = state.pick_run(runs, key="graphs_run")
snap = gs.pick_snapshot(run, "graphs") if run else None
if snap is None:
    st.stop()
opts = gs.graph_options(run, "graphs")

c1, c2, c3, c4 = st.columns([1.2, 1.6, 1.2, 1])
kind = c1.radio("Graph", G.GRAPH_KINDS, key="graphs_kind")
quantity = c2.selectbox(
    "Matrix quantity", list(G.QUANTITIES), format_func=G.QUANTITIES.get, key="graphs_quantity"
)
model = c3.radio(
    "Model", G.MODELS, key="graphs_model", disabled=quantity != "length", help="For edge lengths."
)
gs.init_widget("graphs_sort", [True, False], True)
sort = c4.toggle(
    "Sort by class", key="graphs_sort", help="Group the vertices by true class (within each view)."
)
if not snap.has_teacher:
    st.info(
        f"**{run.name}** has no teacher (method `{run.method}`): only the student's graphs are shown. "
        "Edge loss and edge cosine compare teacher and student edges, so they need a distillation run."
    )
if kind == G.INTER_VIEW and not opts.virtual:
    st.info("Virtual views are off (is_edges=real_only): there are no inter-view relations to show.")
    st.stop()

g = gs.graph(snap, kind, opts)
m = st.columns(5)
m[0].metric("Edges", g.n_edges)
m[1].metric("Kept", g.n_kept)
m[2].metric("Pruned", g.n_pruned)
m[3].metric(
    "L_IS", f"{g.terms['L_IS']:.4f}" if g.terms else "—", help="Mean ℓ over kept IS edges (vrm_loss)."
)
m[4].metric("L_IC", f"{g.terms['L_IC']:.4f}" if g.terms else "—", help="Mean ℓ over class edges (vrm_loss).")
for note in g.notes:
    st.caption(note)
if g.n_undefined:
    st.caption(
        f"{g.n_undefined} undefined edge(s): their two vertices coincide for the student or the teacher (an "
        "image whose virtual view is its real view), so the edge has no direction; the loss gives it 0 and no "
        "gradient (docs/method.md §2.4). Drawn as *undefined*, neither kept nor pruned."
    )

why = g.unavailable(quantity, model)
cell = None
if why:
    st.info(why)
else:
    st.caption(gs.HEATMAP_CAPTIONS[kind] + " Click a cell to inspect its edge below.")
    fig = gs.heatmap(snap, kind, opts, quantity, model, sort=sort)
    cell = figure(
        fig,
        key="graphs_heatmap",
        filename=f"{run.name}_{kind}_{quantity}",
        on_select="rerun",
        selection_mode="points",
    )
if kind == G.INTER_VIEW:
    st.subheader("Inter-view diagonal: each image's real → virtual edge")
    _, diag = G.inter_view(g, "status")
    cols = ["u", "v", "u_class", "u_pred_s_class", "v_pred_s_class", "status", "score", "loss", "cosine"]
    table(diag[cols], key="graphs_diagonal", filename=f"{run.name}_inter_view_diagonal")

st.subheader("Node-link view")
n1, n2, n3 = st.columns([2, 2, 1])
can_prune = kind != G.INTER_CLASS and g.n_pruned > 0
show = n1.radio(
    "Edges to draw",
    list(X.SHOW) if can_prune else ["kept"],
    format_func=X.SHOW.get,
    key="graphs_show" if can_prune else "graphs_show_kept",
    help="Pruned edges have small losses (UEP removed them from the loss), so a top-k by loss never shows "
    "them: choose them here.",
)
top_k = n2.slider(
    "Edges per status (top-k by loss, or UEP score without teacher)", 5, 300, 60, key="graphs_topk"
)
layout = n3.radio("Layout", ("spring", "circular"), key="graphs_layout", horizontal=True)
st.caption(
    "Colour: true class; ● real, ◆ virtual, ■ class; black outline: student wrong. Pruned edges: red dashes, "
    "✕ at their midpoint."
)
picked = figure(
    gs.node_link(snap, kind, opts, top_k=top_k, layout=layout, show=show),
    key="graphs_nodelink",
    filename=f"{run.name}_{kind}_node_link",
    on_select="rerun",
    selection_mode="points",
)

st.subheader("Inspect one edge")
st.caption("Click an edge's midpoint marker or a heatmap cell above, or choose its endpoints.")
u, v = gs.edge_picker(g, kind, [picked, cell], "graphs", source=snap.path)
row = g.edge(u, v)
if u == v:
    st.info("Choose two different vertices.")
    st.stop()
if row is None:
    st.caption(
        f"{g.labels[u]} – {g.labels[v]} is not in this edge set (REP drops it); its vectors still exist."
    )
else:
    st.caption(gs.describe_edge(row))
    if row.status == "pruned" and kind != G.INTER_CLASS:
        cut = X.score_cutoff(g)
        st.caption(
            f"Pruned by UEP ({opts.uep}): its score {row.score:.4g} is above the cut-off {cut:.4g} "
            f"(the {g.n_pruned} highest of {g.n_edges} scores are pruned). The Pruned edges page explains it."
        )
left, right = st.columns([2, 3]) if kind != G.INTER_CLASS else (None, st.container())
if left is not None:
    images = [G.vertex_image(snap, g, i) for i in (u, v)]
    names = [f"{g.labels[i]} ({g.vertices['view'][i]}, {g.vertices['class'][i]})" for i in (u, v)]
    with left:
        figure(FG.edge_images_figure(images, names), key="graphs_edge_images", filename="edge_images")
vectors = G.edge_vectors(snap, G.INTER_CLASS if kind == G.INTER_CLASS else G.INTER_SAMPLE, opts, u, v)
title = f"Edge vectors E[{g.labels[u]}, {g.labels[v]}]: teacher vs student"
x_title = "vertex (the batch is the class edge's dimension)" if kind == G.INTER_CLASS else "class"
with right:
    bars = FG.edge_vector_bars(vectors, title=title, x_title=x_title)
    figure(bars, key="graphs_edge_vectors", filename="edge_vectors")
if kind != G.INTER_CLASS:
    probs = X.endpoint_probabilities(snap, g, [u, v])
    figure(FX.endpoint_probability_figure(probs), key="graphs_edge_probs", filename="edge_probabilities")
