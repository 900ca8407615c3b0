"""Small display helpers every view uses: figures with an HTML download, tables with a CSV download.

The files are generated only when a download button is clicked (a callable ``data``), so drawing a page
costs nothing extra; the HTML embeds plotly.js, so it opens offline."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st


def figure(fig: go.Figure, *, key: str, filename: str, **chart_kwargs):
    """Show a plotly figure and offer it as a standalone interactive HTML file.

    Returns what ``st.plotly_chart`` returns (the selection state when ``on_select`` is given)."""
    shown = st.plotly_chart(fig, key=f"{key}_chart", **chart_kwargs)
    st.download_button(
        "Download figure (interactive HTML)",
        data=lambda: fig.to_html(include_plotlyjs=True, full_html=True),
        file_name=f"{filename}.html",
        mime="text/html",
        key=f"{key}_html",
        on_click="ignore",
    )
    return shown


def table(df: pd.DataFrame, *, key: str, filename: str, **df_kwargs):
    """Show a table (sortable by clicking headers) and offer it as CSV; returns ``st.dataframe``'s value."""
    shown = st.dataframe(df, key=f"{key}_table", **{"hide_index": True, **df_kwargs})
    st.download_button(
        "Download table (CSV)",
        data=lambda: df.to_csv(index=False).encode("utf-8"),
        file_name=f"{filename}.csv",
        mime="text/csv",
        key=f"{key}_csv",
        on_click="ignore",
    )
    return shown
