"""The app's router script (opens the embedded demo runs by default).

Run it with ``vrm-app`` (installed), ``streamlit run app/main.py`` (a checkout) or
``streamlit run vrm_app/main.py``. Page scripts are given by absolute path so the router works whichever
of these scripts Streamlit was started on.
"""

from pathlib import Path

import streamlit as st

from vrm_app import state
from vrm_app.state import url
from vrm_viz.glossary import glossary_markdown

HERE = Path(__file__).resolve().parent

st.set_page_config(page_title="vrm — relational distillation", layout="wide")

PAGES = {
    "Explore": [
        st.Page(
            HERE / "views/runs.py", title="Runs", icon=":material/monitoring:", url_path="runs", default=True
        ),
        st.Page(HERE / "views/graphs.py", title="Affinity graphs", icon=":material/hub:", url_path="graphs"),
        st.Page(
            HERE / "views/compare.py",
            title="Teacher vs student",
            icon=":material/compare:",
            url_path="compare",
        ),
        st.Page(
            HERE / "views/pruned.py", title="Pruned edges", icon=":material/content_cut:", url_path="pruned"
        ),
        st.Page(
            HERE / "views/ablations.py", title="Ablations", icon=":material/science:", url_path="ablations"
        ),
        st.Page(
            HERE / "views/across.py", title="Across runs", icon=":material/table_chart:", url_path="across"
        ),
    ],
    "Models": [
        st.Page(
            HERE / "views/embeddings.py",
            title="Embeddings",
            icon=":material/scatter_plot:",
            url_path="embeddings",
        ),
        st.Page(
            HERE / "views/attributions.py",
            title="Attributions",
            icon=":material/image_search:",
            url_path="attributions",
        ),
        st.Page(
            HERE / "views/open.py", title="Open checkpoints", icon=":material/folder_open:", url_path="open"
        ),
    ],
    "Teach": [
        st.Page(HERE / "views/learn.py", title="Learn VRM", icon=":material/school:", url_path="learn"),
    ],
}

url.restore()  # a link's folder/run/batch/epoch/options, applied by the widgets that show them
url.begin()
state.sidebar_source()
with st.sidebar.expander("Glossary"):
    st.markdown(glossary_markdown())
st.navigation(PAGES).run()
