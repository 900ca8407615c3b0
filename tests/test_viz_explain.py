"""Pruned-edge explanations and across-run tables on the demo runs."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from vrm_train import relations as R
from vrm_viz import across as A
from vrm_viz import explain as X
from vrm_viz import graphs as G
from vrm_viz.runs import DEMO_DIR, discover_runs


@pytest.fixture(scope="module")
def runs():
    return {r.name: r for r in discover_runs(DEMO_DIR)}


@pytest.fixture(scope="module")
def vrm(runs):
    run = runs["vrm_resnet8"]
    snap = run.snapshot("probe", run.snapshot_epochs()[-1])
    return snap, G.inter_sample_graph(snap, G.GraphOptions(uep_ratio=0.3))


def test_cutoff_separates_kept_from_pruned(vrm):
    _, g = vrm
    cut = X.score_cutoff(g)
    e = g.edges
    assert g.n_pruned == math.floor(0.3 * g.n_edges)
    assert (e.score[~e.kept] >= cut).all() and (e.score[e.kept] <= cut).all()
    assert X.score_cutoff(G.inter_sample_graph(vrm[0], G.GraphOptions(uep_ratio=0.0))) is None


def test_every_uep_rule_has_a_formula_and_words():
    for rule in R.UEP_RULES:
        assert rule in X.UEP_FORMULAS and rule in X.UEP_WORDS


def test_choose_edges(vrm):
    _, g = vrm
    e = g.edges
    pruned = X.choose_edges(e, "pruned", 7)
    assert len(pruned) == 7 and (~pruned.kept).all()
    assert pruned.score.tolist() == sorted(e.score[~e.kept], reverse=True)[:7]
    kept = X.choose_edges(e, "kept", 5)
    assert kept.kept.all() and kept.loss.tolist() == sorted(e.loss[e.kept], reverse=True)[:5]
    both = X.choose_edges(e, "both", 4)
    assert sorted(both.status.value_counts().to_dict().items()) == [("kept", 4), ("pruned", 4)]
    by_score = X.choose_edges(e, "score", 3)
    assert by_score.score.tolist() == sorted(e.score, reverse=True)[:3]
    with pytest.raises(ValueError, match="show must be one of"):
        X.choose_edges(e, "all", 3)


def test_mark_and_filter_wrong():
    edges = pd.DataFrame(
        {
            "u_class": ["a", "a", "b"],
            "v_class": ["a", "b", "b"],
            "u_pred_t_class": ["a", "b", "b"],
            "v_pred_t_class": ["a", "b", "b"],
            "u_pred_s_class": ["b", "a", "b"],
            "v_pred_s_class": ["a", "b", "b"],
        }
    )
    out = X.mark_wrong(edges)
    assert out.teacher_wrong.tolist() == [False, True, False]
    assert out.student_wrong.tolist() == [True, False, False]
    assert len(X.filter_wrong(out, teacher_wrong=True, student_wrong=True)) == 0
    assert len(X.filter_wrong(out)) == 3
    no_teacher = edges.assign(u_pred_t_class=None, v_pred_t_class=None)
    assert not X.mark_wrong(no_teacher).teacher_wrong.any()


def test_endpoint_probabilities_are_the_softmax(vrm):
    snap, g = vrm
    virtual = int(np.flatnonzero(g.vertices.view == "virtual")[3])
    probs = X.endpoint_probabilities(snap, g, [0, virtual], top=snap.num_classes)
    for vertex, logits in ((0, (snap.s[0], snap.t[0])), (virtual, (snap.s_v[3], snap.t_v[3]))):
        for model, z in zip(("student", "teacher"), logits, strict=True):
            rows = probs[(probs.vertex == vertex) & (probs.model == model)]
            p = torch.exp(z.double() - torch.logsumexp(z.double(), 0)).numpy()
            got = dict(zip(rows["class"], rows.prob, strict=True))
            np.testing.assert_allclose([got[c] for c in snap.classes], p, rtol=1e-9)
            assert rows["true"].sum() == 1 and rows.loc[rows["rank"] == 1, "prob"].item() == pytest.approx(
                p.max()
            )
    top2 = X.endpoint_probabilities(snap, g, [0], top=2)
    assert len(top2[top2.model == "student"]) in (2, 3)  # the true class is added when not in the top 2


def test_across_runs_and_deltas(runs):
    chosen = [runs[n] for n in ("kd_resnet8", "vrm_resnet8", "vanilla_resnet8")]
    epoch = A.common_epochs(chosen)[-1]
    table = A.across_runs(chosen, epoch=epoch)
    assert table.run.tolist() == ["kd_resnet8", "vrm_resnet8", "vanilla_resnet8"]
    assert "no teacher" in table.set_index("run").note["vanilla_resnet8"]
    assert np.isnan(table.set_index("run").cka_logits["vanilla_resnet8"])
    out = A.with_deltas(table, "kd_resnet8").set_index("run")
    for col in ("best_top1", "cka_logits", "is_pruned_frac"):
        assert out.loc["kd_resnet8", f"Δ {col}"] == 0
        assert out.loc["vrm_resnet8", f"Δ {col}"] == pytest.approx(
            out.loc["vrm_resnet8", col] - out.loc["kd_resnet8", col]
        )
    with pytest.raises(ValueError, match="baseline run 'nope'"):
        A.with_deltas(table, "nope")
    missing = A.across_runs(chosen[:1], epoch=10_000)
    assert "no probe snapshot for epoch 10000" in missing.note[0] and np.isnan(missing.is_pruned_frac[0])
