"""The spurious-response experiment (vrm_viz.spurious): where one corrupted teacher prediction sends gradient."""

import math

import pandas as pd
import pytest
import torch

from vrm_train.config import VRMConfig
from vrm_viz.runs import DEMO_DIR, open_run
from vrm_viz.spurious import (
    UEP_HELPS_PRESET,
    corrupt_teacher,
    experiment,
    leak_summary,
    logit_gradients,
    loss_functions,
    spurious_gradients,
    uep_pruned_edges,
    uep_verdict,
    vrm_options,
)

B, C = 6, 5


def _random_batch(seed=0, b=8, c=10):
    g = torch.Generator().manual_seed(seed)
    t = 3 * torch.randn(b, c, generator=g, dtype=torch.float64)
    s = 2 * torch.randn(b, c, generator=g, dtype=torch.float64)
    return (
        s,
        s + 0.5 * torch.randn(b, c, generator=g, dtype=torch.float64),
        t,
        t + 0.5 * torch.randn(b, c, generator=g, dtype=torch.float64),
    )


def _uncertain_batch(k):
    """The student agrees confidently (class 0) on every sample but k, whose predictions are flat: the
    cross-entropy UEP scores of k's 2B−1 cross-view edges are then the largest of the batch."""
    g = torch.Generator().manual_seed(1)
    t = 3 * torch.randn(B, C, generator=g, dtype=torch.float64)
    t_v = t + 0.5 * torch.randn(B, C, generator=g, dtype=torch.float64)
    s = 0.3 * torch.randn(B, C, generator=g, dtype=torch.float64)
    s[:, 0] += 6.0
    s_v = s + 0.3 * torch.randn(B, C, generator=g, dtype=torch.float64)
    s[k] = 0.1 * torch.randn(C, generator=g, dtype=torch.float64)
    s_v[k] = 0.1 * torch.randn(C, generator=g, dtype=torch.float64)
    return s, s_v, t, t_v


def _run(batch, k, config=None, ratio=None, strength=1.0):
    s, s_v, t, t_v = batch
    wrong = int(t[k].argmin())
    fns = loss_functions(config, uep_ratio=ratio)
    return spurious_gradients(s, s_v, t, t_v, sample=k, wrong_class=wrong, strength=strength, losses=fns)


def _others(df, loss):
    d = df[df.loss == loss]
    return d.loc[~d.corrupted, "change"], float(d.loc[d.corrupted, "change"].iloc[0])


def test_corrupt_teacher_swaps_only_the_chosen_row():
    t = torch.tensor([[3.0, 1.0, -2.0], [0.5, 2.0, 1.0]])
    full = corrupt_teacher(t, 0, wrong_class=2, strength=1.0)
    assert full.tolist() == [[-2.0, 1.0, 3.0], [0.5, 2.0, 1.0]]
    half = corrupt_teacher(t, 0, wrong_class=2, strength=0.5)
    assert half[0].tolist() == [0.5, 1.0, 0.5]
    assert torch.equal(corrupt_teacher(t, 1, wrong_class=0, strength=0.0), t)
    assert t[0, 0] == 3.0  # the input is not modified
    for bad in ({"wrong_class": 3, "strength": 1.0}, {"wrong_class": 1, "strength": 1.5}):
        with pytest.raises(ValueError):
            corrupt_teacher(t, 0, **bad)
    with pytest.raises(ValueError):
        corrupt_teacher(t, 2, wrong_class=0, strength=1.0)


def test_kd_gradient_matches_its_closed_form():
    s, _, t, _ = _random_batch()
    cfg = {"kd": {"kd_weight": 0.7, "temperature": 3.0}}
    g = logit_gradients(loss_functions(cfg)["kd"], s, None, t, None)[:, : s.shape[1]]
    # d/ds [w T² · mean_i KL(softmax(t_i/T) ‖ softmax(s_i/T))] = w T / B · (softmax(s/T) − softmax(t/T))
    expected = 0.7 * 3.0 / s.shape[0] * (torch.softmax(s / 3.0, 1) - torch.softmax(t / 3.0, 1))
    torch.testing.assert_close(g, expected, rtol=1e-10, atol=1e-12)


def test_kd_confines_the_corruption_to_its_sample_exactly():
    df = _run(_random_batch(), k=3)
    others, own = _others(df, "kd")
    assert own > 0.01
    assert (others == 0.0).all()  # exactly: KD is a mean of per-sample terms
    assert leak_summary(df).set_index("loss").loc["kd", "leak"] == 0.0


@pytest.mark.parametrize("loss", ["rkd", "dist", "vrm_no_pruning", "vrm"])
def test_relation_losses_spread_the_corruption_to_every_sample(loss):
    df = _run(_random_batch(), k=3, ratio=0.0)
    others, own = _others(df, loss)
    assert own > 0
    assert (others > 1e-6 * own).all(), others.tolist()


def test_no_corruption_no_change():
    df = _run(_random_batch(), k=2, ratio=0.2, strength=0.0)
    assert (df["change"] == 0.0).all()


def test_uep_prunes_the_uncertain_sample_edges():
    k = 4
    s, s_v, _, _ = _uncertain_batch(k)
    ratio = (2 * B - 1 + 0.5) / B**2  # floor(ratio · B²) = 2B − 1 edges pruned
    assert uep_pruned_edges(s, s_v, k, is_edges="cross_view", uep="cross_entropy", uep_ratio=ratio) == (
        11,
        11,
    )
    assert uep_pruned_edges(s, s_v, 0, is_edges="cross_view", uep="cross_entropy", uep_ratio=ratio) == (2, 11)
    assert uep_pruned_edges(s, s_v, k, is_edges="all", uep="cross_entropy", uep_ratio=0.0) == (0, 4 * B - 3)


def test_uep_cuts_the_leak_when_it_prunes_the_corrupted_sample():
    k = 4
    batch = _uncertain_batch(k)
    ratio = (2 * B - 1 + 0.5) / B**2
    # IS graph only: once all of k's edges are pruned, the corrupted logits reach no loss term at all
    df = _run(batch, k, config={"vrm": {"lambda_ic": 0.0}}, ratio=ratio)
    pruned, own_pruned = _others(df, "vrm")
    kept, own_kept = _others(df, "vrm_no_pruning")
    assert own_kept > 0 and kept.mean() > 1e-3 * own_kept
    assert own_pruned == 0.0 and pruned.max() <= 1e-12 * kept.mean()
    # with the (unpruned) class graph as well, what leaks is what the IC graph passes on: less than before
    df = _run(batch, k, config={"vrm": {"lambda_ic": 1.0}}, ratio=ratio)
    pruned, _ = _others(df, "vrm")
    kept, _ = _others(df, "vrm_no_pruning")
    assert 0 < pruned.mean() < 0.9 * kept.mean()


def test_uep_does_not_help_when_it_prunes_other_edges():
    """Control: corrupt a confident sample (0) while UEP prunes the uncertain one's (4): the leak stays."""
    batch = _uncertain_batch(4)
    ratio = (2 * B - 1 + 0.5) / B**2
    df = _run(batch, 0, config={"vrm": {"lambda_ic": 0.0}}, ratio=ratio)
    pruned, _ = _others(df, "vrm")
    kept, _ = _others(df, "vrm_no_pruning")
    assert pruned.mean() > 0.2 * kept.mean()


def test_uep_ratio_zero_is_no_pruning():
    df = _run(_random_batch(), k=1, ratio=0.0)
    a = df[df.loss == "vrm"]["change"].to_numpy()
    b = df[df.loss == "vrm_no_pruning"]["change"].to_numpy()
    assert (a == b).all()


def test_permuting_the_batch_permutes_the_changes():
    s, s_v, t, t_v = _random_batch(seed=3)
    perm = torch.tensor([5, 2, 7, 0, 1, 6, 3, 4])
    df = _run((s, s_v, t, t_v), k=2, ratio=0.0)
    dp = _run((s[perm], s_v[perm], t[perm], t_v[perm]), k=int((perm == 2).nonzero()), ratio=0.0)
    for loss in ("kd", "rkd", "dist", "vrm_no_pruning"):
        a = torch.tensor(df[df.loss == loss]["change"].to_numpy())[perm]
        b = torch.tensor(dp[dp.loss == loss]["change"].to_numpy())
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-12)


def test_leak_summary_by_hand():
    df = pd.DataFrame(
        {
            "loss": ["a"] * 3 + ["b"] * 3,
            "label": ["A"] * 3 + ["B"] * 3,
            "sample": [0, 1, 2] * 2,
            "corrupted": [False, True, False] * 2,
            "grad_clean": [1.0, 1.0, 3.0, 1.0, 1.0, 1.0],
            "grad_corrupted": [1.0] * 6,
            "change": [1.0, 4.0, 3.0, 0.0, 0.0, 0.0],
        }
    )
    out = leak_summary(df).set_index("loss")
    assert (
        out.loc["a", "leak"] == 0.5
        and out.loc["a", "disturbance"] == 1.0
        and out.loc["a", "max_change_others"] == 3.0
    )
    assert math.isnan(out.loc["b", "leak"]) and out.loc["b", "disturbance"] == 0.0


def test_config_sections_are_used():
    opts = vrm_options({"vrm": {"uep": "none", "uep_ratio": 0.3}})
    assert opts["uep"] == "cross_entropy" and opts["uep_ratio"] == 0.3
    assert vrm_options()["huber_delta"] == VRMConfig().huber_delta
    s, _, t, _ = _random_batch()
    g1 = logit_gradients(loss_functions({"kd": {"kd_weight": 1.0}})["kd"], s, None, t, None)
    g2 = logit_gradients(loss_functions({"kd": {"kd_weight": 2.0}})["kd"], s, None, t, None)
    torch.testing.assert_close(g2, 2 * g1)


def test_demo_training_batch():
    run = open_run(f"{DEMO_DIR}/vrm_resnet8")
    row = run.snapshots[run.snapshots.kind == "train"].iloc[-1]
    snap = run.snapshot("train", int(row.epoch), int(row.batch))
    df = spurious_gradients(
        snap.s,
        snap.s_v,
        snap.t,
        snap.t_v,
        sample=0,
        wrong_class=int(snap.t[0].argmin()),
        strength=1.0,
        losses=loss_functions(run.config),
    )
    assert len(df) == 5 * snap.batch_size
    summary = leak_summary(df).set_index("loss")
    assert summary.loc["kd", "mean_change_others"] == 0.0
    for loss in ("rkd", "dist", "vrm_no_pruning", "vrm"):
        assert summary.loc[loss, "mean_change_others"] > 0.0


def _summary(with_, without):
    return pd.DataFrame(
        {"loss": ["vrm_no_pruning", "vrm"], "mean_change_others": [without, with_], "label": ["a", "b"]}
    )


def test_verdict_says_what_the_numbers_say():
    good = uep_verdict(_summary(0.005, 0.010), uep="teacher_student", uep_ratio=0.4)
    assert good["helps"] and good["text"].startswith("UEP helps here")
    assert "0.005" in good["text"] and "0.01" in good["text"] and "-50%" in good["text"]
    bad = uep_verdict(_summary(0.016, 0.012), uep="cross_entropy", uep_ratio=0.4)
    assert not bad["helps"] and bad["text"].startswith("UEP does not help here")
    assert "cannot see that the teacher is wrong" in bad["text"] and "+33%" in bad["text"]
    same = uep_verdict(_summary(0.01, 0.01), uep="joint_entropy", uep_ratio=0.0)
    assert not same["helps"] and "changes nothing" in same["text"]


def _page_batch(run, which):
    """The Learn VRM page's batch: its default (the first training snapshot) or the preset's (last probe)."""
    if which == "probe":
        return run.snapshot("probe", run.snapshot_epochs("probe")[-1])
    snaps = run.snapshots.sort_values(["kind", "epoch", "batch"], ascending=[False, True, True])
    kind, epoch, batch = next(snaps[["kind", "epoch", "batch"]].itertuples(index=False, name=None))
    return run.snapshot(kind, int(epoch), int(batch))


def _page_experiment(run, snap, uep, ratio, sample=0, size=16):
    b = slice(0, min(size, snap.batch_size))
    return experiment(
        snap.s[b],
        snap.s_v[b],
        snap.t[b],
        snap.t_v[b],
        run.config,
        sample=sample,
        wrong_class=int(snap.t[0].argmin()),
        strength=1.0,
        uep=uep,
        uep_ratio=ratio,
    )


def _mean_change_others(df, loss):
    d = df[df.loss == loss]
    return float(d.loc[~d.corrupted, "change"].mean())


def test_page_defaults_the_text_agrees_with_the_numbers():
    """At the page's defaults (the run's rule, cross_entropy at 0.4, on the first training batch) UEP makes
    the corrupted response reach the other samples more, not less; the page's text must say so."""
    run = open_run(f"{DEMO_DIR}/vrm_resnet8")
    opts = vrm_options(run.config)
    res = _page_experiment(run, _page_batch(run, "train"), opts["uep"], opts["uep_ratio"])
    with_, without = (_mean_change_others(res["samples"], k) for k in ("vrm", "vrm_no_pruning"))
    assert with_ > without
    assert not res["verdict"]["helps"] and res["verdict"]["text"].startswith("UEP does not help")


def test_preset_is_a_case_where_uep_helps():
    """The preset the page offers (teacher_student, last probe batch) does protect the other samples."""
    run = open_run(f"{DEMO_DIR}/vrm_resnet8")
    p = UEP_HELPS_PRESET
    res = _page_experiment(run, _page_batch(run, "probe"), p["uep"], p["uep_ratio"], p["sample"], p["size"])
    with_, without = (_mean_change_others(res["samples"], k) for k in ("vrm", "vrm_no_pruning"))
    assert with_ < without
    assert res["verdict"]["helps"] and res["verdict"]["text"].startswith("UEP helps")
    pruned, total = res["pruned"]
    assert pruned > total / 3  # it helps by pruning the corrupted sample's edges
    # the student-only rule at the same setting cannot see the wrong teacher
    ce = _page_experiment(
        run, _page_batch(run, "probe"), "cross_entropy", p["uep_ratio"], p["sample"], p["size"]
    )
    assert not ce["verdict"]["helps"]
