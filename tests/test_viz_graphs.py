"""vrm_viz.graphs (+ the pruning tables of vrm_viz.compare and the figures of vrm_viz.figures.graphs) on the
demo runs: recomputed graphs must equal vrm_train.relations' outputs, counts must follow REP/UEP."""

import math
import os

import numpy as np
import pytest
import torch

from vrm_train import relations as R
from vrm_train.config import VRMConfig
from vrm_viz import compare as C
from vrm_viz import graphs as G
from vrm_viz import nodelink as N
from vrm_viz.figures import compare as FC
from vrm_viz.figures import graphs as FG
from vrm_viz.figures import nodelink as FN
from vrm_viz.runs import DEMO_DIR, open_run

ROOT = DEMO_DIR
OPTIONS = [
    G.GraphOptions(is_edges="cross_view", uep="cross_entropy", uep_ratio=0.2),
    G.GraphOptions(is_edges="all", uep="joint_entropy", uep_ratio=0.35, zscore=False, huber_delta=0.5),
    G.GraphOptions(is_edges="real_only", uep="cross_entropy", uep_ratio=0.5),
    G.GraphOptions(is_edges="cross_view", uep="none"),
    G.GraphOptions(is_edges="cross_view", uep="residual", huber_delta=0.3),
]


def _probe(name):
    run = open_run(os.path.join(ROOT, name))
    return run.snapshot("probe", run.snapshot_epochs("probe")[-1])


@pytest.fixture(scope="module")
def vrm_snap():
    return _probe("vrm_resnet8")


@pytest.fixture(scope="module")
def vanilla_snap():
    return _probe("vanilla_resnet8")


def _reference(snap, opts):
    virtual = opts.is_edges != "real_only"
    with torch.no_grad():
        return R.vrm_loss(
            snap.s, snap.s_v if virtual else None, snap.t, snap.t_v if virtual else None,
            **opts.as_kwargs(), lambda_is=1.0, lambda_ic=1.0,
        )  # fmt: skip


def _canonical(mat, opts, b):
    """A vertex-coordinate matrix back in the shape vrm_train.relations returns."""
    return mat[:b, b:] if opts.is_edges == "cross_view" else mat


def test_options_defaults_come_from_the_config():
    cfg, opts = VRMConfig(), G.GraphOptions()
    for name in ("is_edges", "zscore", "uep", "uep_ratio", "huber_delta"):
        assert getattr(opts, name) == getattr(cfg, name)
    run = open_run(os.path.join(ROOT, "vrm_no_virtual_resnet8"))
    assert G.GraphOptions.from_config(run.config).is_edges == "real_only"
    with pytest.raises(ValueError, match="uep_ratio"):
        G.GraphOptions(uep_ratio=1.0)
    with pytest.raises(ValueError, match="is_edges"):
        G.GraphOptions(is_edges="dense")


@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: f"{o.is_edges}-{o.uep}")
def test_inter_sample_graph_equals_relations(vrm_snap, opts):
    g = G.inter_sample_graph(vrm_snap, opts)
    ref = _reference(vrm_snap, opts)
    b = vrm_snap.batch_size
    n = {"cross_view": b * b, "all": 2 * b * (2 * b - 1) // 2, "real_only": b * (b - 1) // 2}[opts.is_edges]
    assert g.n_edges == n == len(g.edges)
    assert np.array_equal(_canonical(g.candidates, opts, b), ref.masks["is_candidates"].numpy())
    assert np.array_equal(_canonical(g.kept, opts, b), ref.masks["is"].numpy())
    if opts.uep in ("cross_entropy", "joint_entropy"):
        assert g.n_kept == n - math.floor(opts.uep_ratio * n)
    if opts.uep == "none":
        assert g.n_kept == n
    kept_losses = g.edges.loss[g.edges.kept]
    expected_is = float(ref.terms["is"])
    if opts.uep == "residual":  # L_IS averages the partial losses over every edge
        assert g.edges.loss.sum() / n == pytest.approx(expected_is, rel=1e-5, abs=1e-7)
    else:
        assert kept_losses.mean() == pytest.approx(expected_is, rel=1e-5)
    assert g.terms["L_IS"] == pytest.approx(expected_is) and g.terms["L_IC"] == pytest.approx(
        float(ref.terms["ic"])
    )
    assert len(g.vertices) == (2 * b if opts.virtual else b)


def test_edge_values_match_hand_computation(vrm_snap):
    opts = G.GraphOptions(is_edges="all", zscore=True, uep="cross_entropy", uep_ratio=0.2)
    g = G.inter_sample_graph(vrm_snap, opts)
    b = vrm_snap.batch_size

    def zscored(z):
        z = z.double()
        z = (z - z.mean(1, keepdim=True)) / (z.std(1, unbiased=False, keepdim=True) + 1e-6)
        return z

    xs = zscored(torch.cat([vrm_snap.s, vrm_snap.s_v]))
    xt = zscored(torch.cat([vrm_snap.t, vrm_snap.t_v]))
    for u, v in ((0, 1), (2, b + 2), (b + 3, 2 * b - 1)):
        es, et = xs[u] - xs[v], xt[u] - xt[v]
        assert g.length_s[u, v] == pytest.approx(float(es.norm()), rel=1e-6)
        assert g.length_t[u, v] == pytest.approx(float(et.norm()), rel=1e-6)
        es, et = es / es.norm(), et / et.norm()
        assert g.cosine[u, v] == pytest.approx(float(es @ et), abs=1e-5)
        assert g.loss[u, v] == pytest.approx(_huber(es - et, opts.huber_delta), abs=1e-6)
        raw = torch.cat([vrm_snap.s, vrm_snap.s_v]).double()
        p_u, logp_v = raw[u].softmax(0), raw[v].log_softmax(0)
        assert g.score[u, v] == pytest.approx(float(-(p_u * logp_v).sum()), rel=1e-9)
        vec = G.edge_vectors(vrm_snap, G.INTER_SAMPLE, opts, u, v)
        np.testing.assert_allclose(vec.student, es.numpy(), atol=1e-5)
        np.testing.assert_allclose(vec.teacher, et.numpy(), atol=1e-5)
    assert np.isnan(g.loss[1, 0]) and np.isnan(g.loss[3, 3])  # one orientation, no self-loops


def _huber(d, delta):
    a = d.abs()
    return float(torch.where(a < delta, 0.5 * a * a / delta, a - 0.5 * delta).sum())


def test_edge_table_counts_and_flags(vrm_snap):
    g = G.inter_sample_graph(vrm_snap, G.GraphOptions(is_edges="cross_view", uep_ratio=0.3))
    b, y, e = vrm_snap.batch_size, vrm_snap.targets.numpy(), g.edges
    assert int(e.diagonal.sum()) == b
    assert (e.u[e.diagonal].str[1:] == e.v[e.diagonal].str[1:]).all()
    assert int(e.same_class.sum()) == int((y[:, None] == y[None, :]).sum())
    assert set(e.u_view) == {"real"} and set(e.v_view) == {"virtual"}
    assert e.u.str.startswith("r").all() and e.v.str.startswith("v").all()
    assert (e.status == "pruned").sum() == math.floor(0.3 * b * b)
    names = np.asarray(vrm_snap.classes)
    assert (e.u_class.to_numpy() == names[y[e.u_id.to_numpy()]]).all()
    pred_t = vrm_snap.t.argmax(1).numpy()
    assert (e.u_pred_t_class.to_numpy() == names[pred_t[e.u_id.to_numpy()]]).all()
    row = g.edge(b + 4, 2)  # either orientation finds the stored edge r2 → v4
    assert (row.u, row.v) == ("r2", "v4")
    assert g.edge(0, 1) is None  # a real–real pair is not a cross-view edge


def test_inter_class_graph_equals_relations(vrm_snap):
    opts = G.GraphOptions()
    g = G.inter_class_graph(vrm_snap, opts)
    c = vrm_snap.num_classes
    assert g.n_edges == c * (c - 1) // 2 == g.n_kept
    assert g.edges.loss.mean() == pytest.approx(float(_reference(vrm_snap, opts).terms["ic"]), rel=1e-5)
    assert g.matrix("loss").shape == (c, c) and g.unavailable("score") is not None


def test_inter_view_block_and_diagonal(vrm_snap):
    g = G.inter_sample_graph(vrm_snap, G.GraphOptions(is_edges="all"))
    b = vrm_snap.batch_size
    block, diag = G.inter_view(g, "cosine")
    assert block.shape == (b, b) and np.isfinite(block).all()  # every real→virtual pair is an edge of "all"
    assert len(diag) == b and diag.u.tolist() == [f"r{i}" for i in range(b)]
    np.testing.assert_allclose(diag.cosine.to_numpy(), np.diag(block))
    with pytest.raises(ValueError, match="real_only"):
        G.inter_view(G.inter_sample_graph(vrm_snap, G.GraphOptions(is_edges="real_only")))


def test_student_only_graph_without_teacher(vanilla_snap):
    opts = G.GraphOptions(uep_ratio=0.25)
    g = G.inter_sample_graph(vanilla_snap, opts)
    assert not g.has_teacher and g.terms == {}
    # UEP only reads the student: vrm_loss with any teacher prunes the same edges
    s, s_v = vanilla_snap.s, vanilla_snap.s_v
    ref = R.vrm_loss(s, s_v, s, s_v, **opts.as_kwargs(), lambda_is=1.0, lambda_ic=1.0)
    assert np.array_equal(
        g.kept[: vanilla_snap.batch_size, vanilla_snap.batch_size :], ref.masks["is"].numpy()
    )
    assert "teacher" in g.unavailable("loss") and "teacher" in g.unavailable("length", "difference")
    assert g.unavailable("score") is None and g.unavailable("length", "student") is None
    with pytest.raises(ValueError, match="teacher"):
        g.matrix("cosine")
    assert g.edges.loss.isna().all() and N.rank_column(g) == "score"
    assert list(
        G.edge_vectors(vanilla_snap, G.INTER_SAMPLE, opts, 0, vanilla_snap.batch_size + 1).columns
    ) == ["dimension", "student"]


def test_networkx_graph(vrm_snap):
    g = G.inter_sample_graph(vrm_snap, G.GraphOptions())
    b = vrm_snap.batch_size
    full = N.to_networkx(g)
    assert full.number_of_nodes() == 2 * b and full.number_of_edges() == b * b
    assert full.nodes[b + 1]["label"] == "v1" and full.nodes[b + 1]["view"] == "virtual"
    top = N.to_networkx(g, top_k=25)
    assert top.number_of_edges() == 25 and top.number_of_nodes() == 2 * b
    shown = [d["loss"] for _, _, d in top.edges(data=True)]
    rest = g.edges.loss.sort_values(ascending=False).iloc[25:]
    assert min(shown) >= rest.max()


def test_pruning_summary_and_filters(vrm_snap):
    g = G.inter_sample_graph(vrm_snap, G.GraphOptions(uep_ratio=0.4))
    s = C.pruning_summary(g).set_index(["group", "category"])
    b, y = vrm_snap.batch_size, vrm_snap.targets.numpy()
    assert s.loc[("all", "all edges"), "edges"] == b * b
    assert s.loc[("all", "all edges"), "pruned"] == math.floor(0.4 * b * b)
    same = int((y[:, None] == y[None, :]).sum())
    assert s.loc[("pair", "same class"), "edges"] == same
    assert s.loc[("pair", "different class"), "edges"] == b * b - same
    assert s.loc[("inter-view", "diagonal (same image)"), "edges"] == b
    c0 = vrm_snap.classes[0]
    k = int((y == 0).sum())
    assert s.loc[("class", c0), "edges"] == 2 * k * b - k * k  # rows or columns of class 0
    pruned = C.filter_edges(g.edges, status="pruned")
    assert len(pruned) == g.n_pruned and (~pruned.kept).all()
    diag = C.filter_edges(g.edges, diagonal_only=True, pair="same")
    assert len(diag) == b
    assert len(C.filter_edges(g.edges, pair="different", diagonal_only=True)) == 0
    only = C.filter_edges(g.edges, classes=[c0])
    assert len(only) == s.loc[("class", c0), "edges"]


def test_vertex_images(vrm_snap):
    g = G.inter_sample_graph(vrm_snap)
    b = vrm_snap.batch_size
    img = G.vertex_image(vrm_snap, g, b + 3)
    assert img.dtype == np.uint8 and img.shape == (*vrm_snap.image.shape[2:], 3)
    np.testing.assert_array_equal(img[..., 0], vrm_snap.image_v[3, 0].numpy())
    np.testing.assert_array_equal(G.vertex_image(vrm_snap, g, 3)[..., 2], vrm_snap.image[3, -1].numpy())


# ------------------------------------------------------------------ figures
def test_heatmap_figures(vrm_snap):
    g = G.inter_sample_graph(vrm_snap, G.GraphOptions(uep_ratio=0.3))
    b = vrm_snap.batch_size
    fig = FG.graph_heatmap(g, "status", sort_by_class=True)
    (trace,) = fig.data
    z = np.asarray(trace.z, dtype=float)
    assert trace.type == "heatmap" and z.shape == (2 * b, 2 * b)
    assert int((z == 1).sum()) == 2 * g.n_pruned and int((z == 0).sum()) == 2 * g.n_kept  # both orientations
    assert len(fig.layout.shapes) == 2  # the real/virtual boundary
    real_classes = [lab.split(" · ")[1] for lab in trace.y[:b]]
    order = {c: i for i, c in enumerate(vrm_snap.classes)}
    assert [order[c] for c in real_classes] == sorted(order[c] for c in real_classes)
    assert "pruned" in fig.layout.title.text
    iv = FG.graph_heatmap(g, "loss", block="inter-view")
    assert np.asarray(iv.data[0].z, dtype=float).shape == (b, b) and len(iv.layout.shapes) == 0
    np.testing.assert_allclose(np.asarray(iv.data[0].z, dtype=float), g.loss[:b, b:])
    ro = FG.graph_heatmap(G.inter_sample_graph(vrm_snap, G.GraphOptions(is_edges="real_only")), "loss")
    assert np.asarray(ro.data[0].z, dtype=float).shape == (b, b) and len(ro.layout.shapes) == 0
    diff = FG.graph_heatmap(g, "length", "difference")
    assert diff.data[0].zmid == 0


def test_node_link_and_side_by_side_figures(vrm_snap):
    g = G.inter_sample_graph(vrm_snap, G.GraphOptions(uep_ratio=0.5))
    b = vrm_snap.batch_size
    nxg = N.to_networkx(g, top_k=80, by="score")  # the highest scores are the pruned ones
    fig = FN.node_link_figure(nxg, value="score", layout="circular")
    by_name = {}
    for t in fig.data:
        by_name.setdefault(t.name, []).append(t)
    assert sum(len(t.x) for t in by_name["real vertices"] + by_name["virtual vertices"]) == 2 * b
    assert by_name["virtual vertices"][0].marker.symbol == "diamond"
    assert len(by_name["edges (click to inspect)"][0].x) == 80
    n_pruned = sum(not d["kept"] for _, _, d in nxg.edges(data=True))
    assert n_pruned > 0 and len(by_name["pruned edges"][0].x) == 3 * n_pruned  # two ends + a gap
    assert by_name["pruned edges"][0].line.dash == "dash"
    assert len([n for n in by_name if n in vrm_snap.classes]) == len(set(vrm_snap.targets.tolist()))
    side = FG.teacher_student_heatmaps(
        g.length_t, g.length_s, g.labels, g.labels, title="t", value_label="len"
    )
    assert [t.type for t in side.data] == ["heatmap"] * 3
    assert side.data[0].coloraxis == side.data[1].coloraxis == "coloraxis" != side.data[2].coloraxis
    both = np.concatenate([g.length_t.ravel(), g.length_s.ravel()])
    assert side.layout.coloraxis.cmin == pytest.approx(np.nanmin(both))
    assert side.layout.coloraxis.cmax == pytest.approx(np.nanmax(both))
    np.testing.assert_allclose(np.asarray(side.data[2].z, dtype=float), g.length_s - g.length_t)


def test_edge_and_summary_figures(vrm_snap):
    opts = G.GraphOptions()
    g = G.inter_sample_graph(vrm_snap, opts)
    bars = FG.edge_vector_bars(
        G.edge_vectors(vrm_snap, G.INTER_SAMPLE, opts, 0, vrm_snap.batch_size + 5), title="e"
    )
    assert [t.name for t in bars.data] == ["teacher", "student"]
    assert all(len(t.x) == vrm_snap.num_classes for t in bars.data)
    ic_bars = FG.edge_vector_bars(G.edge_vectors(vrm_snap, G.INTER_CLASS, opts, 1, 4), title="e")
    assert len(ic_bars.data[0].x) == 2 * vrm_snap.batch_size
    imgs = FG.edge_images_figure(
        [G.vertex_image(vrm_snap, g, i) for i in (0, vrm_snap.batch_size + 5)], ["a", "b"]
    )
    assert [t.type for t in imgs.data] == ["image", "image"]
    summary = FC.pruning_summary_figure(C.pruning_summary(g))
    assert [t.name for t in summary.data] == ["pair", "inter-view", "class"]
    assert len(summary.data[2].x) == len(set(g.vertices["class"]))


@pytest.mark.parametrize("name", ["vrm_resnet8", "vanilla_resnet8"])
def test_reprune_equals_a_fresh_graph(name):
    snap = _probe(name)
    for opts in (
        G.GraphOptions(uep_ratio=0.1),
        G.GraphOptions(is_edges="all", uep="joint_entropy", uep_ratio=0.1),
    ):
        fresh = G.inter_sample_graph(snap, G.GraphOptions(**{**opts.as_kwargs(), "uep_ratio": 0.45}))
        again = G.reprune(G.inter_sample_graph(snap, opts), 0.45)
        assert again.options == fresh.options
        assert np.array_equal(again.kept, fresh.kept) and again.terms == fresh.terms
        assert again.n_pruned == math.floor(0.45 * again.n_edges) > 0
        assert (again.edges.status == "pruned").sum() == again.n_pruned
