"""Figures readable at a glance: large heatmap cells, no labels printed over each other, zoomed axes,
deltas against a baseline, a glossary covering the app's terms and help for every option."""

import dataclasses

import numpy as np
import pytest

from vrm_viz import explain as X
from vrm_viz import graphs as G
from vrm_viz import lesson
from vrm_viz import runstats as S
from vrm_viz.figures import explain as FX
from vrm_viz.figures import graphs as FG
from vrm_viz.figures import lesson as FL
from vrm_viz.figures.runs import seed_bars_figure
from vrm_viz.glossary import GLOSSARY, OPTION_HELP, PAPER, glossary_markdown
from vrm_viz.runs import DEMO_DIR, discover_runs


@pytest.fixture(scope="module")
def runs():
    return discover_runs(DEMO_DIR)


@pytest.fixture(scope="module")
def vrm(runs):
    run = next(r for r in runs if r.name == "vrm_resnet8")
    return run, run.snapshot("probe", run.snapshot_epochs()[-1])


def _panel_px(fig, axis: str, n: int) -> float:
    """Height in px of one heatmap row of the panel on ``axis`` (plot area = height − margins)."""
    lo, hi = fig.layout[axis].domain
    area = fig.layout.height - fig.layout.margin.t - fig.layout.margin.b
    return (hi - lo) * area / n


def test_teacher_student_heatmaps_stay_readable_at_b96():
    n = 96
    rng = np.random.default_rng(0)
    t, s = rng.random((n, n)), rng.random((n, n))
    labels = [f"r{i}" for i in range(n)]
    fig = FG.teacher_student_heatmaps(t, s, labels, labels, title="t", value_label="len")
    for axis in ("yaxis", "yaxis2", "yaxis3"):
        assert _panel_px(fig, axis, n) >= 5, axis  # was < 2 px side by side
    small = FG.teacher_student_heatmaps(
        t[:8, :8], s[:8, :8], labels[:8], labels[:8], title="t", value_label="l"
    )
    assert small.layout.xaxis2.domain[0] > small.layout.xaxis.domain[1]  # side by side when small


def test_seed_bars_never_overprint(runs):
    fig = seed_bars_figure(S.seed_groups(runs))
    assert fig.layout.uniformtext.mode == "hide" and all(t.textposition == "inside" for t in fig.data)
    assert fig.layout.yaxis.range[0] > 0


def test_group_deltas_against_a_baseline(runs):
    groups = S.seed_groups(runs)
    out = S.group_deltas(groups, runs, "kd_resnet8").set_index("group")
    assert out.loc["kd_resnet8", "Δ best"] == 0 and out.loc["kd_resnet8", "paired seeds"] == 2
    by_name = {r.name: r for r in runs}
    want = np.mean(
        [
            by_name[v].best_top1 - by_name[k].best_top1
            for v, k in (("vrm_resnet8", "kd_resnet8"), ("vrm_resnet8_s1", "kd_resnet8_s1"))
        ]
    )
    assert out.loc["vrm_resnet8", "Δ best (paired)"] == pytest.approx(want)
    assert out.loc["vrm_resnet8", "Δ best"] == pytest.approx(
        out.loc["vrm_resnet8", "best_mean"] - out.loc["kd_resnet8", "best_mean"]
    )
    with pytest.raises(ValueError, match="baseline group"):
        S.group_deltas(groups, runs, "nope")
    assert S.default_axes(["seed", "vrm.uep", "lr"]) == ["vrm.uep", "lr"]


def test_lesson_figures_do_not_overlap_labels(vrm):
    run, snap = vrm
    batch = lesson.tiny_batch(snap, [0, 1, 2, 3], config=run.config)
    fig = FL.logits_figure(lesson.logit_frame(batch), batch.classes)
    # one column of sample labels per row: the right panels share the left panels' y axes
    assert fig.layout.yaxis2.matches == "y" and fig.layout.yaxis2.showticklabels is False
    verts = {m: lesson.vertex_frame(batch, m) for m in ("teacher", "student")}
    edges = FL.edges_figure(verts, lesson.edge_frame(batch))
    positions = {t.name: t.textposition for t in edges.data if t.mode == "markers+text"}
    assert positions == {"real view": "top center", "virtual view": "bottom center"}


def test_score_histogram_and_delta_figures(vrm, runs):
    _, snap = vrm
    g = G.inter_sample_graph(snap, G.GraphOptions(uep_ratio=0.25))
    cut = X.score_cutoff(g)
    fig = FX.score_histogram_figure(g.edges, cut, rule="cross_entropy", highlight=1.0)
    assert sum(sum(t.y) for t in fig.data) == g.n_edges
    kept_bar = next(t for t in fig.data if t.name.startswith("kept"))
    assert max(x for x, y in zip(kept_bar.x, kept_bar.y, strict=True) if y) < cut + kept_bar.width
    assert {t.name for t in fig.data} == {f"kept ({g.n_kept})", f"pruned ({g.n_pruned})"}
    assert [s.x0 for s in fig.layout.shapes] == [cut, 1.0]
    probs = X.endpoint_probabilities(snap, g, [0, snap.batch_size + 1])
    bars = FX.endpoint_probability_figure(probs)
    assert len(bars.data) == 4 and [a.text for a in bars.layout.annotations] == ["r0", "v1"]
    from vrm_viz import across as A

    table = A.with_deltas(
        A.across_runs([r for r in runs if r.name in ("kd_resnet8", "vrm_resnet8")]), "kd_resnet8"
    )
    d = FX.delta_bars_figure(table, ["cka_logits", "is_cos_mean"], "kd_resnet8")
    assert list(d.data[0].x) == ["vrm_resnet8"]
    assert d.data[0].y[0] == pytest.approx(table.set_index("run").loc["vrm_resnet8", "Δ cka_logits"])


def test_glossary_and_option_help():
    for term in ("IS", "IC", "IV", "REP", "UEP", "δ", "CKA"):
        assert term in GLOSSARY and len(GLOSSARY[term]) > 40
    assert PAPER in glossary_markdown() and "2502.20760" in PAPER
    for f in dataclasses.fields(G.GraphOptions):
        assert f.name in OPTION_HELP, f"no help text for option {f.name}"
    assert "Huber" in OPTION_HELP["huber_delta"]


def test_heatmap_cells_carry_their_edge(vrm):
    _, snap = vrm
    g = G.inter_sample_graph(snap, G.GraphOptions())
    for block, sort in (("full", True), ("inter-view", False)):
        fig = FG.graph_heatmap(g, "loss", block=block, sort_by_class=sort, clickable=True)
        cells = fig.data[-1]
        assert cells.name == "edge cells" and len(cells.customdata) == (
            2 * g.n_edges if block == "full" else g.batch_size**2
        )
        labels = np.asarray(FG._axis_labels(g), dtype=object)
        for (u, v), x, y in list(zip(cells.customdata, cells.x, cells.y, strict=True))[:50]:
            assert (y, x) == (labels[u], labels[v])  # row = u, column = v
            assert g.candidates[u, v] or g.candidates[v, u]
