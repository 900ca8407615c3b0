"""The graph pages mark undefined edges (spec §2.4) as such: not as kept, not as pruned."""

import dataclasses
import os

import numpy as np
import pytest

from vrm_viz import graphs as G
from vrm_viz import nodelink as N
from vrm_viz.figures import graphs as FG
from vrm_viz.figures import nodelink as FN
from vrm_viz.runs import DEMO_DIR, open_run


@pytest.fixture(scope="module")
def dup_snap():
    """The demo VRM probe batch with image 3's virtual view made identical to its real view (both models),
    and classes 1 and 4 given identical logit columns for the student (an undefined class edge)."""
    run = open_run(os.path.join(DEMO_DIR, "vrm_resnet8"))
    snap = run.snapshot("probe", run.snapshot_epochs("probe")[-1])
    s, s_v, t_v = snap.s.clone(), snap.s_v.clone(), snap.t_v.clone()
    s_v[3], t_v[3] = s[3], snap.t[3]
    s[:, 4], s_v[:, 4] = s[:, 1], s_v[:, 1]
    return dataclasses.replace(snap, s=s, s_v=s_v, t_v=t_v)


def test_inter_sample_graph_marks_the_duplicate_edge(dup_snap):
    b = dup_snap.batch_size
    g = G.inter_sample_graph(dup_snap, G.GraphOptions(uep="cross_entropy", uep_ratio=0.3))
    assert g.undefined[3, b + 3] and g.n_undefined >= 1
    row = g.edge(3, b + 3)
    assert row.status == "undefined" and bool(row.undefined) and row.loss == 0.0
    assert set(g.edges.status) <= {"kept", "pruned", "undefined"}
    assert (g.edges.status == "undefined").sum() == g.n_undefined
    status = g.matrix("status")
    assert status[3, b + 3] == 2.0 and np.isnan(status[b + 3, 3])  # one orientation, as every edge
    # a kept or pruned edge keeps its status
    other = g.edges[~g.edges.undefined].iloc[0]
    assert other.status == ("kept" if other.kept else "pruned")
    fig = FG.graph_heatmap(g, "status")
    assert f"{g.n_undefined} undefined" in fig.layout.title.text
    assert "undefined (no direction)" in fig.data[0].text.tolist()[3]
    nl = FN.node_link_figure(N.to_networkx(g), value="loss")
    assert "undefined edges (no direction)" in {tr.name for tr in nl.data}
    vec = G.edge_vectors(dup_snap, G.INTER_SAMPLE, g.options, 3, b + 3)
    assert (vec[["teacher", "student"]].to_numpy() == 0).all()


def test_inter_class_graph_marks_identical_classes(dup_snap):
    g = G.inter_class_graph(dup_snap, G.GraphOptions())
    assert g.undefined[1, 4] and g.n_undefined == 1
    assert g.edge(1, 4).status == "undefined" and g.edge(1, 2).status == "kept"
