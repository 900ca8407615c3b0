"""vrm_viz.compare: teacher–student metrics against hand-computed cases."""

import math

import numpy as np
import pytest
import torch

from vrm_viz import compare as C
from vrm_viz.graphs import GraphOptions
from vrm_viz.snapshot import Snapshot

RNG = np.random.default_rng(0)


def snapshot(s, t, targets, *, s_v=None, t_v=None, feat_s=None, feat_t=None, epoch=0, kind="probe", batch=-1):
    s = torch.as_tensor(s, dtype=torch.float32)
    b, c = s.shape
    img = torch.zeros(b, 1, 4, 4, dtype=torch.uint8)
    return Snapshot(
        path="",
        kind=kind,
        split="test",
        epoch=epoch,
        batch=batch,
        method="vrm",
        dataset="toy",
        classes=[f"c{i}" for i in range(c)],
        mean=[0.0],
        std=[1.0],
        student_arch="s",
        teacher_arch="t",
        s=s,
        s_v=s if s_v is None else torch.as_tensor(s_v, dtype=torch.float32),
        targets=torch.as_tensor(targets),
        index=torch.arange(b),
        image=img,
        image_v=img,
        t=None if t is None else torch.as_tensor(t, dtype=torch.float32),
        t_v=None if t is None else torch.as_tensor(t if t_v is None else t_v, dtype=torch.float32),
        feat_s=feat_s,
        feat_t=feat_t,
    )


# ------------------------------------------------------------------ linear CKA
def test_cka_hand_example_3x2():
    # X centred: XᵀX = [[2, 1], [1, 2]] (‖·‖_F = √10); Y = [1, 0, −1]ᵀ: YᵀY = 2; YᵀX = [2, 1] (‖·‖² = 5)
    # CKA = 5 / (√10 · 2) = √10 / 4
    x = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    y = np.array([[1.0], [0.0], [-1.0]])
    assert C.linear_cka(x, y) == pytest.approx(math.sqrt(10) / 4, abs=1e-12)
    # centring: shifting every column changes nothing
    assert C.linear_cka(x + np.array([3.0, -2.0]), y + 5.0) == pytest.approx(math.sqrt(10) / 4, abs=1e-12)


def test_cka_orthogonal_and_zero_cases():
    x = np.array([[1.0], [-1.0], [0.0]])
    y = np.array([[1.0], [1.0], [-2.0]])  # centred, orthogonal to x: HSIC = 0
    assert C.linear_cka(x, y) == pytest.approx(0.0, abs=1e-15)
    assert math.isnan(C.linear_cka(np.ones((4, 2)), RNG.normal(size=(4, 3))))


def test_cka_invariances():
    x = RNG.normal(size=(20, 6))
    q, _ = np.linalg.qr(RNG.normal(size=(6, 6)))
    assert np.allclose(q.T @ q, np.eye(6))
    assert C.linear_cka(x, x @ q) == pytest.approx(1.0, abs=1e-12)
    assert C.linear_cka(x, 3.7 * x) == pytest.approx(1.0, abs=1e-12)
    assert C.linear_cka(torch.tensor(x), torch.tensor(x)) == pytest.approx(1.0, abs=1e-12)
    y = RNG.normal(size=(20, 3))
    assert 0.0 < C.linear_cka(x, y) < 1.0
    assert C.linear_cka(x, y) == pytest.approx(C.linear_cka(y, x), abs=1e-12)


def test_cka_rejects_mismatched_samples():
    with pytest.raises(ValueError, match="same n"):
        C.linear_cka(np.zeros((3, 2)), np.zeros((4, 2)))


# ------------------------------------------------------------------ correlations and cosines
def test_matrix_correlation_perfect_and_anti():
    a = RNG.normal(size=(5, 5))
    assert C.matrix_correlation(a, 2 * a + 3) == pytest.approx({"pearson": 1.0, "spearman": 1.0})
    assert C.matrix_correlation(a, -a) == pytest.approx({"pearson": -1.0, "spearman": -1.0})
    r = C.matrix_correlation(a, np.exp(3 * a))  # monotone but not linear
    assert r["spearman"] == pytest.approx(1.0)
    assert r["pearson"] < 0.99


def test_matrix_correlation_hand_values_ties_and_mask():
    # centred [−1, 0, 1] and [−1, 1, 0]: Σ = 1, norms √2 · √2 → 0.5 (ranks equal the values)
    assert C.matrix_correlation([1, 2, 3], [1, 3, 2]) == pytest.approx({"pearson": 0.5, "spearman": 0.5})
    # ties: ranks [1.5, 1.5, 3] vs [1, 2, 3] → centred [−.5, −.5, 1]·[−1, 0, 1] = 1.5 / (√1.5 · √2) = √3/2
    r = C.matrix_correlation([1, 1, 2], [1, 2, 3])
    assert r["spearman"] == pytest.approx(math.sqrt(3) / 2)
    # Pearson on the values: centred [−1/3, −1/3, 2/3]·[−1, 0, 1] = 1 / (√(2/3) · √2) = √3/2 too
    assert r["pearson"] == pytest.approx(math.sqrt(3) / 2)
    a = np.array([[np.nan, 1.0, 2.0], [9.0, np.nan, 3.0], [-7.0, 5.0, np.nan]])
    b = np.array([[np.nan, 2.0, 4.0], [0.0, np.nan, 6.0], [100.0, 0.0, np.nan]])
    upper = np.triu(np.ones((3, 3), dtype=bool), 1)
    assert C.matrix_correlation(a, b, upper) == pytest.approx({"pearson": 1.0, "spearman": 1.0})
    assert C.matrix_correlation(a, b)["pearson"] < 0  # the lower triangle disagrees


def test_cosine_agreement():
    cos = np.array([[np.nan, 1.0, 0.5], [np.nan, np.nan, -0.5], [np.nan, np.nan, np.nan]])
    assert C.cosine_agreement(cos) == pytest.approx({"mean": 1.0 / 3.0, "median": 0.5})
    assert math.isnan(C.cosine_agreement(np.full((2, 2), np.nan))["mean"])


# ------------------------------------------------------------------ class-by-class logits
def test_mean_logit_difference_by_hand():
    s = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    t = [[0.0, 0.0], [1.0, 1.0], [5.0, 7.0]]
    snap = snapshot(np.array([*s, [0.0, 0.0]]), np.array([*t, [0.0, 0.0]]), [0, 0, 1, 1])
    d = C.mean_logit_difference(snap)
    # class 0: mean of (1, 2) and (2, 3) → (1.5, 2.5); class 1: mean of (0, −1) and (0, 0) → (0, −0.5)
    np.testing.assert_allclose(d, [[1.5, 2.5], [0.0, -0.5]])
    m = C.class_mean_logits(np.array(s), [0, 0, 2], 3)
    np.testing.assert_allclose(m[0], [2.0, 3.0])
    assert np.isnan(m[1]).all()
    np.testing.assert_allclose(m[2], [5.0, 6.0])


def test_mean_logit_difference_needs_teacher():
    with pytest.raises(ValueError, match="no teacher"):
        C.mean_logit_difference(snapshot(RNG.normal(size=(4, 3)), None, [0, 1, 2, 0]))


# ------------------------------------------------------------------ agreement
def test_agreement_is_perfect_when_student_equals_teacher():
    z = RNG.normal(size=(8, 4))
    zv = z + RNG.normal(scale=0.5, size=(8, 4))
    f = torch.tensor(RNG.normal(size=(8, 5)))
    m = C.agreement(snapshot(z, z, [0, 1, 2, 3] * 2, s_v=zv, t_v=zv, feat_s=f, feat_t=2 * f), GraphOptions())
    for key in ("is_cos_mean", "is_cos_median", "ic_cos_mean", "ic_cos_median", "cka_logits", "cka_features"):
        assert m[key] == pytest.approx(1.0, abs=1e-5), key
    for key in ("is_length_pearson", "is_length_spearman", "ic_length_pearson", "ic_length_spearman"):
        assert m[key] == pytest.approx(1.0, abs=1e-9), key
    assert m["top1_agreement"] == 1.0
    assert m["L_IS"] == pytest.approx(0.0, abs=1e-6) and m["L_IC"] == pytest.approx(0.0, abs=1e-6)
    assert set(m) == set(C.METRICS)


def test_agreement_of_a_negated_student():
    # s = −t on both views: every student edge is the teacher's negated (z-scoring commutes with negation),
    # so cosines are −1, lengths are equal, and with δ = 2 each edge costs (1 − cos)/δ = 1 (spec §4).
    z, zv = RNG.normal(size=(6, 3)), RNG.normal(size=(6, 3))
    snap = snapshot(-z, z, [0, 1, 2] * 2, s_v=-zv, t_v=zv)
    m = C.agreement(snap, GraphOptions(huber_delta=2.0))
    assert m["is_cos_mean"] == pytest.approx(-1.0, abs=1e-6) and m["ic_cos_median"] == pytest.approx(
        -1.0, abs=1e-6
    )
    assert m["is_length_pearson"] == pytest.approx(1.0, abs=1e-9)
    assert m["cka_logits"] == pytest.approx(1.0, abs=1e-9)  # CKA ignores a sign flip
    assert m["top1_agreement"] == 0.0  # argmax of −z is the argmin of z
    assert m["L_IS"] == pytest.approx(1.0, abs=1e-6) and m["L_IC"] == pytest.approx(1.0, abs=1e-6)
    assert math.isnan(m["cka_features"])  # no features saved


def test_agreement_needs_teacher_and_evolution_rows():
    z = RNG.normal(size=(6, 3))
    with pytest.raises(ValueError, match="teacher"):
        C.agreement(snapshot(z, None, [0, 1, 2] * 2))
    snaps = [
        snapshot(z, z + 0.1 * e, [0, 1, 2] * 2, epoch=e, kind=k, batch=b)
        for e, k, b in ((3, "probe", -1), (1, "probe", -1), (1, "train", 0))
    ] + [snapshot(z, None, [0, 1, 2] * 2, epoch=5)]
    ev = C.agreement_evolution(snaps, GraphOptions())
    assert len(ev) == 3  # the teacher-less snapshot is left out
    assert ev[ev.source == "probe"].epoch.tolist() == [1, 3]
    assert set(ev.source) == {"probe", "train b0"}
    long = C.long_metrics(ev, ["cka_logits", "L_IS"])
    assert len(long) == 6 and set(long.metric) == {C.METRICS["cka_logits"], C.METRICS["L_IS"]}
