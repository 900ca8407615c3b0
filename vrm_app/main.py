"""Streamlit entry point: ``streamlit run app/main.py`` (opens the embedded demo run by default)."""

import streamlit as st

from app import state

st.set_page_config(page_title="vrm — relational distillation", layout="wide")

PAGES = {
    "Explore": [
        st.Page("views/runs.py", title="Runs", icon=":material/monitoring:", url_path="runs", default=True),
        st.Page("views/graphs.py", title="Affinity graphs", icon=":material/hub:", url_path="graphs"),
        st.Page(
            "views/compare.py", title="Teacher vs student", icon=":material/compare:", url_path="compare"
        ),
        st.Page("views/pruned.py", title="Pruned edges", icon=":material/content_cut:", url_path="pruned"),
        st.Page("views/ablations.py", title="Ablations", icon=":material/science:", url_path="ablations"),
    ],
    "Models": [
        st.Page(
            "views/embeddings.py", title="Embeddings", icon=":material/scatter_plot:", url_path="embeddings"
        ),
        st.Page(
            "views/attributions.py",
            title="Attributions",
            icon=":material/image_search:",
            url_path="attributions",
        ),
        st.Page("views/open.py", title="Open checkpoints", icon=":material/folder_open:", url_path="open"),
    ],
    "Teach": [
        st.Page("views/learn.py", title="Learn VRM", icon=":material/school:", url_path="learn"),
    ],
}

state.sidebar_source()
st.navigation(PAGES).run()
