"""The undefined-edge rule (spec §2.4): near-duplicate vertices must not blow up the gradient.

The failure it prevents: two copies of one image give the student bit-identical logits while the
teacher's differ by rounding; the student edge then has length 0 and unit(·) turned it into a gradient of
~1e10. Here duplicated rows get teacher-only, student-only and both-side perturbations of 1e-7…1e-2, in
float32 and rounded to bfloat16, on every code path (Gram, dense, chunked), for every option."""

import itertools
import math

import pytest
import torch
from test_relations_reference import BASE_OPTS, make_logits, ref_undefined, ref_zscore_rows

from vrm_train import relations as R
from vrm_train import relations_display as RD

EPS = [1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2]
# (side, ε, rounding): every ε on every side in float32; bf16-rounded logits at a small and a large ε
CASES = [(side, eps, None) for side in ("teacher", "student", "both") for eps in EPS]
CASES += [(side, eps, torch.bfloat16) for side in ("teacher", "student", "both") for eps in (1e-5, 1e-3)]
B, C = 8, 6
GROUPS = [(0, 1), (4, 5)]  # images 2g and 2g+1 are the same image, each with a virtual copy


@pytest.fixture(params=["gram", "dense", "chunked"])
def path(request, monkeypatch):
    if request.param == "dense":
        monkeypatch.setitem(R._DENSE_LIMIT, "cpu", 1 << 30)
    if request.param == "chunked":  # a few edges per chunk, recomputed in backward
        monkeypatch.setattr(R, "_CHUNK", 32 * C)
    return request.param


def _duplicated(dtype=torch.float32):
    """Logits where each group's real and virtual views of both images are bit-identical, both models."""
    s, s_v, t, t_v = make_logits(B, C, seed=123, dtype=dtype)
    for a, b in GROUPS:
        for x, x_v in ((s, s_v), (t, t_v)):
            x[b] = x[a]
            x_v[a] = x_v[b] = x[a]
    return s, s_v, t, t_v


def _perturb(logits, side, eps, seed):
    """Perturb the duplicated rows (all but the first real row of each group) on one side or both."""
    g = torch.Generator().manual_seed(seed)
    s, s_v, t, t_v = (x.clone() for x in logits)
    models = {"teacher": [(t, t_v)], "student": [(s, s_v)], "both": [(s, s_v), (t, t_v)]}[side]
    for x, x_v in models:
        for a, b in GROUPS:
            x[b] += eps * torch.randn(C, generator=g, dtype=x.dtype)
            x_v[a] += eps * torch.randn(C, generator=g, dtype=x.dtype)
            x_v[b] += eps * torch.randn(C, generator=g, dtype=x.dtype)
    return s, s_v, t, t_v


def _grad_norm(logits, opts):
    s, s_v, t, t_v = logits
    a, b = s.clone().requires_grad_(), s_v.clone().requires_grad_()
    out = R.vrm_loss(a, b, t, t_v, **opts)
    ga, gb = torch.autograd.grad(out.loss, (a, b), allow_unused=True)
    gb = torch.zeros_like(b) if gb is None else gb
    assert torch.isfinite(out.loss)
    return float(torch.cat([ga.flatten(), gb.flatten()]).double().norm()), out


def _short_edge_bound(logits, opts, out):
    """What the rule allows a *defined* edge between vertices of one group to add to the gradient norm.

    Per edge: ‖∂ℓ/∂e_S‖ ≤ min(2/δ, √C) (the Huber derivative is clip(d/δ, ±1), ‖d‖ ≤ 2); unit(a) has a Jacobian
    of norm 1/‖a‖ and a defined edge has ‖a‖ > τ·√(‖x_u‖² + ‖x_v‖²); the z-score's Jacobian has norm ≤ 1/σ
    (σ = the row's std), one per endpoint. Times λ_IS / (edges in the mean), summed over the group edges."""
    s, s_v = logits[0].double(), logits[1].double()
    x = torch.cat([s, s_v])
    inv_sigma = 1 / x.std(-1, unbiased=False) if opts["zscore"] else torch.ones(2 * B, dtype=torch.float64)
    xz = ref_zscore_rows(x) if opts["zscore"] else x
    sq = xz.pow(2).sum(-1)
    per_unit = min(2 / opts["huber_delta"], math.sqrt(C)) * opts["lambda_is"]
    n = out.masks["is_candidates"].sum() if opts["uep"] == "residual" else out.masks["is"].sum().clamp(min=1)
    group = {v: k for k, (a, b) in enumerate(GROUPS) for v in (a, b, B + a, B + b)}
    total = 0.0
    for u, v in itertools.permutations(group, 2):
        if group[u] != group[v] or not _is_candidate(opts["is_edges"], u, v):
            continue
        total += per_unit * math.hypot(inv_sigma[u], inv_sigma[v]) / (R.EDGE_TOL * math.sqrt(sq[u] + sq[v]))
    return total / float(n)


def _is_candidate(is_edges, u, v):
    if is_edges == "cross_view":
        return u < B <= v
    if is_edges == "real_only":
        return u < v < B
    return u < v


OPTIONS = list(
    itertools.product(
        R.IS_EDGE_SETS,
        R.UEP_RULES,
        [True, False],
        [0.3, 2.5],  # δ: mostly linear / all quadratic Huber
    )
)


@pytest.mark.parametrize("is_edges,uep,zscore,delta", OPTIONS)
def test_duplicated_rows_keep_the_gradient_bounded(path, is_edges, uep, zscore, delta):
    opts = dict(BASE_OPTS, is_edges=is_edges, uep=uep, zscore=zscore, huber_delta=delta, uep_ratio=0.3)
    base = _duplicated()
    g0, _ = _grad_norm(base, opts)
    assert 0 < g0 < 10  # the duplicated batch itself: an ordinary gradient
    for side, eps, rounding in CASES:
        logits = _perturb(base, side, eps, seed=len(side) * 100 + EPS.index(eps))
        if rounding is not None:  # what bf16 logits look like, computed in float32 by the loss
            logits = tuple(x.to(rounding).float() for x in logits)
        g, out = _grad_norm(logits, opts)
        where = (
            f"{side}-side ε={eps:g}, {rounding or 'float32'}, {path} path: ‖g‖={g:.3g}, unperturbed {g0:.3g}"
        )
        if side != "both":  # one side stays exactly duplicated: every group edge is undefined
            assert g <= 10 * g0, where
        else:  # both sides moved: a group edge may be defined, but never shorter than τ allows
            assert g <= 10 * g0 + _short_edge_bound(logits, opts, out), where


def test_undefined_edges_give_zero_loss_and_exactly_zero_gradient(path):
    s, s_v, t, t_v = _duplicated(torch.float64)
    t_v[0] += 1e-9 * torch.arange(C, dtype=torch.float64)  # the teacher's copy differs by rounding only
    a, b = s.clone().requires_grad_(), s_v.clone().requires_grad_()
    out = R.vrm_loss(a, b, t, t_v, **dict(BASE_OPTS, uep="none"))
    # every edge inside a group is undefined (2 groups × 4 cross-view edges), no class edge is
    assert out.masks["is_undefined"].sum() == 8 and not out.masks["ic_undefined"].any()
    assert float(out.terms["undefined_edges"]) == 8
    assert float(out.terms["gap_min_s"]) == 0.0 and float(out.terms["gap_min_t"]) == 0.0
    ga, _ = torch.autograd.grad(out.loss, (a, b))
    # the loss seen by the student through the undefined edges only: zero, exactly
    undefined_only = (
        RD.is_edge_losses(
            a, b, t, t_v, is_edges="cross_view", zscore=True, huber_delta=1.0, residual=False
        ).loss
        * out.masks["is_undefined"]
    ).sum()
    assert float(undefined_only) == 0.0
    gu = torch.autograd.grad(undefined_only, (a, b), allow_unused=True)
    assert all(g is None or torch.count_nonzero(g) == 0 for g in gu)
    assert torch.isfinite(ga).all() and ga.abs().max() < 1
    # the mean still counts them: L_IS = Σ defined ℓ / 256
    per_edge = RD.is_edge_losses(
        s, s_v, t, t_v, is_edges="cross_view", zscore=True, huber_delta=1.0, residual=False
    )
    torch.testing.assert_close(out.terms["is"], per_edge.loss.sum() / B**2, rtol=1e-12, atol=0)


@pytest.mark.parametrize("is_edges", R.IS_EDGE_SETS)
def test_without_near_duplicates_the_rule_changes_no_bit(path, is_edges):
    s, s_v, t, t_v = make_logits(12, 7, seed=5, dtype=torch.float32)
    results = []
    for tol in (R.EDGE_TOL, 0.0, R.MAX_EDGE_TOL):
        a, b = s.clone().requires_grad_(), s_v.clone().requires_grad_()
        out = R.vrm_loss(a, b, t, t_v, **dict(BASE_OPTS, is_edges=is_edges, huber_delta=0.3), edge_tol=tol)
        assert float(out.terms["undefined_edges"]) == 0
        results.append((out.loss, *torch.autograd.grad(out.loss, (a, b), allow_unused=True)))
    for other in results[1:]:
        for x, y in zip(results[0], other, strict=True):
            assert (x is None and y is None) or torch.equal(x, y)


def test_undefined_masks_match_the_reference_rule():
    s, s_v, t, t_v = _duplicated(torch.float64)
    t_v[4] += 1e-3  # group (4, 5): the teacher's virtual copy of image 4 is now a different vertex
    x_s, x_t = ref_zscore_rows(torch.cat([s, s_v])), ref_zscore_rows(torch.cat([t, t_v]))
    for is_edges in R.IS_EDGE_SETS:
        got = RD.is_undefined_edges(s, s_v, t, t_v, is_edges=is_edges, zscore=True)
        cand = R.rep_candidates(is_edges, B)
        for i, j in cand.nonzero().tolist():
            u, v = (i, B + j) if is_edges == "cross_view" else (i, j)
            expected = ref_undefined(x_s[u], x_s[v]) or ref_undefined(x_t[u], x_t[v])
            assert bool(got[i, j]) == expected, (is_edges, u, v)
        assert not got[~cand].any()
    # the display graphs zero exactly those edges (and self-loops), for one model or with its partner
    g_s = RD.is_graph(s, s_v, zscore=True)
    g_pair = RD.is_graph(s, s_v, zscore=True, partner=(t, t_v))
    assert g_s[4, B + 4].abs().sum() == 0 and g_pair[4, B + 4].abs().sum() == 0
    assert g_s[0, 1].abs().sum() == 0 and g_s[0, 2].norm() == pytest.approx(1.0)
    undefined = RD.is_undefined_edges(s, s_v, t, t_v, is_edges="all", zscore=True)
    zero = g_pair.abs().sum(-1) == 0
    assert torch.equal(zero.triu(1), undefined)


def test_class_edges_follow_the_rule_too():
    s, s_v, t, t_v = make_logits(6, 5, seed=9)
    for x in (s, s_v):
        x[:, 3] = x[:, 1]  # two classes with identical columns for the student only
    out = R.vrm_loss(s.requires_grad_(), s_v, t, t_v, **BASE_OPTS)
    assert out.masks["ic_undefined"].nonzero().tolist() == [[1, 3]]
    assert torch.equal(RD.ic_undefined_edges(s, s_v, t, t_v, zscore=True), out.masks["ic_undefined"])
    assert float(RD.ic_edge_losses(s, s_v, t, t_v, zscore=True, huber_delta=1.0)[1, 3]) == 0.0
    assert float(RD.ic_edge_cosines(s, s_v, t, t_v, zscore=True)[1, 3]) == 0.0
    assert RD.ic_graph(s, s_v, zscore=True)[1, 3].abs().sum() == 0
    (g,) = torch.autograd.grad(out.loss, s)
    assert torch.isfinite(g).all() and g.abs().max() < 1


def test_edge_tol_stays_below_the_cancellation_threshold():
    # the Gram path certifies an edge only when ‖a‖² ≥ 1e-4 (‖x_u‖² + ‖x_v‖²) up to float64 rounding: every
    # edge the rule can call undefined (‖a‖² ≤ τ² (…), τ ≤ MAX_EDGE_TOL) is decided on the direct path
    assert R.MAX_EDGE_TOL**2 <= R._CANCEL / 100
    s, s_v, t, t_v = make_logits(8, 6, seed=2)
    # image 3's student views differ by a relative gap of 0.9 τ_max / √2 … 0.9 τ_max: undefined at τ_max, and
    # the Gram path (which certifies every edge here, δ = 2.5) must have sent it to the direct path
    s_v[3] = s[3] + 0.9 * R.MAX_EDGE_TOL * s[3].abs().max()
    opts = dict(BASE_OPTS, uep="none", huber_delta=2.5, zscore=False)
    out = R.vrm_loss(s, s_v, t, t_v, **opts, edge_tol=R.MAX_EDGE_TOL)
    assert out.masks["is_undefined"].nonzero().tolist() == [[3, 3]]
    assert float(out.terms["is_direct_frac"]) == 1 / 64  # that edge, and only that one, went direct
    assert not R.vrm_loss(s, s_v, t, t_v, **opts).masks["is_undefined"].any()  # defined at τ = 1e-5
