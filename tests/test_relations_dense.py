"""The sync-free dense branch (used for small graphs on a GPU) against the slow loop reference.

On the CPU the Gram path is always taken; here the dense limit is raised so the same CPU run exercises
the branch a GPU takes, over every edge set, UEP rule and a small and a large Huber delta."""

import itertools

import pytest
import torch
from test_relations_reference import BASE_OPTS, make_logits, ref_vrm

from vrm_train import relations as R
from vrm_train import relations_display as RD


@pytest.fixture
def dense_on_cpu(monkeypatch):
    monkeypatch.setitem(R._DENSE_LIMIT, "cpu", 1 << 30)


@pytest.mark.parametrize(
    "is_edges,uep,delta",
    list(
        itertools.product(
            ["cross_view", "all", "real_only"], ["cross_entropy", "residual", "none"], [0.3, 2.5]
        )
    ),
)
def test_dense_branch_matches_reference(dense_on_cpu, is_edges, uep, delta):
    s, s_v, t, t_v = make_logits(5, 4, seed=11)
    opts = dict(
        is_edges=is_edges,
        zscore=True,
        uep=uep,
        uep_ratio=0.3,
        huber_delta=delta,
        lambda_is=0.7,
        lambda_ic=1.3,
    )
    s1, sv1 = s.clone().requires_grad_(), s_v.clone().requires_grad_()
    out = R.vrm_loss(s1, sv1, t, t_v, **opts)
    s2, sv2 = s.clone().requires_grad_(), s_v.clone().requires_grad_()
    ref = ref_vrm(s2, sv2, t, t_v, **opts)
    torch.testing.assert_close(out.loss, ref["loss"], rtol=1e-9, atol=1e-11)
    assert torch.equal(out.masks["is"], ref["kept"])
    assert torch.equal(out.masks["is_dropped_elements"], ref["dropped"])
    out.loss.backward()
    ref["loss"].backward()
    torch.testing.assert_close(s1.grad, s2.grad, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(sv1.grad, sv2.grad, rtol=1e-8, atol=1e-10)
    # every kept edge materialised (no Gram shortcut): the dense branch ran
    active = out.terms["is_kept_frac"].item() if uep == "cross_entropy" else 1.0
    assert out.terms["is_direct_frac"].item() == pytest.approx(active)


def test_dense_and_gram_paths_agree(monkeypatch):
    s, s_v, t, t_v = make_logits(16, 10, seed=3, dtype=torch.float32)
    opts = dict(BASE_OPTS)

    def loss_and_grads():
        ss, ss_v = s.clone().requires_grad_(), s_v.clone().requires_grad_()
        out = R.vrm_loss(ss, ss_v, t, t_v, **opts)
        return (out, *torch.autograd.grad(out.loss, (ss, ss_v)))

    gram, g_s, g_sv = loss_and_grads()
    monkeypatch.setitem(R._DENSE_LIMIT, "cpu", 1 << 30)
    dense, d_s, d_sv = loss_and_grads()
    torch.testing.assert_close(dense.loss, gram.loss, rtol=1e-5, atol=1e-7)
    assert g_s.abs().max() > 1e-4  # the gradients compared below are not trivially zero
    torch.testing.assert_close(d_s, g_s, rtol=1e-5, atol=1e-8)
    torch.testing.assert_close(d_sv, g_sv, rtol=1e-5, atol=1e-8)
    assert torch.equal(dense.masks["is"], gram.masks["is"])
    cos_dense = RD.is_edge_cosines(s, s_v, t, t_v, is_edges="all", zscore=False)
    monkeypatch.setitem(R._DENSE_LIMIT, "cpu", 0)
    cos_gram = RD.is_edge_cosines(s, s_v, t, t_v, is_edges="all", zscore=False)
    torch.testing.assert_close(cos_dense, cos_gram, rtol=1e-5, atol=1e-6, equal_nan=True)
