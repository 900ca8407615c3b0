"""Streamlit entry point: ``streamlit run app/main.py`` (opens the embedded demo run by default)."""

import streamlit as st

from app import state

st.set_page_config(page_title="vrm — relational distillation", page_icon="🕸️", layout="wide")

PAGES = {
    "Explore": [
        st.Page("views/runs.py", title="Runs", icon="📈", url_path="runs", default=True),
        st.Page("views/graphs.py", title="Affinity graphs", icon="🕸️", url_path="graphs"),
        st.Page("views/compare.py", title="Teacher vs student", icon="⚖️", url_path="compare"),
        st.Page("views/pruned.py", title="Pruned edges", icon="✂️", url_path="pruned"),
        st.Page("views/ablations.py", title="Ablations", icon="🧪", url_path="ablations"),
    ],
    "Models": [
        st.Page("views/embeddings.py", title="Embeddings", icon="🗺️", url_path="embeddings"),
        st.Page("views/attributions.py", title="Attributions", icon="🔍", url_path="attributions"),
    ],
    "Teach": [
        st.Page("views/learn.py", title="Learn VRM", icon="🎓", url_path="learn"),
    ],
}

state.sidebar_source()
st.navigation(PAGES).run()
