"""Why an edge was pruned: the UEP rule's formula, the score cut-off, the endpoints' predictions.

Everything is read off a :class:`vrm_viz.graphs.Graph` (itself recomputed with ``vrm_train.relations``) and
its snapshot; nothing here re-implements a score.

    cut = score_cutoff(g)                          # edges scoring >= cut are pruned (None: nothing pruned)
    e = mark_wrong(g.edges)                        # + teacher_wrong / student_wrong columns
    choose_edges(e, "pruned", 50)                  # what the node-link view draws
    endpoint_probabilities(snap, g, [u, v])        # softmax of teacher and student at both endpoints
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from vrm_viz.graphs import Graph
from vrm_viz.snapshot import Snapshot

#: LaTeX of each UEP rule (spec §3.2); p = softmax of the student's real-view logits, p̃ of its virtual view.
UEP_FORMULAS: dict[str, str] = {
    "cross_entropy": r"J_{mn} = -\sum_{c} p_m(c)\,\log \tilde p_n(c) = H(p_m) + \mathrm{KL}(p_m \,\|\, \tilde p_n)",
    "joint_entropy": r"J_{mn} = H(p_m) + H(\tilde p_n)",
    "teacher_student": r"J_{mn} = \mathrm{KL}(p^T_m \,\|\, p^S_m) + \mathrm{KL}(\tilde p^T_n \,\|\, \tilde p^S_n)",
    "residual": r"\text{element } k \text{ of edge } mn \text{ dropped when } |E^S_{mn,k} - E^T_{mn,k}| > \delta",
    "none": r"\text{no edge is pruned}",
}
#: The same rules in words.
UEP_WORDS: dict[str, str] = {
    "cross_entropy": "the student's uncertainty at m plus its disagreement between m and n: an edge between "
    "two confidently, equally predicted images scores low and is kept",
    "joint_entropy": "the student's uncertainty at both endpoints; disagreement between them is not counted",
    "teacher_student": "how far the student's prediction is from the teacher's at each endpoint: a teacher "
    "response the student does not share makes the edge unreliable",
    "residual": "no edge is removed whole: the edge elements where teacher and student differ by more than δ "
    "are dropped from the loss",
    "none": "UEP is off: every edge of the set is matched",
}
SHOW = {
    "both": "kept and pruned edges (top-k of each)",
    "pruned": "pruned edges only (highest UEP score first)",
    "kept": "kept edges only (largest loss first)",
    "score": "every edge, ranked by UEP score",
}


def score_cutoff(graph: Graph) -> float | None:
    """The UEP score at which edges start being pruned: the lowest score among pruned edges (edges above
    it are pruned; at it, ties are broken by position). None when no edge is pruned or there is no score."""
    e = graph.edges
    pruned = e.score[~e.kept].dropna()
    return float(pruned.min()) if len(pruned) else None


def mark_wrong(edges: pd.DataFrame) -> pd.DataFrame:
    """The edge table with ``teacher_wrong`` / ``student_wrong``: an endpoint whose prediction is not its class."""
    out = edges.copy()
    for model, col in (("teacher", "pred_t_class"), ("student", "pred_s_class")):
        if f"u_{col}" in out and out[f"u_{col}"].notna().any():
            wrong = (out[f"u_{col}"] != out["u_class"]) | (out[f"v_{col}"] != out["v_class"])
            out[f"{model}_wrong"] = wrong.to_numpy(dtype=bool)
        else:
            out[f"{model}_wrong"] = False
    return out


def filter_wrong(edges: pd.DataFrame, *, teacher_wrong: bool = False, student_wrong: bool = False):
    """Rows of :func:`mark_wrong`'s table with a teacher-wrong and/or student-wrong endpoint (False: any)."""
    sel = np.ones(len(edges), dtype=bool)
    if teacher_wrong:
        sel &= edges.teacher_wrong.to_numpy()
    if student_wrong:
        sel &= edges.student_wrong.to_numpy()
    return edges[sel]


def choose_edges(edges: pd.DataFrame, show: str, k: int, *, by: str = "loss") -> pd.DataFrame:
    """The edges the node-link view draws. ``show`` (see :data:`SHOW`): "both" = the k kept edges with the
    largest ``by`` and the k pruned edges with the highest UEP score; "pruned" / "kept": k of one status;
    "score": the k highest UEP scores whatever their status."""
    if show not in SHOW:
        raise ValueError(f"show must be one of {list(SHOW)}; got {show!r}")

    def top(df, col):
        asc = col == "cosine"
        return df.sort_values(col, ascending=asc, na_position="last", kind="stable").head(k)

    kept, pruned = edges[edges.kept], edges[~edges.kept]
    if show == "kept":
        return top(kept, by)
    if show == "pruned":
        return top(pruned, "score")
    if show == "score":
        return top(edges, "score")
    return pd.concat([top(kept, by), top(pruned, "score")])


def endpoint_probabilities(snap: Snapshot, graph: Graph, vertices: list[int], top: int = 5) -> pd.DataFrame:
    """Softmax probabilities (temperature 1, raw logits, as UEP uses them) of student and teacher at IS
    vertices: per vertex and model, its ``top`` most probable classes plus its true class. Long form:
    vertex, label, model, class, prob, true (is the true class), rank."""
    rows = []
    for vertex in vertices:
        vx = graph.vertices.iloc[vertex]
        i, virtual = int(vx["image"]), vx["view"] == "virtual"
        for model, logits in (
            ("student", snap.s_v if virtual else snap.s),
            ("teacher", snap.t_v if virtual else snap.t),
        ):
            if logits is None:
                continue
            p = torch.softmax(logits[i].double(), -1)
            order = torch.argsort(p, descending=True, stable=True).tolist()
            picked = order[:top] + ([int(vx["target"])] if int(vx["target"]) not in order[:top] else [])
            for c in picked:
                rows.append(
                    dict(
                        vertex=vertex,
                        label=vx["label"],
                        model=model,
                        **{"class": snap.classes[c]},
                        prob=float(p[c]),
                        true=c == int(vx["target"]),
                        rank=order.index(c) + 1,
                    )
                )
    return pd.DataFrame(rows, columns=["vertex", "label", "model", "class", "prob", "true", "rank"])
