"""Plotly figure builders: pure data in, ``plotly.graph_objects.Figure`` out (no streamlit here).

One module per family of pages, imported directly (this package imports none of them), e.g.
``vrm_viz.figures.graphs``: affinity-graph heatmaps, edge vectors and images, pruning summaries;
``vrm_viz.figures.nodelink``: the node-link view; ``vrm_viz.figures.compare``: teacher–student agreement maps and metric curves.
"""
