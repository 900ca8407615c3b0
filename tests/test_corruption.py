"""The robustness study's spurious teacher: fixed, seeded corrupted images and what training sees."""

import pytest
import torch

from tests.test_engine import distill, teacher_dir  # noqa: F401  (the module-scoped teacher fixture)
from vrm_train.config import ConfigError, load_config
from vrm_train.corruption import CorruptedTeacher, corruption_table, swap_top
from vrm_train.engine import Trainer
from vrm_train.models import create_model

pytestmark = pytest.mark.xdist_group("engine")


def test_table_is_fixed_by_the_seed_and_never_the_label():
    labels = torch.arange(1000) % 10
    a = corruption_table(labels, num_classes=10, fraction=0.15, seed=3)
    assert torch.equal(a, corruption_table(labels, num_classes=10, fraction=0.15, seed=3))
    assert not torch.equal(a, corruption_table(labels, num_classes=10, fraction=0.15, seed=4))
    hit = a >= 0
    assert int(hit.sum()) == 150
    assert bool((a[hit] != labels[hit]).all()) and int(a.max()) < 10
    assert len(set(a[hit].tolist())) == 10  # the wrong classes are spread over every class
    assert int((corruption_table(labels, num_classes=10, fraction=0.0, seed=0) >= 0).sum()) == 0
    with pytest.raises(ValueError):
        corruption_table(labels, num_classes=10, fraction=1.5, seed=0)


def test_swap_top_moves_the_answer_to_the_wrong_class():
    logits = torch.tensor([[3.0, 1.0, -2.0], [0.5, 2.0, 1.0], [1.0, 0.0, 4.0]])
    out = swap_top(logits, torch.tensor([2, -1, 0]))
    assert out.tolist() == [[-2.0, 1.0, 3.0], [0.5, 2.0, 1.0], [4.0, 0.0, 1.0]]
    assert logits[0, 0] == 3.0  # the input is not modified


def test_wrapper_corrupts_both_views_of_the_indexed_images_only():
    torch.manual_seed(0)
    teacher = create_model("resnet8", num_classes=4, in_chans=1).eval()
    table = torch.tensor([-1, 2, -1, 0, 1, -1])
    wrapped = CorruptedTeacher(teacher, table)
    x = torch.randn(6, 1, 16, 16)  # 3 images, real + virtual views
    with torch.no_grad():
        clean = teacher(x)
        assert torch.equal(wrapped(x), clean)  # no index: clean (evaluation, snapshots)
        wrapped.index = torch.tensor([1, 2, 3])
        bad, feats = wrapped(x, return_features=True)
    expected = swap_top(clean, torch.tensor([2, -1, 0, 2, -1, 0]))
    assert torch.equal(bad, expected) and "pooled" in feats
    assert not torch.equal(bad[0], clean[0]) and torch.equal(bad[1], clean[1])
    assert wrapped.corrupted_fraction() == pytest.approx(0.5)


def test_config_checks_the_fraction():
    with pytest.raises(ConfigError, match="corrupt_teacher_fraction"):
        load_config(None, ["method=vanilla", "data.corrupt_teacher_fraction=1.5"])
    with pytest.raises(ConfigError, match="needs a teacher"):
        load_config(None, ["method=vanilla", "data.corrupt_teacher_fraction=0.1"])


def _first_step_inputs(cfg, monkeypatch):
    """(x, teacher logits of x) of the first training step."""
    trainer = Trainer(cfg, progress=False)
    seen = {}
    forward = trainer.distiller.forward

    def spy(x, x_v, y, epoch):
        if not seen:
            seen["x"] = x.detach().clone()
            seen["t"] = trainer.distiller.teacher_forward(x)[0]
            seen["index"] = trainer.corrupted.index.clone() if trainer.corrupted is not None else None
        return forward(x, x_v, y, epoch)

    monkeypatch.setattr(trainer.distiller, "forward", spy)
    trainer.train_epoch(1)
    return trainer, seen


def test_training_sees_the_corrupted_teacher_on_the_chosen_images(teacher_dir, tmp_path, monkeypatch):  # noqa: F811
    cfg = distill(
        tmp_path, "kd_bad", "kd", teacher_dir, "optim.epochs=1", "data.corrupt_teacher_fraction=1.0"
    )
    trainer, seen = _first_step_inputs(cfg, monkeypatch)
    assert trainer.corrupted is not None and trainer.corrupted.index is None  # cleared after the step
    clean = trainer.corrupted.teacher(seen["x"])
    wrong = trainer.corrupted.table[seen["index"]]
    assert torch.equal(seen["t"], swap_top(clean, wrong))
    assert bool((seen["t"].argmax(1) == wrong).all())


def test_real_view_augment_off_gives_the_plain_image(teacher_dir, tmp_path, monkeypatch):  # noqa: F811
    cfg = distill(tmp_path, "plain", "kd", teacher_dir, "optim.epochs=1", "data.real_view_augment=false")
    trainer, seen = _first_step_inputs(cfg, monkeypatch)
    trainer.train_loader.set_epoch(1)
    batch = next(iter(trainer.train_loader))  # the first batch of epoch 1 again (the order is seeded)
    plain = trainer.views.normalize(batch.images.float() / 255.0)
    assert torch.allclose(seen["x"], plain)
    cfg_on = distill(tmp_path, "aug", "kd", teacher_dir, "optim.epochs=1")
    _, seen_on = _first_step_inputs(cfg_on, monkeypatch)
    assert not torch.allclose(seen_on["x"], plain)  # the default keeps crop + flip on the real view
