"""Node-link data of a recomputed graph (:class:`vrm_viz.graphs.Graph`): edges ranked by a value, the
top ones as a networkx graph whose nodes and edges carry their vertex- and edge-table rows.

    nxg = to_networkx(g, top_k=100)                 # nodes with class/view/prediction attributes
    top = top_edges(g.edges, 10, rank_column(g))    # the 10 edges that rank first
"""

from __future__ import annotations

import networkx as nx
import pandas as pd

from vrm_viz.graphs import Graph


def rank_column(graph: Graph) -> str:
    """The edge value that ranks edges by default: loss with a teacher, else the UEP score, else length."""
    if graph.has_teacher:
        return "loss"
    return "score" if graph.edges["score"].notna().any() else "length_s"


def top_edges(edges: pd.DataFrame, k: int | None, by: str) -> pd.DataFrame:
    """The k edges with the largest ``by`` (smallest for "cosine": the worst agreement); NaN last."""
    if k is None or k >= len(edges):
        return edges
    return edges.sort_values(by, ascending=by == "cosine", na_position="last", kind="stable").head(k)


def to_networkx(
    graph: Graph, *, top_k: int | None = None, by: str | None = None, edges: pd.DataFrame | None = None
) -> nx.Graph:
    """networkx graph: every vertex (attributes: its vertex-table row) and the top-k of ``edges`` (default:
    the whole edge set; attributes: the edge-table row)."""
    g = nx.Graph(kind=graph.kind, rank=by or rank_column(graph))
    for rec in graph.vertices.to_dict("records"):
        g.add_node(rec["vertex"], **rec)
    for rec in top_edges(graph.edges if edges is None else edges, top_k, g.graph["rank"]).to_dict("records"):
        g.add_edge(rec["u_id"], rec["v_id"], **rec)
    return g
