"""CNN -> ViT: a CNN teacher distils into a DeiT-Tiny student (AdamW, warm-up + cosine) for a few steps on
synthetic data; the run has relation snapshots and every page of the app opens on it."""

import os
import re

import pytest
import torch
from streamlit.testing.v1 import AppTest

from vrm_train.checkpoint import load_file
from vrm_train.config import load_config
from vrm_train.engine import train
from vrm_train.models import create_model
from vrm_train.optim import build_optimizer, decay_groups
from vrm_train.rundir import RunDir
from vrm_viz.runs import open_run

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("vit")]

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN = os.path.join(REPO, "vrm_app", "main.py")


def test_adamw_leaves_norms_biases_and_embeddings_undecayed():
    model = create_model("deit_tiny", num_classes=10)
    decay, no_decay = decay_groups([model], 0.05)
    names = {id(p): n for n, p in model.named_parameters()}
    undecayed = {names[id(p)] for p in no_decay["params"]}
    assert {
        "pos_embed",
        "cls_token",
        "norm.weight",
        "norm.bias",
        "head.bias",
        "blocks.0.norm1.weight",
    } <= undecayed
    decayed = {names[id(p)] for p in decay["params"]}
    assert {"head.weight", "blocks.0.attn.qkv.weight", "patch_embed.weight"} <= decayed
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert len(decayed) + len(undecayed) == len(names)


def test_sgd_keeps_one_decayed_group():
    cfg = load_config(None, ["method=vanilla"])

    class D:
        def trainable_parameters(self):
            return list(create_model("resnet8", num_classes=10).parameters())

    opt = build_optimizer(cfg.optim, D())
    assert isinstance(opt, torch.optim.SGD) and len(opt.param_groups) == 1
    assert opt.param_groups[0]["weight_decay"] == cfg.optim.weight_decay


@pytest.fixture(scope="module")
def vit_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("vit")
    torch.manual_seed(0)
    teacher = out / "resnet8_teacher.pth"
    torch.save({"model": create_model("resnet8", num_classes=4).state_dict()}, teacher)  # published layout
    cfg = load_config(
        None,
        [
            "method=vrm",
            "model.name=deit_tiny",
            "teacher.name=resnet8",
            f"teacher.checkpoint={teacher}",
            "data.name=synthetic",
            "data.synthetic_size=64",
            "data.synthetic_classes=4",
            "data.image_size=32",
            "data.batch_size=16",
            "data.eval_batch_size=64",
            "optim.name=adamw",
            "optim.lr=5e-4",
            "optim.weight_decay=0.05",
            "optim.schedule=cosine",
            "optim.warmup_epochs=0.5",
            "optim.epochs=1",
            "snapshot.epochs=[0]",
            "snapshot.probe_size=8",
            "snapshot.train_batches=1",
            f"out_dir={out / 'runs'}",
            "name=vrm_resnet8_deit_tiny",
        ],
    )
    summary = train(cfg, progress=False)
    return summary["run"]


def test_cnn_teacher_distils_into_a_vit_student(vit_run):
    run = RunDir(vit_run)
    rows = run.read_metrics()
    assert len(rows) == 1 and float(rows[0]["vrm"]) > 0 and float(rows[0]["lr"]) == 0.0  # warm-up starts at 0
    probe = load_file(run.probe_snapshot(1))
    assert probe["student_arch"] == "deit_tiny" and probe["teacher_arch"] == "resnet8"
    assert probe["s"].shape == (8, 4) and probe["s_v"].shape == (8, 4) and probe["t"].shape == (8, 4)
    assert probe["feat_s"].shape == (8, 192)  # the class token after the final norm: DeiT-Tiny's width
    kinds = {(k, e) for k, e, _, _ in run.snapshots()}
    assert kinds == {("probe", 0), ("probe", 1), ("train", 1)}
    export = load_file(run.checkpoint("student"))
    model = create_model("deit_tiny", num_classes=4)
    model.load_state_dict(export["model"])
    assert open_run(vit_run).student == "deit_tiny"


def _pages() -> list[str]:
    with open(MAIN, encoding="utf-8") as f:
        return re.findall(r"st\.Page\(\s*HERE\s*/\s*[\"'](views/[^\"']+\.py)[\"']", f.read())


@pytest.mark.parametrize("page", _pages())
def test_every_app_page_opens_on_the_vit_run(vit_run, page):
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.switch_page(page)
    at.run()
    at.sidebar.text_input(key="source_path").input(os.path.dirname(vit_run)).run()
    assert not at.exception, f"{page}: {[e.value for e in at.exception]}"
    assert not at.error, f"{page}: {[e.value for e in at.error]}"
