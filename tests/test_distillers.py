"""The distiller contract: named finite loss terms, a frozen eval-mode teacher, the right views."""

import math

import pytest
import torch

from vrm_train import losses as L
from vrm_train.config import VRMConfig, load_config
from vrm_train.distillers import REGISTRY, DataInfo, build_distiller, preserved_buffers
from vrm_train.models import create_model

B, NC, N_TRAIN = 8, 5, 40


def _setup(method, **over):
    torch.manual_seed(0)
    overrides = [f"method={method}"] + [f"{k}={v}" for k, v in over.items()]
    if method != "vanilla":
        overrides += ["teacher.name=resnet8", "teacher.checkpoint=unused.pt"]
    if method == "crd" and "crd.nce_k" not in over:
        overrides.append("crd.nce_k=16")
    cfg = load_config(None, overrides)
    student = create_model("resnet8", num_classes=NC, in_chans=1)
    teacher = create_model("resnet14", num_classes=NC, in_chans=1) if method != "vanilla" else None
    info = DataInfo(num_classes=NC, in_chans=1, image_size=16, train_labels=torch.arange(N_TRAIN) % NC)
    return build_distiller(cfg, student, teacher, info)


def _batch():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(B, 1, 16, 16, generator=g)
    return x, x + 0.3 * torch.randn(B, 1, 16, 16, generator=g), torch.randint(0, NC, (B,), generator=g)


EXPECTED_TERMS = {
    "vanilla": {"ce"},
    "kd": {"ce", "kd"},
    "dkd": {"ce", "dkd"},
    "dist": {"ce", "dist"},
    "rkd": {"ce", "rkd"},
    "sp": {"ce", "sp"},
    "pkt": {"ce", "pkt"},
    "cc": {"ce", "cc"},
    "vrm": {"ce", "vrm"},
    "fitnet": {"ce", "fitnet"},
    "at": {"ce", "at"},
    "crd": {"ce", "crd"},
    "reviewkd": {"ce", "reviewkd"},
}


@pytest.mark.parametrize("method", sorted(REGISTRY))
def test_contract(method):
    d = _setup(method)
    x, x_v, y = _batch()
    d.train()
    extra = {"index": torch.arange(B) * 3} if d.needs_index else {}
    out = d(x, x_v if d.needs_virtual else None, y, epoch=3, **extra)
    assert set(out["losses"]) == EXPECTED_TERMS[method]
    for name, v in out["losses"].items():
        assert v.dim() == 0 and torch.isfinite(v), name
    assert out["logits"].shape == (B, NC) and not out["logits"].requires_grad
    total = sum(out["losses"].values())
    total.backward()
    assert all(p.grad is not None for p in d.student.parameters() if p.requires_grad)
    if d.teacher is not None:
        assert not d.teacher.training  # frozen in eval mode whatever .train() did
        assert all(p.grad is None and not p.requires_grad for p in d.teacher.parameters())


def test_teacher_stays_in_eval_mode_and_keeps_its_statistics():
    d = _setup("kd")
    before = {k: v.clone() for k, v in d.teacher.state_dict().items()}
    d.train(True)
    d.teacher.train()  # even a caller that flips the teacher directly...
    d.train()  # ...is undone by the next train()
    assert not d.teacher.training
    x, _, y = _batch()
    d(x, None, y, epoch=1)
    for k, v in d.teacher.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_vrm_runs_both_models_on_both_views():
    d = _setup("vrm")
    assert d.needs_virtual
    x, x_v, y = _batch()
    out = d(x, x_v, y, epoch=1)
    rel = out["relation"]
    assert {"s", "s_v", "t", "t_v", "feat_s", "feat_t"} <= set(rel)
    with torch.no_grad():
        torch.testing.assert_close(rel["t_v"], d.teacher(x_v))
        torch.testing.assert_close(rel["t"], d.teacher(x))
    assert not torch.allclose(rel["s"], rel["s_v"])
    assert {"vrm_is", "vrm_ic", "is_kept_frac"} <= set(out["metrics"])
    ratio = VRMConfig().uep_ratio
    assert out["metrics"]["is_kept_frac"].item() == pytest.approx(1 - math.floor(ratio * B * B) / (B * B))


def test_vrm_real_only_needs_no_virtual_view():
    d = _setup("vrm", **{"vrm.is_edges": "real_only"})
    assert not d.needs_virtual
    x, _, y = _batch()
    out = d(x, None, y, epoch=1)
    assert "s_v" not in out["relation"] and torch.isfinite(out["losses"]["vrm"])


def test_dkd_warms_up_linearly():
    d = _setup("dkd", **{"dkd.warmup": 4})
    x, _, y = _batch()
    d.eval()
    ramp1 = d(x, None, y, epoch=1)
    ramp4 = d(x, None, y, epoch=4)
    ramp9 = d(x, None, y, epoch=9)
    assert ramp1["metrics"]["dkd_ramp"].item() == 0.25 and ramp9["metrics"]["dkd_ramp"].item() == 1.0
    torch.testing.assert_close(ramp1["losses"]["dkd"] * 4, ramp4["losses"]["dkd"])
    torch.testing.assert_close(ramp4["losses"]["dkd"], ramp9["losses"]["dkd"])


def test_cc_embeddings_are_trainable_extras():
    d = _setup("cc")
    extra = list(d.extra_modules().parameters())
    assert extra and all(any(p is q for q in d.trainable_parameters()) for p in extra)


def test_relation_inputs_have_no_side_effects():
    d = _setup("kd")
    x, x_v, _ = _batch()
    d.train()
    buffers = [b.clone() for b in d.student.buffers()]
    rel = d.relation_inputs(x, x_v)
    assert {"s", "s_v", "t", "t_v", "feat_s", "feat_t"} <= set(rel)
    for b, saved in zip(d.student.buffers(), buffers, strict=True):
        assert torch.equal(b, saved)
    with preserved_buffers(d.student):
        d.student(x)  # train-mode forward updates BN statistics...
    for b, saved in zip(d.student.buffers(), buffers, strict=True):
        assert torch.equal(b, saved)  # ...which the context restores


def test_feature_methods_build_their_modules_from_a_dry_run():
    fit = _setup("fitnet")
    assert isinstance(fit.regressor.conv, torch.nn.Conv2d)  # resnet8 layer2 (16 px) -> resnet14 layer2: 1x1
    assert fit.hooks_s.paths == ["layer2"] and fit.hooks_t.paths == ["layer2"]
    review = _setup("reviewkd")
    assert len(review.abfs) == 4 and review.shapes == [1, 4, 8, 16] and review.out_shapes == [1, 4, 8, 16]
    extra = {id(p) for p in review.extra_modules().parameters()}
    assert extra and extra <= {id(p) for p in review.trainable_parameters()}
    crd = _setup("crd")
    assert crd.crd["memory"].memory_v1.shape == (N_TRAIN, 128)
    assert "memory.memory_v1" in crd.extra_modules().state_dict()  # the bank is saved in checkpoints


def test_crd_negatives_come_from_other_classes():
    d = _setup("crd", **{"crd.nce_k": 2000})
    labels = d.sampler.labels
    idx = torch.tensor([0, 7, 13, 39])
    torch.manual_seed(0)
    c = d.sampler(idx)
    assert c.shape == (4, 2001) and torch.equal(c[:, 0], idx)  # mode exact: the sample itself first
    assert (labels[c[:, 1:]] != labels[idx].unsqueeze(1)).all()
    for row, i in enumerate(idx.tolist()):  # every other-class sample is reachable
        others = (labels != labels[i]).nonzero().flatten()
        assert set(c[row, 1:].tolist()) == set(others.tolist())
    relax = _setup("crd", **{"crd.mode": "relax"})
    pos = relax.sampler(idx)[:, 0]
    assert (relax.sampler.labels[pos] == labels[idx]).all()


def test_logit_standardisation_switch():
    plain, ls = _setup("kd"), _setup("kd", **{"kd.logit_stand": "true"})
    ls.load_state_dict(plain.state_dict())
    x, _, y = _batch()
    plain.eval(), ls.eval()
    a, b = plain(x, None, y, epoch=1)["losses"]["kd"], ls(x, None, y, epoch=1)["losses"]["kd"]
    with torch.no_grad():
        s, t = plain.student(x), plain.teacher(x)
        want = 0.9 * L.kd_loss(L.standardize_logits(s), L.standardize_logits(t), temperature=4.0)
    torch.testing.assert_close(b, want)
    assert not torch.allclose(a, b)
