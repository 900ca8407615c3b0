"""Properties of the VRM maths: unit edges, anti-symmetry, zero loss at student == teacher, permutation
equivariance, kept counts, zero gradient through pruned edges, teacher without gradient, gradcheck."""

import math

import pytest
import torch
from test_relations_reference import BASE_OPTS, make_logits

from vrm_train import relations as R
from vrm_train import relations_display as RD

OPTS = BASE_OPTS


def _opts(**kw):
    return {**OPTS, **kw}


def test_is_edges_are_unit_and_zero_for_identical_vertices():
    s, s_v, _, _ = make_logits(4, 6, seed=1)
    s_v[2] = s[2]  # real 2 and virtual 2 are the same vertex
    for zscore in (True, False):
        g = RD.is_graph(s, s_v, zscore=zscore)
        norms = g.norm(dim=-1)
        off = ~torch.eye(8, dtype=torch.bool)
        off[2, 6] = off[6, 2] = False
        torch.testing.assert_close(norms[off], torch.ones_like(norms[off]), rtol=0, atol=1e-12)
        assert torch.equal(g[2, 6], torch.zeros(6, dtype=torch.float64))
        assert torch.equal(torch.diagonal(g, dim1=0, dim2=1), torch.zeros(6, 8, dtype=torch.float64))
        h = RD.ic_graph(s, s_v, zscore=zscore)
        n = h.norm(dim=-1)[~torch.eye(6, dtype=torch.bool)]
        torch.testing.assert_close(n, torch.ones_like(n), rtol=0, atol=1e-12)


def test_zero_length_edge_has_finite_gradient_and_matches_normalize():
    s, s_v, t, t_v = make_logits(3, 4, seed=2)
    s_v[1], t_v[1] = s[1], t[1]  # the inter-view edge 1 → 1̃ has length 0 for both models
    for delta in (0.05, 3.0):
        sr, svr = s.clone().requires_grad_(), s_v.clone().requires_grad_()
        out = R.vrm_loss(sr, svr, t, t_v, **_opts(zscore=False, uep="none", huber_delta=delta))
        out.loss.backward()
        assert torch.isfinite(sr.grad).all() and torch.isfinite(svr.grad).all()
        edge = RD.is_edge_losses(
            s, s_v, t, t_v, is_edges="cross_view", zscore=False, huber_delta=delta, residual=False
        )
        assert float(edge.loss[1, 1]) == 0.0
        cos = RD.is_edge_cosines(s, s_v, t, t_v, is_edges="cross_view", zscore=False)
        assert float(cos[1, 1]) == 0.0


def test_graphs_are_antisymmetric():
    s, s_v, _, _ = make_logits(3, 5, seed=3)
    g = RD.is_graph(s, s_v, zscore=True)
    torch.testing.assert_close(g.transpose(0, 1), -g, rtol=0, atol=0)
    h = RD.ic_graph(s, None, zscore=False)
    torch.testing.assert_close(h.transpose(0, 1), -h, rtol=0, atol=0)


@pytest.mark.parametrize("is_edges", ["cross_view", "all", "real_only"])
@pytest.mark.parametrize("uep", ["cross_entropy", "joint_entropy", "residual", "none"])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-6)])
def test_loss_is_zero_when_student_equals_teacher(is_edges, uep, dtype, tol):
    s, s_v, _, _ = make_logits(5, 7, seed=4, dtype=dtype)
    for delta in (0.05, 1.0, 2.0):
        out = R.vrm_loss(
            s, s_v, s.clone(), s_v.clone(), **_opts(is_edges=is_edges, uep=uep, huber_delta=delta)
        )
        assert out.loss.dtype == dtype
        assert (
            abs(float(out.loss)) < tol
            and abs(float(out.terms["is"])) < tol
            and abs(float(out.terms["ic"])) < tol
        )


@pytest.mark.parametrize(
    "is_edges,uep",
    [
        ("cross_view", "cross_entropy"),
        ("cross_view", "residual"),
        ("all", "joint_entropy"),
        ("real_only", "none"),
    ],
)
def test_permuting_the_batch_permutes_graphs_and_masks(is_edges, uep):
    # ("all"/"real_only" with cross_entropy are excluded: their score uses the u < v orientation)
    s, s_v, t, t_v = make_logits(6, 5, seed=5)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    opts = _opts(is_edges=is_edges, uep=uep, uep_ratio=0.3, huber_delta=0.3)
    a = R.vrm_loss(s, s_v, t, t_v, **opts)
    b = R.vrm_loss(s[perm], s_v[perm], t[perm], t_v[perm], **opts)
    torch.testing.assert_close(a.loss, b.loss, rtol=1e-12, atol=0)
    vperm = torch.cat([perm, perm + 6]) if is_edges == "all" else perm
    for key in ("is", "is_candidates", "is_dropped_elements"):
        ma, mb = a.masks[key], b.masks[key]
        if is_edges != "cross_view":  # upper-triangle masks: compare the symmetric closure
            ma, mb = ma + ma.T, mb + mb.T
        assert torch.equal(mb, ma[vperm][:, vperm]), key
    g = RD.is_graph(s, s_v, zscore=True)
    gp = RD.is_graph(s[perm], s_v[perm], zscore=True)
    full = torch.cat([perm, perm + 6])
    torch.testing.assert_close(gp, g[full][:, full], rtol=0, atol=0)
    torch.testing.assert_close(
        RD.ic_graph(s[perm], s_v[perm], zscore=False), RD.ic_graph(s, s_v, zscore=False)[:, :, full]
    )


@pytest.mark.parametrize("is_edges", ["cross_view", "all", "real_only"])
@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.25, 1 / 3, 0.5, 0.999])
def test_kept_count_is_n_minus_floor_ratio_n(is_edges, ratio):
    for b in (2, 5):
        s, s_v, t, t_v = make_logits(b, 3, seed=b)
        out = R.vrm_loss(s, s_v, t, t_v, **_opts(is_edges=is_edges, uep_ratio=ratio))
        n = {"cross_view": b * b, "all": b * (2 * b - 1), "real_only": b * (b - 1) // 2}[is_edges]
        assert int(out.masks["is_candidates"].sum()) == n
        assert int(out.masks["is"].sum()) == n - math.floor(ratio * n)
        assert not (out.masks["is"] & ~out.masks["is_candidates"]).any()


def _row_pruned_logits(b, c, hot, seed):
    """Every vertex confident on class 0 except vertex `hot` (near-uniform): the hot vertex's edges carry
    the largest UEP scores, so pruning exactly their number removes every edge that touches it."""
    g = torch.Generator().manual_seed(seed)
    x = 0.1 * torch.randn(4, b, c, generator=g, dtype=torch.float64)
    x[:, :, 0] += 8.0
    s, s_v, t, t_v = x.unbind(0)
    s[hot] = 0.1 * torch.randn(c, generator=g, dtype=torch.float64)
    return s, s_v, t, t_v


@pytest.mark.parametrize("delta", [0.05, 0.3, 2.0])
@pytest.mark.parametrize("zscore", [True, False])
def test_pruned_edges_get_exactly_zero_gradient(delta, zscore):
    b, c, hot = 4, 5, 2
    s, s_v, t, t_v = _row_pruned_logits(b, c, hot, seed=9)
    cases = [  # (is_edges, uep): ratio 1/4 prunes exactly the hot vertex's edges
        ("cross_view", "cross_entropy"),  # row `hot` of the B×B block: B of B² = 16 edges
        ("all", "joint_entropy"),  # the 2B − 1 = 7 edges of vertex `hot`, of 28
    ]
    for is_edges, uep in cases:
        ratio = 0.25
        grads = {}
        for rule in (uep, "none"):
            sr, svr = s.clone().requires_grad_(), s_v.clone().requires_grad_()
            opts = _opts(is_edges=is_edges, zscore=zscore, uep=rule, uep_ratio=ratio, huber_delta=delta)
            out = R.vrm_loss(sr, svr, t, t_v, **{**opts, "lambda_ic": 0.0})
            out.loss.backward()
            grads[rule] = sr.grad[hot]
            if rule == uep:
                pruned = out.masks["is_candidates"] & ~out.masks["is"]
                rows, cols = pruned.nonzero(as_tuple=True)
                assert (rows == hot).all() or (is_edges == "all" and ((rows == hot) | (cols == hot)).all())
                assert int(pruned.sum()) == (b if is_edges == "cross_view" else 2 * b - 1)
        assert torch.count_nonzero(grads[uep]) == 0, is_edges  # pruned: not even a rounding-level leak
        assert grads["none"].abs().max() > 1e-6, is_edges  # control: the same vertex does get gradient


def test_residual_dropped_elements_get_zero_gradient():
    s, _, t, _ = make_logits(2, 3, seed=13)
    opts = dict(
        is_edges="real_only", zscore=False, uep="residual", uep_ratio=0.0, lambda_is=1.0, lambda_ic=0.0
    )
    # with one IS edge u=0, v=1 in dimension 3, dropping every element leaves nothing: gradient exactly zero
    sr = s.clone().requires_grad_()
    tiny = R.vrm_loss(sr, None, -t, None, **opts, huber_delta=1e-3)
    assert int(tiny.masks["is_dropped_elements"][0, 1]) == 3 and not tiny.masks["is"][0, 1]
    tiny.loss.backward()
    assert float(tiny.loss.detach()) == 0.0 and torch.count_nonzero(sr.grad) == 0


def test_teacher_gets_no_gradient_even_with_requires_grad():
    s, s_v, t, t_v = make_logits(3, 4, seed=6)
    tr, tvr = t.clone().requires_grad_(), t_v.clone().requires_grad_()
    sr = s.clone().requires_grad_()
    for is_edges in ("cross_view", "all"):
        for delta in (0.05, 2.0):
            out = R.vrm_loss(sr, s_v, tr, tvr, **_opts(is_edges=is_edges, huber_delta=delta))
            out.loss.backward()
            assert tr.grad is None and tvr.grad is None and sr.grad is not None
            ref = R.vrm_loss(s, s_v, t, t_v, **_opts(is_edges=is_edges, huber_delta=delta))
            assert float(ref.loss) == float(out.loss.detach())


@pytest.mark.parametrize(
    "is_edges,uep", [("cross_view", "cross_entropy"), ("all", "residual"), ("real_only", "none")]
)
@pytest.mark.parametrize("delta", [0.1, 5.0])
def test_gradcheck(is_edges, uep, delta):
    s, s_v, t, t_v = make_logits(3, 4, seed=21)
    opts = _opts(is_edges=is_edges, uep=uep, huber_delta=delta, lambda_is=0.8, lambda_ic=1.1)

    def f(a, av):
        return R.vrm_loss(a, av, t, t_v, **opts).loss

    assert torch.autograd.gradcheck(
        f, (s.clone().requires_grad_(), s_v.clone().requires_grad_()), eps=1e-6, atol=1e-6
    )
