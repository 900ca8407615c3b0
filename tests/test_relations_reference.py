"""Slow, loop-based reference of the VRM maths written straight from shared/spec/VRM.md, plus tests that pin
the reference itself to hand-computed values. Other test_relations_* files import it.

Nothing here calls vrm_train.relations: every expected value of the relation tests comes from this file.
"""

import math

import pytest
import torch
import torch.nn.functional as F

EPS_Z = 1e-6
TAU = 1e-5  # spec §2.4: default edge_tol


def ref_zscore_rows(x):
    """Row by row: (z − mean) / (std(unbiased=False) + 1e-6)."""
    rows = []
    for z in x:
        mean = z.sum() / z.numel()
        std = ((z - mean) ** 2).sum().div(z.numel()).sqrt()
        rows.append((z - mean) / (std + EPS_Z))
    return torch.stack(rows)


def ref_is_edges(is_edges, b):
    """List of ((u, v) vertex indices in [real 0..B-1; virtual B..2B-1], (row, col) of the mask)."""
    if is_edges == "cross_view":
        return [((m, b + n), (m, n)) for m in range(b) for n in range(b)]
    n = 2 * b if is_edges == "all" else b
    return [((u, v), (u, v)) for u in range(n) for v in range(u + 1, n)]


def ref_mask_shape(is_edges, b):
    return (2 * b, 2 * b) if is_edges == "all" else (b, b)


def ref_score(p_first, p_second, uep):
    """UEP score of one edge from two probability vectors (spec §3.2)."""
    if uep == "cross_entropy":
        return float(-(p_first * torch.log(p_second)).sum())
    ent = [float(-(p * torch.log(p)).sum()) for p in (p_first, p_second)]
    return ent[0] + ent[1]


def ref_kl(p, q):
    """KL(p ‖ q) = Σ_c p(c) log(p(c) / q(c))."""
    return float(sum(p[c] * math.log(p[c] / q[c]) for c in range(p.numel())))


def ref_scores(s, s_v, is_edges, uep, t=None, t_v=None):
    """Dict mask-position -> score, softmax of the raw logits (temperature 1), float64. teacher_student
    (spec §3.2): KL(p^T_u ‖ p^S_u) + KL(p^T_v ‖ p^S_v), vertex by vertex."""

    def probs(a, a_v):
        rows = [torch.softmax(r.detach().double(), 0) for r in a]
        return rows + ([] if a_v is None else [torch.softmax(r.detach().double(), 0) for r in a_v])

    rows, b = probs(s, s_v), s.shape[0]
    if uep == "teacher_student":
        kl = [ref_kl(p_t, p_s) for p_t, p_s in zip(probs(t, t_v), rows, strict=True)]
        return {pos: kl[u] + kl[v] for (u, v), pos in ref_is_edges(is_edges, b)}
    return {pos: ref_score(rows[u], rows[v], uep) for (u, v), pos in ref_is_edges(is_edges, b)}


def ref_pruned(scores, ratio):
    """Positions of the floor(ratio·n) largest scores; ties: smaller row-major position pruned first."""
    k = math.floor(ratio * len(scores))
    ranked = sorted(scores, key=lambda pos: (-scores[pos], pos))
    return set(ranked[:k])


def ref_unit(a):
    return F.normalize(a, dim=0)


def ref_undefined(x_u, x_v, tau=TAU):
    """Spec §2.4 for one model: ‖x_u − x_v‖² ≤ τ² (‖x_u‖² + ‖x_v‖²)."""
    x_u, x_v = x_u.detach(), x_v.detach()
    gap2 = sum(float(x_u[k] - x_v[k]) ** 2 for k in range(x_u.numel()))
    return gap2 <= tau**2 * (float((x_u * x_u).sum()) + float((x_v * x_v).sum()))


def ref_edge_pair(xs, xt, u, v, tau, columns=False):
    """(e_s, e_t, undefined) of the edge u→v (rows, or columns when ``columns``); an undefined edge (for the
    student or the teacher) is the zero vector on both sides, with no dependence on the logits."""
    pick = (lambda x, i: x[:, i]) if columns else (lambda x, i: x[i])
    su, sv, tu, tv = pick(xs, u), pick(xs, v), pick(xt, u), pick(xt, v)
    if ref_undefined(su, sv, tau) or ref_undefined(tu, tv, tau):
        return su.new_zeros(su.shape).detach(), tu.new_zeros(tu.shape), True
    return ref_unit(su - sv), ref_unit(tu - tv), False


def ref_edge_loss(e_s, e_t, delta, residual):
    """(loss, dropped elements): Σ_k smooth_l1(e_s,k − e_t,k; β=δ), residual rule drops |d_k| > δ."""
    total, dropped = e_s.new_zeros(()), 0
    for k in range(e_s.numel()):
        if residual and abs(float((e_s[k] - e_t[k]).detach())) > delta:
            dropped += 1
            continue
        total = total + F.smooth_l1_loss(e_s[k], e_t[k], beta=delta)
    return total, dropped


def ref_prepare(s, s_v, t, t_v, is_edges, zscore):
    t, t_v = t.detach(), None if t_v is None else t_v.detach()
    if is_edges == "real_only":
        s_v = t_v = None
    f = ref_zscore_rows if zscore else (lambda x: x)
    xs = f(s) if s_v is None else torch.cat([f(s), f(s_v)])
    xt = f(t) if t_v is None else torch.cat([f(t), f(t_v)])
    return s_v, xs, xt


def ref_is_edge_table(s, s_v, t, t_v, *, is_edges, zscore, delta, residual, tau=TAU):
    """Per-edge list of (position, loss, dropped, cosine, undefined) for the IS edge set."""
    _, xs, xt = ref_prepare(s, s_v, t, t_v, is_edges, zscore)
    out = []
    for (u, v), pos in ref_is_edges(is_edges, s.shape[0]):
        e_s, e_t, undefined = ref_edge_pair(xs, xt, u, v, tau)
        loss, dropped = ref_edge_loss(e_s, e_t, delta, residual)
        out.append((pos, loss, dropped, float((e_s * e_t).sum().detach()), undefined))
    return out


def ref_ic_edge_table(s, s_v, t, t_v, *, zscore, delta, tau=TAU):
    """Per-edge list of ((c, d), loss, cosine, undefined) of the class graph, c < d."""
    _, xs, xt = ref_prepare(s, s_v, t, t_v, "real_only" if s_v is None else "all", zscore)
    out = []
    n = xs.shape[1]
    for c in range(n):
        for d in range(c + 1, n):
            f_s, f_t, undefined = ref_edge_pair(xs, xt, c, d, tau, columns=True)
            loss = ref_edge_loss(f_s, f_t, delta, False)[0]
            out.append(((c, d), loss, float((f_s * f_t).sum().detach()), undefined))
    return out


def ref_vrm(
    s, s_v, t, t_v, *, is_edges, zscore, uep, uep_ratio, huber_delta, lambda_is, lambda_ic, edge_tol=TAU
):
    """Reference VRM loss: dict with loss, is, ic, kept, candidates, dropped, undefined (as in the spec)."""
    b = s.shape[0]
    s_vv = None if is_edges == "real_only" else s_v
    residual = uep == "residual"
    table = ref_is_edge_table(
        s, s_v, t, t_v, is_edges=is_edges, zscore=zscore, delta=huber_delta, residual=residual, tau=edge_tol
    )
    pruned = set()
    if uep in ("cross_entropy", "joint_entropy", "teacher_student"):
        t_vv = None if s_vv is None else t_v
        pruned = ref_pruned(ref_scores(s, s_vv, is_edges, uep, t, t_vv), uep_ratio)
    shape = ref_mask_shape(is_edges, b)
    cand = torch.zeros(shape, dtype=torch.bool)
    kept = torch.zeros(shape, dtype=torch.bool)
    dropped = torch.zeros(shape, dtype=torch.int64)
    undefined = torch.zeros(shape, dtype=torch.bool)
    total, n_kept = s.new_zeros(()), 0
    for pos, loss, drop, _, undef in table:
        cand[pos] = True
        dropped[pos] = drop
        if pos in pruned:
            continue
        undefined[pos] = undef  # an undefined edge adds 0 but still counts in the mean
        kept[pos] = drop == 0
        total = total + loss
        n_kept += 1
    l_is = total / max(n_kept, 1)
    t_vv = None if s_vv is None else t_v
    ic = ref_ic_edge_table(s, s_vv, t, t_vv, zscore=zscore, delta=huber_delta, tau=edge_tol)
    l_ic = sum(loss for _, loss, _, _ in ic) / len(ic)
    return {
        "loss": lambda_is * l_is + lambda_ic * l_ic,
        "is": l_is,
        "ic": l_ic,
        "kept": kept,
        "candidates": cand,
        "dropped": dropped,
        "undefined": undefined,
        "ic_undefined": [pos for pos, _, _, undef in ic if undef],
    }


def make_logits(b, c, seed, dtype=torch.float64, view_noise=0.5):
    """Realistic logits: teacher randn·3, student 0.7·teacher + randn, virtual = real + noise."""
    g = torch.Generator().manual_seed(seed)
    t = torch.randn(b, c, generator=g, dtype=dtype) * 3
    s = t * 0.7 + torch.randn(b, c, generator=g, dtype=dtype)
    t_v = t + view_noise * torch.randn(b, c, generator=g, dtype=dtype)
    s_v = s + view_noise * torch.randn(b, c, generator=g, dtype=dtype)
    return s, s_v, t, t_v


# The options most tests start from (each overrides what it is about).
BASE_OPTS = dict(
    is_edges="cross_view",
    zscore=True,
    uep="cross_entropy",
    uep_ratio=0.25,
    huber_delta=1.0,
    lambda_is=1.0,
    lambda_ic=1.0,
)


# ---- the reference pinned to values computed by hand ----


def test_reference_edge_loss_by_hand():
    e_s = torch.tensor([0.6, 0.8], dtype=torch.float64)
    e_t = torch.tensor([1.0, 0.0], dtype=torch.float64)
    # d = (-0.4, 0.8); δ = 0.5: 0.5·0.16/0.5 + (0.8 − 0.25) = 0.16 + 0.55
    loss, dropped = ref_edge_loss(e_s, e_t, 0.5, False)
    assert float(loss) == pytest.approx(0.71, abs=1e-12) and dropped == 0
    loss, dropped = ref_edge_loss(e_s, e_t, 0.5, True)
    assert float(loss) == pytest.approx(0.16, abs=1e-12) and dropped == 1
    # δ ≥ 2: (1 − cos)/δ with unit vectors, cos = 0.6
    assert float(ref_edge_loss(e_s, e_t, 2.0, False)[0]) == pytest.approx(0.4 / 2.0, abs=1e-12)


def test_reference_scores_and_pruning_by_hand():
    p, q = torch.tensor([0.5, 0.5]), torch.tensor([0.25, 0.75])
    assert ref_score(p, q, "cross_entropy") == pytest.approx(-(0.5 * math.log(0.25) + 0.5 * math.log(0.75)))
    assert ref_score(p, q, "joint_entropy") == pytest.approx(
        math.log(2) - (0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    )
    scores = {(0, 0): 1.0, (0, 1): 3.0, (1, 0): 3.0, (1, 1): 2.0}
    assert ref_pruned(scores, 0.5) == {(0, 1), (1, 0)}
    assert ref_pruned(scores, 0.25) == {(0, 1)}
    assert ref_pruned(scores, 0.0) == set()


def test_reference_edges_and_zscore_by_hand():
    assert ref_is_edges("cross_view", 2) == [
        ((0, 2), (0, 0)),
        ((0, 3), (0, 1)),
        ((1, 2), (1, 0)),
        ((1, 3), (1, 1)),
    ]
    assert [e for e, _ in ref_is_edges("all", 2)] == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert [e for e, _ in ref_is_edges("real_only", 3)] == [(0, 1), (0, 2), (1, 2)]
    z = ref_zscore_rows(torch.tensor([[1.0, 3.0]], dtype=torch.float64))
    assert z.tolist()[0] == pytest.approx([-1 / (1 + 1e-6), 1 / (1 + 1e-6)], abs=1e-15)
