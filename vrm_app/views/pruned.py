"""Pruned edges: which inter-sample edges UEP detaches on a batch, why, where, and how that evolves."""

import streamlit as st

from vrm_app import state
from vrm_app.state import graphs as gs
from vrm_app.widgets import figure, table
from vrm_viz import compare as C
from vrm_viz import explain as X
from vrm_viz import graphs as G
from vrm_viz.figures import compare as FC
from vrm_viz.figures import explain as FX
from vrm_viz.figures import graphs as FG

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

st.subheader("Why an edge is pruned")
st.markdown(f"UEP rule **{opts.uep}**: {X.UEP_WORDS.get(opts.uep, '')}.")
st.latex(X.UEP_FORMULAS.get(opts.uep, r"\text{" + opts.uep + "}"))
st.caption(
    "p_m: softmax of the student's logits on real view m, p̃_n on virtual view n (temperature 1, raw logits); "
    "H: entropy; KL: Kullback–Leibler divergence. Learn VRM, step 5, walks through it on a tiny batch."
)
cut = X.score_cutoff(g)
scored = g.edges.score.notna().any()

st.subheader("Edges")
f = st.columns([1.2, 1.4, 1, 2])
status = f[0].radio("Status", ("all", "kept", "pruned"), key="pruned_status", horizontal=True)
pair = f[1].radio("Endpoint classes", ("all", "same", "different"), key="pruned_pair", horizontal=True)
diagonal = f[2].checkbox("Inter-view diagonal only", key="pruned_diagonal", disabled=not opts.virtual)
classes = f[3].multiselect("Class (either endpoint)", list(snap.classes), key="pruned_classes")
w = st.columns(2)
t_wrong = w[0].checkbox(
    "Teacher wrong at an endpoint", key="pruned_t_wrong", disabled=not snap.has_teacher,
    help="Edges where the teacher's top class is not the true class of one endpoint (or both).",
)  # fmt: skip
s_wrong = w[1].checkbox(
    "Student wrong at an endpoint", key="pruned_s_wrong",
    help="Edges where the student's top class is not the true class of one endpoint (or both).",
)  # fmt: skip
edges = C.filter_edges(g.edges, status=status, pair=pair, diagonal_only=diagonal, classes=classes)
edges = X.filter_wrong(X.mark_wrong(edges), teacher_wrong=t_wrong, student_wrong=s_wrong)
if scored:
    edges = edges.sort_values("score", ascending=False, kind="stable")
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
shown += ["same_class", "diagonal", "score", "status", "loss", "cosine", "teacher_wrong", "student_wrong"]
st.caption(
    f"{len(edges)} of {g.n_edges} edges, highest UEP score first. Click a row to explain that edge; "
    "u, v: r = real view, v = virtual view."
)
picked = table(
    edges[shown],
    key="pruned_edges",
    filename=f"{run.name}_{snap.kind}_e{snap.epoch}_edges",
    on_select="rerun",
    selection_mode="single-row",
)
rows = (picked or {}).get("selection", {}).get("rows", []) if picked else []
row = edges.iloc[rows[0]] if rows and rows[0] < len(edges) else (edges.iloc[0] if len(edges) else None)

if scored:
    hist = FX.score_histogram_figure(
        g.edges, cut, rule=opts.uep, highlight=None if row is None else float(row.score)
    )
    figure(hist, key="pruned_hist", filename=f"{run.name}_uep_scores")

if row is not None:
    st.subheader(f"Edge {row.u} – {row.v}: {row.status}")
    u, v = int(row.u_id), int(row.v_id)
    if row.status == "pruned":
        why = f"its score {row.score:.4g} is at or above the cut-off {cut:.4g}"
    elif scored and cut is not None:
        why = f"its score {row.score:.4g} is below the cut-off {cut:.4g}"
    else:
        why = "no edge is pruned with these options"
    st.markdown(f"**{row.status.capitalize()}**: {why}. {gs.describe_edge(row)}")
    left, right = st.columns([2, 3])
    images = [G.vertex_image(snap, g, i) for i in (u, v)]
    names = [f"{g.labels[i]} ({g.vertices['view'][i]}, {g.vertices['class'][i]})" for i in (u, v)]
    with left:
        figure(FG.edge_images_figure(images, names), key="pruned_edge_images", filename="edge_images")
    with right:
        probs = X.endpoint_probabilities(snap, g, [u, v])
        figure(FX.endpoint_probability_figure(probs), key="pruned_edge_probs", filename="edge_probabilities")
    if st.button(
        "Show this edge in Affinity graphs", key="pruned_to_graphs",
        on_click=gs.open_in_graphs, args=(run, "pruned", snap, row.u, row.v),
    ):  # fmt: skip
        st.switch_page("views/graphs.py")

st.subheader("Where UEP prunes")
summary = C.pruning_summary(g)
figure(FC.pruning_summary_figure(summary), key="pruned_summary", filename=f"{run.name}_pruning_summary")
table(summary, key="pruned_summary_rows", filename=f"{run.name}_pruning_summary")

st.subheader("Across epochs and batches")
st.caption("The same breakdown on every snapshot of the run (probe batch and logged training batches).")
sources = gs.snapshot_sources(run)
e1, e2 = st.columns([2, 1])
gs.init_widget("pruned_sources", sources, sources[:1])
chosen = e2.multiselect("Batches", sources, key="pruned_sources")
evolution = gs.pruning_evolution(run, opts, chosen)
groups = [x for x in dict.fromkeys(evolution.group) if x != "all"] or ["pair"]
group = e1.radio("Breakdown", groups, key="pruned_group", horizontal=True)
d = evolution[(evolution.group == group) & evolution.source.isin(chosen)]
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
