"""Models of a run (vrm_viz.models), their embeddings (vrm_viz.embeddings) and attributions (vrm_viz.attribution)."""

import os
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from vrm_train.checkpoint import CheckpointError
from vrm_viz.attribution import attribute, explain
from vrm_viz.embeddings import embedding_frame, neighbour_agreement, project
from vrm_viz.models import (
    ModelLoadError,
    load_checkpoint_model,
    load_student,
    load_teacher,
    normalize_images,
    predict,
    snapshot_inputs,
)
from vrm_viz.runs import DEMO_DIR, open_run


@pytest.fixture(scope="module")
def vrm_run():
    return open_run(os.path.join(DEMO_DIR, "vrm_resnet8"))


@pytest.fixture(scope="module")
def final_probe(vrm_run):
    return vrm_run.snapshot("probe", vrm_run.snapshot_epochs("probe")[-1])


# ------------------------------------------------------------------------------------------ model loading
@pytest.mark.parametrize("which", ["student", "teacher"])
def test_checkpoints_reproduce_the_snapshot_logits(vrm_run, final_probe, which):
    model = load_student(vrm_run) if which == "student" else load_teacher(vrm_run)
    assert not model.training
    logits, pooled = predict(model, snapshot_inputs(final_probe))
    ref_logits, ref_pooled = (
        (final_probe.s, final_probe.feat_s) if which == "student" else (final_probe.t, final_probe.feat_t)
    )
    assert logits.shape == (48, 10)
    torch.testing.assert_close(logits, ref_logits, atol=1e-4, rtol=0)
    torch.testing.assert_close(pooled, ref_pooled, atol=1e-4, rtol=0)


def test_teacher_is_the_teacher_run_model(vrm_run):
    teacher = load_teacher(vrm_run)
    own = load_student(open_run(os.path.join(DEMO_DIR, "teacher_resnet20")))
    for (k, a), (k2, b) in zip(teacher.state_dict().items(), own.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(a, b)


def test_normalize_images_by_hand():
    img = torch.tensor([[[[0, 255], [51, 102]]]], dtype=torch.uint8)
    x = normalize_images(img, [0.2], [0.5])
    expected = torch.tensor([[[[-0.4, 1.6], [0.0, 0.4]]]])
    torch.testing.assert_close(x, expected)
    with pytest.raises(ValueError, match="uint8"):
        normalize_images(img.float(), [0.2], [0.5])


def test_vanilla_run_has_no_teacher():
    with pytest.raises(ModelLoadError, match="without a teacher"):
        load_teacher(open_run(os.path.join(DEMO_DIR, "vanilla_resnet8")))


def _copy_run(src, dst, *, checkpoints=True):
    shutil.copytree(src, dst, ignore=None if checkpoints else shutil.ignore_patterns("checkpoints"))
    return open_run(dst)


def test_run_without_checkpoint(tmp_path):
    run = _copy_run(os.path.join(DEMO_DIR, "kd_resnet8"), tmp_path / "kd_partial", checkpoints=False)
    with pytest.raises(ModelLoadError, match=r"no student checkpoint \(checkpoints/student.pt\)"):
        load_student(run)


def test_missing_teacher_checkpoint(tmp_path):
    dst = tmp_path / "kd_moved"
    shutil.copytree(os.path.join(DEMO_DIR, "kd_resnet8"), dst)
    config = yaml.safe_load((dst / "config.yaml").read_text())
    config["teacher"]["checkpoint"] = "no_such_teacher"
    (dst / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(
        ModelLoadError, match=r"teacher checkpoint of run kd_moved \('no_such_teacher'\) was not found"
    ):
        load_teacher(open_run(dst))


def test_foreign_files_are_refused_clearly(tmp_path, vrm_run, final_probe):
    with pytest.raises(CheckpointError, match="no model state dict"):
        load_checkpoint_model(final_probe.path)
    truncated = tmp_path / "truncated.pt"
    with open(vrm_run.checkpoint("student"), "rb") as f:
        truncated.write_bytes(f.read()[:4096])
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint_model(str(truncated))
    unknown = tmp_path / "unknown.pt"
    torch.save({"model": {"w": torch.zeros(3, 3, 3, 3), "fc.weight": torch.zeros(4, 3)}}, unknown)
    with pytest.raises(ModelLoadError, match="match none of the model zoo"):
        load_checkpoint_model(str(unknown))
    with pytest.raises(ModelLoadError, match=r"holds a 'resnet8'.*'resnet20' was expected"):
        load_checkpoint_model(vrm_run.checkpoint("student"), arch="resnet20")
    bare = tmp_path / "bare.pt"  # no metadata: architecture, classes and channels read off the weights
    torch.save(torch.load(vrm_run.checkpoint("student"), weights_only=True)["model"], bare)
    assert load_checkpoint_model(str(bare)).num_classes == 10
    with pytest.raises(CheckpointError, match="does not fit architecture 'resnet20'"):
        load_checkpoint_model(str(bare), arch="resnet20")
    evil = tmp_path / "evil.pt"
    torch.save({"model": SimpleNamespace(a=1)}, evil)
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_checkpoint_model(str(evil))
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint_model(str(tmp_path / "absent.pt"))


# ------------------------------------------------------------------------------------------ embeddings
def test_pca_is_the_top_two_principal_components():
    x = np.random.default_rng(0).normal(size=(30, 8)) * np.arange(1, 9)
    xy = project(x, method="pca")
    centred = x - x.mean(0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    np.testing.assert_allclose(np.abs(xy), np.abs(u[:, :2] * s[:2]), atol=1e-9)
    np.testing.assert_array_equal(project(x, method="pca"), xy)


@pytest.mark.parametrize("shape", [(30, 8), (5, 64), (40, 2)])
def test_pca_equals_scikit_learns_signs_included(shape):
    from sklearn.decomposition import PCA

    x = np.random.default_rng(sum(shape)).normal(size=shape) * np.linspace(1, 3, shape[1])
    np.testing.assert_allclose(project(x, method="pca"), PCA(n_components=2).fit_transform(x), atol=1e-9)


def test_tsne_is_seeded_and_keeps_clusters_apart():
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(3, 20)) * 20
    x = np.concatenate([c + rng.normal(size=(10, 20)) for c in centres])
    a = project(x, method="tsne", seed=3, perplexity=5.0, max_iter=250)
    b = project(x, method="tsne", seed=3, perplexity=5.0, max_iter=250)
    assert a.shape == (30, 2)
    np.testing.assert_array_equal(a, b)
    d = ((a[:, None] - a[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert (d.argmin(1) // 10 == np.arange(30) // 10).all()
    assert project(x[:4], method="tsne", perplexity=50.0, max_iter=250).shape == (
        4,
        2,
    )  # perplexity capped for tiny sets


def test_project_rejects_bad_input():
    with pytest.raises(ValueError, match="method"):
        project(np.zeros((5, 2)), method="umap")
    with pytest.raises(ValueError, match="NaN"):
        project(np.full((5, 2), np.nan), method="pca")
    with pytest.raises(ValueError, match="at least 3"):
        project(np.zeros((2, 4)), method="pca")


def test_embedding_frame_on_the_demo(final_probe):
    df = embedding_frame(final_probe, method="pca")
    assert len(df) == 96 and set(df.model) == {"teacher", "student"}
    t = df[df.model == "teacher"].sort_values("sample")
    assert t["label"].tolist() == [final_probe.classes[int(c)] for c in final_probe.targets]
    acc = float((final_probe.t.argmax(1) == final_probe.targets).float().mean())
    assert t["correct"].mean() == pytest.approx(acc)
    vanilla = open_run(os.path.join(DEMO_DIR, "vanilla_resnet8"))
    snap = vanilla.snapshot("probe", vanilla.snapshot_epochs("probe")[-1])
    assert set(embedding_frame(snap, method="pca").model) == {"student"}


def test_neighbour_agreement_by_hand():
    a = np.array([[0.0], [1.0], [3.0], [7.0]])
    b = np.array([[0.0], [1.0], [7.0], [3.0]])
    # 1-NN in a: 0→1, 1→0, 2→1, 3→2; in b: 0→1, 1→0, 2→3, 3→1: two of four agree
    assert neighbour_agreement(a, b, k=1) == 0.5
    x = np.random.default_rng(2).normal(size=(12, 6))
    q, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(6, 6)))
    assert neighbour_agreement(x, 3 * x @ q + 5, k=4) == 1.0
    with pytest.raises(ValueError, match="k must be"):
        neighbour_agreement(a, b, k=4)


# ------------------------------------------------------------------------------------------ attributions
def _linear(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).double()


class _Quadratic(nn.Module):
    """logits = [Σ x², Σ x]: IG from a zero baseline gives x² (resp. x); the gradient is 2x (resp. 1)."""

    def forward(self, x):
        f = x.flatten(1)
        return torch.stack([(f**2).sum(1), f.sum(1)], 1)


def test_integrated_gradients_of_a_linear_model():
    model = _linear()
    x = torch.randn(2, 1, 4, 4, dtype=torch.float64)
    base = torch.randn(2, 1, 4, 4, dtype=torch.float64)
    w = model[1].weight.detach()
    attr, delta = attribute(
        model,
        x,
        torch.tensor([2, 0]),
        method="integrated_gradients",
        baseline=base,
        n_steps=8,
        return_delta=True,
    )
    expected = torch.stack([(x[0] - base[0]) * w[2].view(1, 4, 4), (x[1] - base[1]) * w[0].view(1, 4, 4)])
    torch.testing.assert_close(attr, expected, rtol=1e-6, atol=1e-9)  # captum's step weights: float32
    assert delta.abs().max() < 1e-6


def test_saliency_of_a_linear_model():
    model = _linear(1)
    x = torch.randn(3, 1, 4, 4, dtype=torch.float64)
    attr = attribute(model, x, 1, method="saliency")
    expected = model[1].weight.detach()[1].abs().view(1, 1, 4, 4).expand(3, 1, 4, 4)
    torch.testing.assert_close(attr, expected)


def test_attributions_of_a_quadratic_model():
    x = torch.randn(2, 1, 3, 3, dtype=torch.float64)
    ig = attribute(_Quadratic(), x, 0, method="integrated_gradients", n_steps=4)
    torch.testing.assert_close(ig, x**2, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(attribute(_Quadratic(), x, 0, method="saliency"), (2 * x).abs())
    torch.testing.assert_close(attribute(_Quadratic(), x, 1, method="integrated_gradients", n_steps=2), x)


def test_explain_uses_the_black_baseline_and_the_chosen_target():
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    torch.manual_seed(0)
    img = torch.randint(0, 256, (3, 1, 4, 4), dtype=torch.uint8)
    snap = SimpleNamespace(
        image=img,
        image_v=255 - img,
        mean=[0.3],
        std=[0.5],
        targets=torch.tensor([2, 0, 1]),
        index=torch.tensor([10, 11, 12]),
        classes=["a", "b", "c"],
        batch_size=3,
    )
    w = model[1].weight.detach()
    out = explain({"student": model}, snap, [0, 2], method="integrated_gradients", target="true", n_steps=4)
    assert [r.sample for r in out] == [0, 2] and [r.index for r in out] == [10, 12]
    for r, target in zip(out, [2, 1], strict=True):
        a = r.models["student"]
        assert a.target == target and a.target_label == "abc"[target]
        expected = (img[r.sample, 0].double() / 255 / 0.5) * w[target].view(4, 4).double()
        np.testing.assert_allclose(a.heatmap, expected.numpy(), rtol=1e-4, atol=1e-5)
        assert abs(a.delta) < 1e-4
    pred = explain({"student": model}, snap, [1], method="saliency", target="predicted", view="virtual")[0]
    top = int(model(normalize_images(snap.image_v[1:2], [0.3], [0.5])).argmax())
    assert pred.models["student"].target == top and pred.view == "virtual"
    np.testing.assert_allclose(pred.models["student"].heatmap, w[top].abs().view(4, 4).numpy(), rtol=1e-6)
    np.testing.assert_array_equal(pred.image, (255 - img[1, 0]).numpy())
    with pytest.raises(ValueError, match="outside the batch"):
        explain({"student": model}, snap, [3], method="saliency")


def test_explain_demo_models(vrm_run, final_probe):
    models = {"teacher": load_teacher(vrm_run), "student": load_student(vrm_run)}
    out = explain(models, final_probe, [0, 7], method="integrated_gradients", n_steps=8)
    for r in out:
        assert r.image.shape == (28, 28)
        for a in r.models.values():
            assert a.heatmap.shape == (28, 28) and np.isfinite(a.heatmap).all()
            # completeness: attributions add up to the logit change from the black image (up to the delta)
            assert abs(a.delta) < 0.1 * max(1.0, float(np.abs(a.heatmap).sum()))
