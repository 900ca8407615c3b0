"""The method and dataset registries: a method defined in a module of its own trains with no other edit."""

import importlib
import os
import re
import subprocess
import sys
import textwrap

import pytest
import torch

from vrm_train.cli import build_parser
from vrm_train.config import ConfigError, load_config, save_config, to_dict
from vrm_train.data import (
    DatasetError,
    DatasetSpec,
    TensorImages,
    build_data,
    list_datasets,
    register_dataset,
)
from vrm_train.data import registry as data_registry
from vrm_train.distillers import get_method, list_methods, register_method
from vrm_train.distillers.base import Distiller
from vrm_train.distillers.registry import unregister_method
from vrm_train.engine import train
from vrm_train.models import create_model
from vrm_train.rundir import RunDir
from vrm_viz.runs import open_run

pytestmark = pytest.mark.xdist_group("engine")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TOY = textwrap.dedent(
    '''
    """A toy method: squared distance between student and teacher logits."""
    from dataclasses import dataclass
    from typing import Literal

    from vrm_train.distillers import Distiller, register_method
    from vrm_train.distillers.base import logit_relation, step_output


    @dataclass
    class ToyConfig:
        ce_weight: float = 1.0
        weight: float = 0.5
        reduce: Literal["mean", "sum"] = "mean"


    @register_method("toy_l2", config=ToyConfig, min_batch=3, summary="toy: L2 between logits")
    class ToyL2(Distiller):
        def __init__(self, student, teacher, *, ce_weight, weight, reduce):
            super().__init__(student, teacher, ce_weight)
            self.weight, self.reduce = weight, reduce

        def forward(self, x, x_v, y, epoch):
            s, fs = self.student(x, return_features=True)
            t, ft = self.teacher_forward(x)
            d = (s.float() - t.float()).pow(2)
            toy = self.weight * (d.mean() if self.reduce == "mean" else d.sum())
            return step_output({"ce": self.ce(s, y), "toy": toy}, s, relation=logit_relation(s, t, fs, ft))
    '''
)


@pytest.fixture
def toy_method(tmp_path, monkeypatch):
    (tmp_path / "toy_method_mod.py").write_text(TOY)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("toy_method_mod")
    yield module
    unregister_method("toy_l2")
    sys.modules.pop("toy_method_mod", None)


@pytest.fixture
def teacher_file(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "teacher.pth"
    torch.save({"model": create_model("resnet8", num_classes=4, in_chans=3).state_dict()}, path)
    return str(path)


TINY = [
    "data.name=synthetic",
    "data.synthetic_size=48",
    "data.synthetic_classes=4",
    "data.image_size=16",
    "data.batch_size=24",
    "data.eval_batch_size=64",
    "optim.epochs=1",
    "snapshot.probe_size=8",
    "snapshot.train_batches=1",
    "model.name=resnet8",
    "teacher.name=resnet8",
]


def test_a_method_in_its_own_module_trains_with_no_other_edit(toy_method, teacher_file, tmp_path):
    spec = get_method("toy_l2")
    assert spec.needs_teacher and spec.min_batch == 3 and "toy_l2" in list_methods()
    cfg = load_config(
        None,
        [
            *TINY,
            "method=toy_l2",
            "toy_l2.weight=2",
            f"teacher.checkpoint={teacher_file}",
            f"out_dir={tmp_path}",
        ],
    )
    assert cfg.toy_l2.weight == 2.0 and cfg.toy_l2.reduce == "mean"
    summary = train(cfg, progress=False)
    run = RunDir(summary["run"])
    rows = run.read_metrics()
    assert len(rows) == 1 and float(rows[0]["toy"]) > 0 and float(rows[0]["ce"]) > 0
    saved = load_config(run.config)  # the run's config.yaml holds the section and loads back
    assert saved.toy_l2.weight == 2.0 and to_dict(saved) == to_dict(cfg)
    opened = open_run(run.path)
    assert opened.uses_teacher and opened.teacher == "resnet8"
    assert "toy_l2.weight" in opened.flat_config() and not any(
        k.startswith("vrm.") for k in opened.flat_config()
    )
    help_text = build_parser()._subparsers._group_actions[0].choices["distill"].format_help()
    assert "toy_l2" in help_text and "toy: L2 between logits" in help_text


def test_the_registry_derives_the_config_checks(toy_method, teacher_file):
    base = ["method=toy_l2", f"teacher.checkpoint={teacher_file}"]
    with pytest.raises(ConfigError, match=r"'toy_l2\.reduce' must be one of mean, sum"):
        load_config(None, [*base, "toy_l2.reduce=max"])
    with pytest.raises(ConfigError, match=r"'data\.batch_size' must be >= 3 for method 'toy_l2'"):
        load_config(None, [*base, "data.batch_size=2"])
    with pytest.raises(ConfigError, match=r"method 'toy_l2' needs a teacher"):
        load_config(None, ["method=toy_l2"])
    with pytest.raises(ConfigError, match=r"unknown config key 'toy_l2\.wieght'"):
        load_config(None, [*base, "toy_l2.wieght=1"])


def test_unknown_sections_and_methods_are_clear_errors():
    with pytest.raises(ConfigError, match=r"unknown config key 'toy_l2'"):
        load_config(None, ["method=vanilla", "toy_l2.weight=1"])
    with pytest.raises(ConfigError, match=r"'method' must be one of at, cc, .*, got 'toy_l2'"):
        load_config(None, ["method=toy_l2"])
    with pytest.raises(KeyError, match="--plugin"):
        get_method("toy_l2")


def test_registration_rules(toy_method):
    with pytest.raises(ValueError, match=r"already registered by toy_method_mod\.ToyL2"):

        @register_method("toy_l2")
        class Other(Distiller):
            def forward(self, x, x_v, y, epoch):  # pragma: no cover
                raise AssertionError

    for bad in ("Toy", "1toy", "to-y", ""):
        with pytest.raises(ValueError, match=r"method name"):
            register_method(bad)
    with pytest.raises(TypeError, match=r"must be a dataclass"):
        register_method("toy_x", config=dict)
    importlib.reload(toy_method)  # the same class registered again is fine


def test_no_method_name_is_special_cased_outside_its_file():
    """The engine, config, distiller package, vrm_viz's run lists and the config generator read attributes."""
    names = list_methods()
    files = [
        "vrm_train/engine.py",
        "vrm_train/config.py",
        "vrm_train/distillers/__init__.py",
        "vrm_viz/runs.py",
    ]
    for f in files:
        with open(os.path.join(REPO, f), encoding="utf-8") as fh:
            text = fh.read()
        for n in names:  # a comparison with a method name, or a name in a hard-coded list of methods
            assert not re.search(rf'(==|!=)\s*"{n}"|"{n}"\s*(==|!=)|"{n}",\s*"', text), f"{f} names {n!r}"


def test_sections_and_methods_follow_the_registry_in_saved_configs(tmp_path):
    cfg = load_config(None, ["method=vanilla"])
    keys = list(to_dict(cfg))
    sections = [k for k in keys if k in list_methods()]
    assert sections == [n for n in list_methods() if get_method(n).config is not None]
    assert keys.index(sections[0]) == keys.index("optim") + 1
    path = str(tmp_path / "c.yaml")
    save_config(cfg, path)
    assert to_dict(load_config(path)) == to_dict(cfg)


def test_make_configs_writes_every_registered_method(tmp_path):
    out = subprocess.run(
        [sys.executable, os.path.join(REPO, "scripts", "make_configs.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    for name in list_methods():
        assert (tmp_path / "fashion_mnist" / f"{name}.yaml").is_file()


def _toy_images(n, seed):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, 6, 6), generator=g, dtype=torch.uint8)
    return TensorImages(images, torch.arange(n) % 3, ["a", "b", "c"], "toy_grid")


def test_a_dataset_registers_one_spec():
    spec = DatasetSpec(
        name="toy_grid",
        load=lambda r: (_toy_images(30, 0), _toy_images(9, 1)),
        mean=(0.5,),
        std=(0.3,),
        crop_padding=1,
        flip=False,
        native_size=6,
        default_size=6,
        summary="toy",
    )
    register_dataset(spec)
    try:
        assert "toy_grid" in list_datasets()
        b = build_data("toy_grid", val_per_class=2)
        assert (b.num_classes, b.in_chans, b.image_size, b.crop_padding, b.flip) == (3, 1, 6, 1, False)
        assert len(b.val) == 6 and len(b.train) == 24 and b.mean == (0.5,)
        assert load_config(None, ["method=vanilla", "data.name=toy_grid"]).data.name == "toy_grid"
        from vrm_app.state import live  # the app's Open checkpoints page offers it, with its summary

        assert live.dataset_choices()["toy_grid"] == "toy" and live.needs_root("toy_grid")
        assert "synthetic" not in live.dataset_choices() and not live.needs_root("digits")
        with pytest.raises(DatasetError, match=r"toy_grid images are 6 px"):
            build_data("toy_grid", image_size=8)
    finally:
        data_registry._DATASETS.pop("toy_grid")
    with pytest.raises(
        ConfigError, match=r"'data\.name' must be one of cifar100, .*synthetic, got 'toy_grid'"
    ):
        load_config(None, ["method=vanilla", "data.name=toy_grid"])


def test_committed_run_directories_still_load():
    """The demo runs and any committed benchmark runs were written before the registry: they load as they are."""
    import glob

    files = glob.glob(os.path.join(REPO, "data", "demo", "*", "config.yaml"))
    files += glob.glob(os.path.join(REPO, "bench", "results", "**", "config.yaml"), recursive=True)
    assert len(files) >= 10
    for f in files:
        cfg = load_config(f)
        assert cfg.method in list_methods()


def test_every_method_file_of_the_package_is_registered_without_a_list():
    """A new file in vrm_train/distillers/ is a new method: the package imports each of its modules."""
    folder = os.path.join(REPO, "vrm_train", "distillers")
    files = {f[:-3] for f in os.listdir(folder) if f.endswith(".py") and f != "__init__.py"}
    from vrm_train import distillers

    assert set(distillers.INFRASTRUCTURE) < files
    builtin = {get_method(n).module.rsplit(".", 1)[-1] for n in list_methods()}
    assert builtin >= files - set(distillers.INFRASTRUCTURE)
