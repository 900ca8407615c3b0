"""VRM's virtual-view options: how the student's BatchNorm sees the views, CE on the virtual view, the
virtual view's strength and whether the real view keeps the training augmentation."""

import pytest
import torch

from vrm_train.config import ConfigError, load_config
from vrm_train.distillers import build_distiller
from vrm_train.distillers.bn import two_view_forward
from vrm_train.models import create_model

B, NC = 8, 5
V = ["method=vanilla"]  # config checks that need no teacher


def _vrm(**over):
    torch.manual_seed(0)
    overrides = ["method=vrm", "teacher.name=resnet8", "teacher.checkpoint=unused.pt"]
    cfg = load_config(None, overrides + [f"vrm.{k}={v}" for k, v in over.items()])
    student = create_model("resnet8", num_classes=NC, in_chans=1)
    teacher = create_model("resnet8", num_classes=NC, in_chans=1)
    return build_distiller(cfg, student, teacher)


def _batch():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(B, 1, 16, 16, generator=g)
    x_v = 2.0 * x + 1.0 + 0.5 * torch.randn(B, 1, 16, 16, generator=g)  # other statistics than x
    return x, x_v, torch.randint(0, NC, (B,), generator=g)


def _bn_state(model):
    return {k: v.clone() for k, v in model.state_dict().items() if "running" in k or "num_batches" in k}


def _student_copy(d):
    copy = create_model("resnet8", num_classes=NC, in_chans=1)
    copy.load_state_dict(d.student.state_dict())
    return copy.train()


def test_bn_real_keeps_running_stats_of_a_real_only_forward():
    d = _vrm(student_bn="real")
    x, x_v, y = _batch()
    ref = _student_copy(d)
    d.train()
    out = d(x, x_v, y, epoch=1)
    with torch.no_grad():
        s_ref = ref(x)
    for k, v in _bn_state(ref).items():
        assert torch.allclose(_bn_state(d.student)[k], v, atol=1e-6), k
    assert torch.allclose(out["logits"], s_ref, atol=1e-5)  # the real view is normalised by itself


def test_bn_real_normalises_the_virtual_view_with_the_real_batch():
    student = create_model("resnet8", num_classes=NC, in_chans=1).train()
    x, x_v, _ = _batch()
    logits, feats = two_view_forward(student, x, x.clone(), "real")
    assert torch.allclose(logits[:B], logits[B:], atol=1e-5)  # same images, same (real) statistics
    logits, _ = two_view_forward(student, x, x_v, "real")
    with torch.no_grad():  # a reference by hand: the virtual view with every BN in eval mode on real stats
        ref = create_model("resnet8", num_classes=NC, in_chans=1)
        ref.load_state_dict(student.state_dict())
        assert not torch.allclose(ref.eval()(x_v), logits[B:], atol=1e-3)  # not the running statistics
    assert feats["pooled"].shape[0] == 2 * B


def test_bn_real_gradient_reaches_the_student_through_both_views():
    student = create_model("resnet8", num_classes=NC, in_chans=1).train()
    x, x_v, _ = _batch()
    logits, _ = two_view_forward(student, x, x_v, "real")
    g = torch.autograd.grad(logits[B:].sum(), list(student.parameters()), allow_unused=True)
    assert sum(float(t.abs().sum()) for t in g if t is not None) > 0


def test_bn_real_gives_identical_views_identical_gradients():
    """BN's gradient flows through the batch statistics; with the real batch's statistics *detached* the
    virtual view's gradient for the very same images was 7× the real view's (a gradient BN would have
    removed) and every training run with student_bn=real collapsed to chance. For identical views the two
    halves must now give the same gradient to every parameter."""
    torch.manual_seed(0)
    student = create_model("resnet8", num_classes=NC, in_chans=1).train()
    x, _, _ = _batch()
    logits, _ = two_view_forward(student, x, x.clone(), "real")
    params = [p for p in student.parameters() if p.requires_grad]
    target = torch.randn_like(logits[:B])
    g_real = torch.autograd.grad((logits[:B] * target).sum(), params, retain_graph=True)
    g_virt = torch.autograd.grad((logits[B:] * target).sum(), params)
    for a, b in zip(g_real, g_virt, strict=True):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


def test_bn_separate_normalises_each_view_by_itself():
    d = _vrm(student_bn="separate")
    x, x_v, _ = _batch()
    ref = _student_copy(d)
    d.train()
    s_all, _ = two_view_forward(d.student, x, x_v, "separate")
    with torch.no_grad():
        s_ref, sv_ref = ref(x), ref(x_v)
    assert torch.allclose(s_all[:B], s_ref, atol=1e-5) and torch.allclose(s_all[B:], sv_ref, atol=1e-5)
    # the joint forward normalises with the mixed batch: its real logits differ
    joint = _student_copy(d)
    with torch.no_grad():
        s_joint = joint(torch.cat([x, x_v]))[:B]
    assert not torch.allclose(s_joint, s_ref, atol=1e-3)


def test_bn_joint_is_the_concatenated_forward_and_the_default():
    d = _vrm()
    assert d.student_bn == "joint"
    x, x_v, y = _batch()
    ref = _student_copy(d)
    d.train()
    out = d(x, x_v, y, epoch=1)
    with torch.no_grad():
        s_ref = ref(torch.cat([x, x_v]))[:B]
    assert torch.allclose(out["logits"], s_ref, atol=1e-5)


def test_student_bn_rejects_unknown_modes():
    with pytest.raises(ConfigError, match=r"vrm\.student_bn"):
        load_config(None, [*V, "vrm.student_bn=mixed"])
    with pytest.raises(ValueError, match="separate"):
        two_view_forward(create_model("resnet8", num_classes=NC, in_chans=1), *_batch()[:2], "joint")


def test_ce_virtual_adds_cross_entropy_on_the_virtual_view():
    x, x_v, y = _batch()
    off = _vrm()
    assert "ce_virtual" not in off.train()(x, x_v, y, epoch=1)["losses"]
    on = _vrm(ce_virtual=0.5).train()
    ref = _student_copy(on)
    out = on(x, x_v, y, epoch=1)
    with torch.no_grad():
        s_v = ref(torch.cat([x, x_v]))[B:]
    expected = 0.5 * torch.nn.functional.cross_entropy(s_v, y)
    assert torch.allclose(out["losses"]["ce_virtual"].detach(), expected, atol=1e-5)


def test_virtual_strength_keys_are_typed_and_checked():
    cfg = load_config(None, [*V, "data.virtual_num_ops=3", "data.virtual_magnitude=15"])
    assert (cfg.data.virtual_num_ops, cfg.data.virtual_magnitude) == (3, 15)
    for bad in ("data.virtual_magnitude=30", "data.virtual_num_ops=-1", "data.virtual_magnitude=2.5"):
        with pytest.raises(ConfigError):
            load_config(None, [*V, bad])


def test_real_view_augment_is_typed_and_refused_for_image_folders():
    assert load_config(None, V).data.real_view_augment is True
    assert load_config(None, [*V, "data.real_view_augment=false"]).data.real_view_augment is False
    with pytest.raises(ConfigError, match="in-memory"):
        load_config(None, [*V, "data.real_view_augment=false", "data.name=imagefolder"])
