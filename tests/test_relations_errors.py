"""Every ValueError of vrm_train.relations, matched by message."""

import math

import pytest
import torch
from test_relations_reference import BASE_OPTS, make_logits

from vrm_train import relations as R
from vrm_train import relations_display as RD

OPTS = BASE_OPTS


def _call(s, s_v, t, t_v, **kw):
    return R.vrm_loss(s, s_v, t, t_v, **{**OPTS, **kw})


@pytest.fixture
def logits():
    return make_logits(3, 4, seed=0)


@pytest.mark.parametrize(
    "key,value,match",
    [
        ("is_edges", "intra", r"is_edges must be one of 'cross_view', 'all', 'real_only'; got 'intra'"),
        (
            "uep",
            "entropy",
            r"uep must be one of 'cross_entropy', 'joint_entropy', 'teacher_student', 'residual', 'none'; got",
        ),
        ("zscore", 1, r"zscore must be a bool; got 1"),
        ("uep_ratio", 1.0, r"uep_ratio must be in \[0, 1\); got 1.0"),
        ("uep_ratio", -0.1, r"uep_ratio must be in \[0, 1\); got -0.1"),
        ("uep_ratio", math.nan, r"uep_ratio must be in \[0, 1\); got nan"),
        ("huber_delta", 0.0, r"huber_delta must be a finite number > 0; got 0.0"),
        ("huber_delta", -1.0, r"huber_delta must be a finite number > 0; got -1.0"),
        ("huber_delta", math.inf, r"huber_delta must be a finite number > 0; got inf"),
        ("lambda_is", -1.0, r"lambda_is must be a finite number >= 0; got -1.0"),
        ("lambda_ic", math.nan, r"lambda_ic must be a finite number >= 0; got nan"),
        ("edge_tol", -1e-6, r"edge_tol must be a number in \[0, 0.001\]; got -1e-06"),
        ("edge_tol", 0.01, r"edge_tol must be a number in \[0, 0.001\]; got 0.01"),
        ("edge_tol", math.nan, r"edge_tol must be a number in \[0, 0.001\]; got nan"),
    ],
)
def test_bad_options(logits, key, value, match):
    with pytest.raises(ValueError, match=match):
        _call(*logits, **{key: value})


def test_uep_ratio_is_validated_even_when_unused(logits):
    for uep in ("residual", "none"):
        with pytest.raises(ValueError, match=r"uep_ratio must be in \[0, 1\)"):
            _call(*logits, uep=uep, uep_ratio=1.5)


@pytest.mark.parametrize("index,name", [(0, "s"), (1, "s_v"), (2, "t"), (3, "t_v")])
def test_wrong_rank(logits, index, name):
    args = list(logits)
    args[index] = args[index].reshape(-1)
    with pytest.raises(ValueError, match=rf"{name} must be a 2-D tensor \[B, C\]; got shape \(12,\)"):
        _call(*args)


@pytest.mark.parametrize("index,name", [(1, "s_v"), (2, "t"), (3, "t_v")])
def test_mismatched_shapes(logits, index, name):
    args = list(logits)
    args[index] = args[index][:, :3]
    with pytest.raises(ValueError, match=rf"{name} has shape \(3, 3\) but s has shape \(3, 4\)"):
        _call(*args)


def test_not_a_float_tensor(logits):
    s, s_v, t, t_v = logits
    with pytest.raises(ValueError, match=r"t must be a floating-point tensor; got torch.int64"):
        _call(s, s_v, t.long(), t_v)
    with pytest.raises(ValueError, match=r"s_v must be a torch.Tensor; got list"):
        _call(s, s_v.tolist(), t, t_v)


def test_batch_and_class_minimums():
    s, s_v, t, t_v = make_logits(1, 4, seed=0)
    with pytest.raises(ValueError, match=r"need a batch of at least 2 samples \(B >= 2\); got B=1"):
        _call(s, s_v, t, t_v)
    s, s_v, t, t_v = make_logits(3, 1, seed=0)
    with pytest.raises(ValueError, match=r"need at least 2 classes \(C >= 2\); got C=1"):
        _call(s, s_v, t, t_v)
    with pytest.raises(ValueError, match=r"need a batch of at least 2 samples \(B >= 2\); got B=1"):
        R.rep_candidates("all", 1)


@pytest.mark.parametrize("index,name", [(0, "s"), (1, "s_v"), (2, "t"), (3, "t_v")])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_inputs_name_the_argument(logits, index, name, bad):
    args = [x.clone() for x in logits]
    args[index][1, 2] = bad
    with pytest.raises(ValueError, match=rf"^{name} contains NaN or inf$"):
        _call(*args)
    # the trainer's call: no host sync, the non-finite value reaches the loss (and the engine's stop)
    out = _call(*args, check_finite=False)
    assert not torch.isfinite(out.loss)


@pytest.mark.parametrize("index,name", [(1, "s_v"), (3, "t_v")])
def test_virtual_views_required_unless_real_only(logits, index, name):
    args = list(logits)
    args[index] = None
    with pytest.raises(ValueError, match=rf"{name} is required for is_edges='cross_view'"):
        _call(*args)
    with pytest.raises(ValueError, match=rf"{name} is required for is_edges='all'"):
        _call(*args, is_edges="all")
    _call(*args, is_edges="real_only")  # fine: no virtual views needed


def test_public_helpers_validate_too(logits):
    s, s_v, t, t_v = logits
    with pytest.raises(ValueError, match=r"uep_scores needs uep in \('cross_entropy', .*\); got 'residual'"):
        R.uep_scores(s, s_v, is_edges="cross_view", uep="residual")
    with pytest.raises(ValueError, match=r"t is required for uep='teacher_student'"):
        R.uep_scores(s, s_v, is_edges="cross_view", uep="teacher_student")
    with pytest.raises(ValueError, match=r"partner must be \(z', z'_v\)"):
        RD.is_graph(s, s_v, zscore=True, partner=(t, None))
    with pytest.raises(ValueError, match=r"uep must be one of"):
        R.uep_scores(s, s_v, is_edges="cross_view", uep="kl")
    with pytest.raises(ValueError, match=r"is_edges must be one of"):
        R.rep_candidates("rr", 3)
    cand = R.rep_candidates("cross_view", 3)
    with pytest.raises(ValueError, match=r"scores and candidates must have the same shape"):
        R.uep_mask(torch.zeros(3, 4), cand, uep_ratio=0.5)
    with pytest.raises(ValueError, match=r"uep_ratio must be in \[0, 1\); got 1"):
        R.uep_mask(torch.zeros(3, 3), cand, uep_ratio=1)
    with pytest.raises(ValueError, match=r"z must be a 2-D tensor"):
        RD.is_graph(s[0], None, zscore=True)
    with pytest.raises(ValueError, match=r"z_v has shape \(3, 3\) but z has shape \(3, 4\)"):
        RD.ic_graph(s, s_v[:, :3], zscore=True)
    with pytest.raises(ValueError, match=r"zscore must be a bool"):
        RD.is_graph(s, s_v, zscore="yes")
    with pytest.raises(ValueError, match=r"huber_delta must be a finite number > 0"):
        RD.is_edge_losses(s, s_v, t, t_v, is_edges="all", zscore=True, huber_delta=0, residual=False)
    with pytest.raises(ValueError, match=r"huber_delta must be a finite number > 0"):
        RD.ic_edge_losses(s, s_v, t, t_v, zscore=True, huber_delta=-2.0)
    bad = s.clone()
    bad[0, 0] = math.nan
    with pytest.raises(ValueError, match=r"^s contains NaN or inf$"):
        RD.is_edge_cosines(bad, s_v, t, t_v, is_edges="all", zscore=False)
    with pytest.raises(ValueError, match=r"^partner\[0\] contains NaN or inf$"):
        RD.is_graph(s, s_v, zscore=False, partner=(bad, t_v))
    with pytest.raises(ValueError, match=r"t_v is required for is_edges='all'"):
        RD.ic_edge_cosines(s, s_v, t, None, zscore=False)


def test_mismatched_devices(logits):
    s, s_v, t, t_v = logits
    with pytest.raises(ValueError, match=r"t is on meta but s is on cpu"):
        _call(s, s_v, t.to("meta"), t_v)
