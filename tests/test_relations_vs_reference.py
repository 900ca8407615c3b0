"""vrm_loss and the public graph/mask functions against the slow loop reference (float64, tight tolerance)."""

import itertools
import zlib

import pytest
import torch
from test_relations_reference import (
    make_logits,
    ref_ic_edge_table,
    ref_is_edge_table,
    ref_is_edges,
    ref_mask_shape,
    ref_pruned,
    ref_scores,
    ref_unit,
    ref_vrm,
    ref_zscore_rows,
)

from vrm_train import relations as R
from vrm_train import relations_display as RD

SHAPES = [(2, 2), (2, 5), (5, 2), (3, 6), (6, 3)]
EDGE_SETS = ["cross_view", "all", "real_only"]
UEPS = ["cross_entropy", "joint_entropy", "teacher_student", "residual", "none"]
DELTAS = [0.05, 0.3, 1.0, 2.5]
RTOL, ATOL = 1e-9, 1e-11

GRID = [
    (b, c, e, z, u, d)
    for (b, c), e, z, u, d in itertools.product(SHAPES, EDGE_SETS, [True, False], UEPS, DELTAS)
    # δ ≥ 2 is certified everywhere: sample it on a subset to keep the grid fast
    if d != 2.5 or (b + c + len(u)) % 2 == 0
]


def _close(actual, expected, rtol=RTOL, atol=ATOL):
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol)


@pytest.mark.parametrize("b,c,is_edges,zscore,uep,delta", GRID)
def test_vrm_loss_matches_reference(b, c, is_edges, zscore, uep, delta):
    seed = zlib.crc32(repr((b, c, is_edges, zscore, uep, delta)).encode())
    ratio = [0.25, 0.6, 0.0, 0.9][DELTAS.index(delta)]
    opts = dict(is_edges=is_edges, zscore=zscore, uep=uep, uep_ratio=ratio, huber_delta=delta)
    lam = dict(lambda_is=0.7, lambda_ic=1.3)
    s, s_v, t, t_v = make_logits(b, c, seed)
    s1, sv1 = s.clone().requires_grad_(), s_v.clone().requires_grad_()
    out = R.vrm_loss(s1, sv1, t, t_v, **opts, **lam)
    s2, sv2 = s.clone().requires_grad_(), s_v.clone().requires_grad_()
    ref = ref_vrm(s2, sv2, t, t_v, **opts, **lam)

    _close(out.loss, ref["loss"])
    _close(out.terms["is"], ref["is"])
    _close(out.terms["ic"], ref["ic"])
    assert out.loss.dtype == torch.float64 and out.loss.dim() == 0
    assert torch.equal(out.masks["is"], ref["kept"])
    assert torch.equal(out.masks["is_candidates"], ref["candidates"])
    assert torch.equal(out.masks["is_dropped_elements"], ref["dropped"])
    assert torch.equal(out.masks["is_undefined"], ref["undefined"])
    assert out.masks["ic_undefined"].nonzero().tolist() == [list(p) for p in ref["ic_undefined"]]
    n_undefined = int(ref["undefined"].sum()) + len(ref["ic_undefined"])
    assert float(out.terms["undefined_edges"]) == n_undefined
    n = int(ref["candidates"].sum())
    _close(out.terms["is_kept_frac"], torch.tensor(int(ref["kept"].sum()) / n, dtype=torch.float64))

    out.loss.backward()
    ref["loss"].backward()
    _close(s1.grad, s2.grad, rtol=1e-7, atol=1e-10)
    if is_edges == "real_only":
        assert sv1.grad is None or torch.count_nonzero(sv1.grad) == 0
    else:
        _close(sv1.grad, sv2.grad, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("is_edges", EDGE_SETS)
@pytest.mark.parametrize("zscore", [True, False])
@pytest.mark.parametrize("b,c", [(2, 3), (4, 3), (3, 5)])
def test_is_graph_and_ic_graph_match_loops(is_edges, zscore, b, c):
    s, s_v, _, _ = make_logits(b, c, seed=b * 10 + c)
    s_v = None if is_edges == "real_only" else s_v
    x = ref_zscore_rows(s) if zscore else s
    if s_v is not None:
        x = torch.cat([x, ref_zscore_rows(s_v) if zscore else s_v])
    g = RD.is_graph(s, s_v, zscore=zscore)
    assert g.shape == (x.shape[0], x.shape[0], c)
    for u in range(x.shape[0]):
        for v in range(x.shape[0]):
            _close(g[u, v], ref_unit(x[u] - x[v]))
    h = RD.ic_graph(s, s_v, zscore=zscore)
    assert h.shape == (c, c, x.shape[0])
    for i in range(c):
        for j in range(c):
            _close(h[i, j], ref_unit(x[:, i] - x[:, j]))


@pytest.mark.parametrize("is_edges", EDGE_SETS)
@pytest.mark.parametrize("b", [2, 3, 5])
def test_rep_candidates_match_edge_lists(is_edges, b):
    expected = torch.zeros(ref_mask_shape(is_edges, b), dtype=torch.bool)
    for _, pos in ref_is_edges(is_edges, b):
        expected[pos] = True
    assert torch.equal(R.rep_candidates(is_edges, b), expected)


@pytest.mark.parametrize("is_edges", EDGE_SETS)
@pytest.mark.parametrize("uep", ["cross_entropy", "joint_entropy", "teacher_student"])
@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.25, 0.5, 0.95])
def test_uep_scores_and_mask_match_reference(is_edges, uep, ratio):
    s, s_v, t, t_v = make_logits(5, 4, seed=7)
    s_v, t_v = (None, None) if is_edges == "real_only" else (s_v, t_v)
    teacher = dict(t=t, t_v=t_v) if uep == "teacher_student" else {}
    scores = R.uep_scores(s, s_v, is_edges=is_edges, uep=uep, **teacher)
    expected = ref_scores(s, s_v, is_edges, uep, t, t_v)
    assert scores.shape == ref_mask_shape(is_edges, 5) and scores.dtype == torch.float64
    for pos, value in expected.items():
        assert float(scores[pos]) == pytest.approx(value, rel=1e-12, abs=1e-12)
    cand = R.rep_candidates(is_edges, 5)
    kept = R.uep_mask(scores, cand, uep_ratio=ratio)
    pruned = ref_pruned(expected, ratio)
    for pos in expected:
        assert bool(kept[pos]) == (pos not in pruned)
    assert not kept[~cand].any()


def test_uep_mask_ties_prune_smaller_row_major_position_first():
    scores = torch.tensor([[1.0, 5.0, 5.0], [5.0, 0.0, 5.0], [2.0, 2.0, 2.0]])
    cand = torch.ones(3, 3, dtype=torch.bool)
    kept = R.uep_mask(scores, cand, uep_ratio=0.3)  # floor(2.7) = 2: the first two of the four 5.0
    expected_pruned = {(0, 1), (0, 2)}
    assert {(i, j) for i in range(3) for j in range(3) if not kept[i, j]} == expected_pruned
    kept = R.uep_mask(torch.zeros(3, 3), cand, uep_ratio=0.5)  # all tied: first 4 in row-major order
    assert kept.reshape(-1).tolist() == [False] * 4 + [True] * 5
    tri = torch.ones(3, 3, dtype=torch.bool).triu(1)  # non-candidates never count, whatever their score
    kept = R.uep_mask(torch.full((3, 3), 9.0).triu(1) + torch.eye(3) * 100, tri, uep_ratio=0.5)
    assert kept.tolist() == [[False, False, True], [False, False, True], [False, False, False]]


@pytest.mark.parametrize("is_edges", EDGE_SETS)
@pytest.mark.parametrize("zscore", [True, False])
@pytest.mark.parametrize("delta,residual", [(0.05, False), (0.3, True), (0.3, False), (3.0, False)])
def test_per_edge_losses_and_cosines_match_reference(is_edges, zscore, delta, residual):
    s, s_v, t, t_v = make_logits(4, 5, seed=11)
    table = ref_is_edge_table(
        s, s_v, t, t_v, is_edges=is_edges, zscore=zscore, delta=delta, residual=residual
    )
    got = RD.is_edge_losses(
        s, s_v, t, t_v, is_edges=is_edges, zscore=zscore, huber_delta=delta, residual=residual
    )
    cos = RD.is_edge_cosines(s, s_v, t, t_v, is_edges=is_edges, zscore=zscore)
    expected = torch.zeros(ref_mask_shape(is_edges, 4), dtype=torch.float64)
    expected_dropped = torch.zeros(expected.shape, dtype=torch.int64)
    expected_cos = torch.full(expected.shape, float("nan"), dtype=torch.float64)
    for pos, loss, dropped, c, _ in table:
        expected[pos], expected_dropped[pos], expected_cos[pos] = loss, dropped, c
    _close(got.loss, expected)
    assert torch.equal(got.dropped, expected_dropped)
    torch.testing.assert_close(cos, expected_cos, rtol=1e-9, atol=1e-11, equal_nan=True)

    for virtual in (True, False):
        sv, tv = (s_v, t_v) if virtual else (None, None)
        ic = ref_ic_edge_table(s, sv, t, tv, zscore=zscore, delta=delta)
        exp_l = torch.zeros(5, 5, dtype=torch.float64)
        exp_c = torch.full((5, 5), float("nan"), dtype=torch.float64)
        for pos, loss, c, _ in ic:
            exp_l[pos], exp_c[pos] = loss, c
        _close(RD.ic_edge_losses(s, sv, t, tv, zscore=zscore, huber_delta=delta), exp_l)
        got_c = RD.ic_edge_cosines(s, sv, t, tv, zscore=zscore)
        torch.testing.assert_close(got_c, exp_c, rtol=1e-9, atol=1e-11, equal_nan=True)


def test_zscore_matches_rowwise_formula():
    x = make_logits(4, 7, seed=3)[0]
    _close(R.zscore(x), ref_zscore_rows(x))
    const = torch.full((2, 3), 4.0, dtype=torch.float64)  # zero std: (z − mean)/(0 + 1e-6) = 0
    assert torch.equal(R.zscore(const), torch.zeros(2, 3, dtype=torch.float64))
