"""Embeddings: the teacher's and the student's pooled features on the probe batch, in 2-D, side by side."""

import streamlit as st

from vrm_app import state
from vrm_app.state import models as mstate
from vrm_app.widgets import figure, table
from vrm_viz.figures.models import embedding_figure, snapshot_views_figure

st.title("Embeddings")
st.caption(
    "Each dot is one test image of the probe batch, placed by the model's pooled feature vector (the input "
    "of its classifier). Teacher and student are projected separately; what compares is which images sit "
    "together. A cross marks an image the model gets wrong. Select points (click, box or lasso) to see them."
)
runs = state.runs()
if runs is None:
    st.stop()
run = state.pick_run(
    mstate.full_vrm_first(runs), key="emb_run", need=lambda r: len(r.snapshot_epochs("probe")) > 0
)
if run is None:
    st.stop()

c1, c2, c3, c4 = st.columns(4)
with c1:
    snap = mstate.probe_snapshot(run, key="emb_epoch")
with c2:
    method = st.radio("Projection", ["pca", "tsne"], format_func=str.upper, horizontal=True, key="emb_method")
with c3:
    perplexity = st.slider(
        "t-SNE perplexity", 2.0, 50.0, 15.0, 1.0, key="emb_perplexity", disabled=method != "tsne"
    )
with c4:
    seed = st.number_input("t-SNE seed", 0, 10_000, 0, key="emb_seed", disabled=method != "tsne")
if snap is None:
    st.stop()

result = mstate.embeddings_for(snap, method=method, seed=seed, perplexity=perplexity)
if result is None:
    st.stop()
df, agreement = result
if agreement is None:
    st.info(f"Run {run.name} has no teacher features (it was trained without a teacher): student only.")
else:
    st.metric(
        "Neighbourhood agreement (5-NN, in the full feature spaces)",
        f"{agreement:.0%}",
        help="Share of each image's 5 nearest neighbours that teacher and student have in common "
        f"(chance ≈ {5 / (snap.batch_size - 1):.0%}). Relation matching aims to raise it.",
    )

event = figure(
    embedding_figure(df, classes=snap.classes),
    key="emb_scatter",
    filename=f"embeddings_{run.name}_e{snap.epoch}_{method}",
    on_select="rerun",
    selection_mode=("points", "box", "lasso"),
)
picked = mstate.selected_samples(event)
if picked:
    st.subheader(f"Selected: {len(picked)} image(s)")
    shown = picked[:12]
    figure(snapshot_views_figure(snap, shown), key="emb_images", filename="selected_images")
    if len(picked) > len(shown):
        st.caption(f"Showing the first {len(shown)} of {len(picked)} selected images.")
else:
    st.caption("No point selected: select points in either panel to show their real and virtual views.")

table(df[df["sample"].isin(picked)] if picked else df, key="emb_points", filename="embedding_points")
