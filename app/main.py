"""Streamlit entry point: ``streamlit run app/main.py``."""

import streamlit as st

st.set_page_config(page_title="vrm", layout="wide")
st.title("vrm — relational knowledge distillation")
st.info(
    "The interactive app is coming: runs, affinity graphs before and after pruning, teacher vs student, "
    "pruned edges, ablations, embeddings, attributions and a guided VRM lesson, opened on an embedded "
    "demo run. Until it lands, this page is all there is; the trainer is usable from `vrm-train`."
)
