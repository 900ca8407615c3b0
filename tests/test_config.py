import glob
import os
import subprocess
import sys

import pytest
import yaml

from vrm_train.config import ConfigError, RunConfig, load_config, save_config, to_dict

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def write(tmp_path, name, data):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data))
    return str(p)


def test_defaults_and_overrides_are_typed():
    cfg = load_config(
        None,
        [
            "method=vanilla",
            "optim.lr=0.1",
            "optim.milestones=[5,10]",
            "vrm.zscore=false",
            "pkt.eps=1e-7",
            "optim.clip_grad_norm=5",
        ],
    )
    assert cfg.optim.lr == 0.1 and cfg.optim.milestones == [5, 10] and cfg.vrm.zscore is False
    assert cfg.pkt.eps == pytest.approx(1e-7)  # YAML 1.1 reads 1e-7 as a string: accepted for floats
    assert isinstance(cfg.optim.clip_grad_norm, float)


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.lrr=0.1", "unknown config key 'optim.lrr'"),
        ("bogus=1", "unknown config key 'bogus'"),
        ("optim.epochs=ten", "config key 'optim.epochs' must be an integer"),
        ("optim.epochs=2.5", "config key 'optim.epochs' must be an integer"),
        ("vrm.zscore=maybe", "config key 'vrm.zscore' must be true or false"),
        ("vrm.uep=entropy", "config key 'vrm.uep' must be one of"),
        ("vrm.uep_ratio=1.5", "vrm.uep_ratio"),
        ("optim.milestones=5", "config key 'optim.milestones' must be a list"),
        ("optim.lr", "must look like key=value"),
        ("data=3", "config key 'data' must be a mapping"),
    ],
)
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, ["method=vanilla", override])


def test_distillation_needs_a_teacher():
    with pytest.raises(ConfigError, match="method 'kd' needs a teacher"):
        load_config(None, ["method=kd"])


def test_base_files_merge_and_cycles_fail(tmp_path):
    write(tmp_path, "base.yaml", {"optim": {"lr": 0.2, "epochs": 3}, "method": "vanilla"})
    top = write(tmp_path, "top.yaml", {"_base_": "base.yaml", "optim": {"epochs": 7}})
    cfg = load_config(top)
    assert (cfg.optim.lr, cfg.optim.epochs) == (0.2, 7)
    a = write(tmp_path, "a.yaml", {"_base_": "b.yaml"})
    write(tmp_path, "b.yaml", {"_base_": "a.yaml"})
    with pytest.raises(ConfigError, match="includes itself"):
        load_config(a)


def test_malformed_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(bad))
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(str(tmp_path / "missing.yaml"))
    lst = write(tmp_path, "list.yaml", [1, 2])
    with pytest.raises(ConfigError, match="mapping at the top level"):
        load_config(lst)


def test_save_round_trip(tmp_path):
    cfg = load_config(None, ["method=vanilla", "data.subset_per_class=3", "snapshot.epochs=[0,2]"])
    path = str(tmp_path / "c.yaml")
    save_config(cfg, path)
    assert to_dict(load_config(path)) == to_dict(cfg)


def test_every_committed_config_loads_and_is_generated(tmp_path):
    files = [f for f in glob.glob(os.path.join(REPO, "configs", "**", "*.yaml"), recursive=True)]
    experiments = [f for f in files if "_recipe" not in f]
    assert len(experiments) >= 9 * 11 + 9 * 2 + 10
    for f in experiments:
        cfg = load_config(f)
        assert isinstance(cfg, RunConfig)
    # the committed files are exactly what the generator writes (generated into a temporary folder)
    out_dir = tmp_path / "configs"
    script = os.path.join(REPO, "scripts", "make_configs.py")
    out = subprocess.run([sys.executable, script, str(out_dir)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    fresh = {os.path.relpath(f, out_dir): _read(f) for f in glob.glob(f"{out_dir}/**/*.yaml", recursive=True)}
    committed = {os.path.relpath(f, os.path.join(REPO, "configs")): _read(f) for f in files}
    assert fresh == committed, "configs/ differs from scripts/make_configs.py output: rerun the script"


def test_standard_recipe_values():
    cfg = load_config(os.path.join(REPO, "configs", "cifar100", "vrm", "resnet32x4_resnet8x4.yaml"))
    assert (cfg.optim.epochs, cfg.optim.lr, cfg.optim.milestones) == (240, 0.05, [150, 180, 210])
    assert (cfg.data.batch_size, cfg.optim.weight_decay, cfg.teacher.name) == (64, 5e-4, "resnet32x4")
    light = load_config(os.path.join(REPO, "configs", "cifar100", "kd", "vgg13_MobileNetV2.yaml"))
    assert light.optim.lr == 0.01
    im = load_config(os.path.join(REPO, "configs", "imagenet", "dkd", "resnet34_resnet18.yaml"))
    assert (im.optim.epochs, im.optim.milestones, im.dkd.beta) == (100, [30, 60, 90], 0.5)
