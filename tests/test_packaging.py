"""The package stands on its own: one version source, the declared licence, typed packages, configs and demo
runs found without a checkout, the checkout launcher and the ``vrm-app`` console script, and a wheel that
carries all of it (the full install-and-run check is ``scripts/check_wheel.sh``)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import vrm_train
from vrm_app import launch
from vrm_train import resources
from vrm_train.cli import main as cli_main
from vrm_train.config import ConfigError, load_config

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def pyproject() -> dict:
    with open(REPO / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def test_version_is_written_once(pyproject):
    project = pyproject["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "vrm_train.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+|rc\d+)?", vrm_train.__version__)


def test_licence_file_is_the_declared_apache_2(pyproject):
    assert pyproject["project"]["license"] == "Apache-2.0"
    assert pyproject["project"]["license-files"] == ["LICENSE"]
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_typed_packages_ship_py_typed():
    setup_py = (REPO / "setup.py").read_text(encoding="utf-8")
    for pkg in ("vrm_train", "vrm_viz"):
        assert (REPO / pkg / "py.typed").is_file()
        assert f'"{pkg}": ["py.typed"]' in setup_py


def test_dependency_floors_cover_the_apis_we_use(pyproject):
    deps = pyproject["project"]["dependencies"] + pyproject["project"]["optional-dependencies"]["app"]
    floors = {m.group(1): m.group(2) for m in (re.match(r"([\w.-]+)>=([\d.]+)", d) for d in deps) if m}
    assert set(floors) >= {"torch", "streamlit", "kornia", "numpy", "pandas", "plotly"}
    version = lambda s: tuple(int(x) for x in s.split("."))  # noqa: E731
    # get_total_norm is new in torch 2.6; st.download_button takes a callable as data from streamlit 1.52;
    assert version(floors["torch"]) >= (2, 6)
    assert version(floors["streamlit"]) >= (1, 52)
    assert version(floors["scikit-learn"]) >= (1, 5)  # TSNE(max_iter=...)


def test_no_top_level_app_package(pyproject):
    setup_py = (REPO / "setup.py").read_text(encoding="utf-8")
    assert 'include=["vrm_train*", "vrm_viz*", "vrm_app*"]' in setup_py
    assert not (REPO / "app" / "__init__.py").exists(), "app/ holds only the checkout launcher"
    assert pyproject["project"]["scripts"] == {
        "vrm-train": "vrm_train.cli:main",
        "vrm-app": "vrm_app.launch:main",
    }


# ------------------------------------------------------------------ configs and demo runs without a checkout


def test_readme_config_path_and_config_names_work_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no configs/ here
    packaged = str(resources.configs_dir() / "fashion_mnist" / "vrm.yaml")
    for spelling in ("configs/fashion_mnist/vrm.yaml", "fashion_mnist/vrm.yaml", "fashion_mnist/vrm"):
        assert resources.find_config(spelling) == packaged, spelling
    assert load_config("fashion_mnist/vrm").method == "vrm"


def test_a_file_that_exists_wins_over_a_packaged_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "configs" / "fashion_mnist" / "vrm.yaml"
    mine.parent.mkdir(parents=True)
    mine.write_text("method: vanilla\nseed: 7\n", encoding="utf-8")
    assert resources.find_config("configs/fashion_mnist/vrm.yaml") == "configs/fashion_mnist/vrm.yaml"
    assert load_config("configs/fashion_mnist/vrm.yaml").seed == 7


def test_an_unknown_config_says_how_to_find_the_packaged_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"config file not found: .*fashion_mnist/vrn.*vrm-train configs"):
        load_config("configs/fashion_mnist/vrn.yaml")


def test_packaged_configs_are_listed_and_all_load():
    names = resources.list_configs()
    assert "fashion_mnist/vrm" in names and "cifar100/vrm/resnet32x4_resnet8x4" in names
    assert not [n for n in names if Path(n).name.startswith("_")], (
        "shared _base_ files are not configs to run"
    )
    assert len(names) == len(list(resources.configs_dir().rglob("[!_]*.yaml")))
    assert resources.list_configs("fashion_mnist/") == [n for n in names if n.startswith("fashion_mnist/")]
    for name in names:
        load_config(name)


def test_cli_lists_packaged_configs(capsys):
    assert cli_main(["configs", "fashion_mnist"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["configs_dir"] == str(resources.configs_dir())
    assert "fashion_mnist/vrm" in out["configs"] and all(
        n.startswith("fashion_mnist") for n in out["configs"]
    )


def _fake_package(root: Path, name: str, with_data: bool) -> None:
    pkg = root / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    if with_data:
        (pkg / "configs").mkdir()


def test_installed_package_data_comes_first_then_the_checkout(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    _fake_package(tmp_path, "vrm_fake_installed", with_data=True)
    _fake_package(tmp_path, "vrm_fake_bare", with_data=False)
    checkout = tmp_path / "checkout"
    (checkout / "configs").mkdir(parents=True)
    monkeypatch.setattr(resources, "_CHECKOUT", checkout)
    assert (
        resources._data_dir("vrm_fake_installed", "configs", "configs")
        == tmp_path / "vrm_fake_installed" / "configs"
    )
    assert resources._data_dir("vrm_fake_bare", "configs", "configs") == checkout / "configs"
    # neither: the installed location, so a message names where the files belong
    assert resources._data_dir("vrm_fake_bare", "demo", "data/demo") == tmp_path / "vrm_fake_bare" / "demo"


def test_demo_runs_are_found():
    from vrm_viz.runs import DEMO_DIR, discover_runs

    assert Path(DEMO_DIR) == resources.demo_dir() and resources.demo_dir().is_dir()
    assert len(discover_runs(DEMO_DIR)) >= 8


# ------------------------------------------------------------------ starting the app


@pytest.mark.xdist_group("app")
def test_checkout_launcher_runs_the_router():
    at = AppTest.from_file(str(REPO / "app" / "main.py"), default_timeout=90)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.title, "the default page (Runs) drew no title"


def test_vrm_app_help_and_missing_extra(capsys, monkeypatch):
    assert launch.main(["--help"]) == 0
    assert "vrm-app" in capsys.readouterr().out
    monkeypatch.setitem(sys.modules, "streamlit.web", None)  # as if the app extra were not installed
    assert launch.main([]) == 2
    assert "pip install 'vrm[app]'" in capsys.readouterr().err


def test_vrm_app_runs_streamlit_on_the_packaged_router(monkeypatch):
    from streamlit.web import cli as streamlit_cli

    seen = {}
    monkeypatch.setattr(streamlit_cli, "main", lambda: seen.setdefault("argv", list(sys.argv)) and 0)
    monkeypatch.setattr(sys, "argv", ["vrm-app"])
    launch.main(["--server.port", "8599"])
    assert seen["argv"][:3] == ["streamlit", "run", launch.ROUTER]
    assert seen["argv"][-2:] == ["--server.port", "8599"]
    assert Path(launch.ROUTER) == REPO / "vrm_app" / "main.py"


# ------------------------------------------------------------------ the wheel


@pytest.mark.slow
def test_wheel_carries_code_data_licence_and_entry_points(tmp_path):
    """Builds the wheel (no isolation: the venv's setuptools) and reads what it holds."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        cwd=tmp_path,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("vrm-*.whl")
    assert wheel.name.startswith(f"vrm-{vrm_train.__version__}-")
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"vrm_train", "vrm_viz", "vrm_app"}
    configs = {n for n in names if n.startswith("vrm_train/configs/")}
    assert len(configs) == len(list((REPO / "configs").rglob("*.yaml")))
    demo = {n for n in names if n.startswith("vrm_viz/demo/")}
    root = REPO / "data" / "demo"  # every run file; not the builder's hidden marker (.vrm-demo)
    hidden = lambda p: any(part.startswith(".") for part in p.relative_to(root).parts)  # noqa: E731
    visible = [p for p in root.rglob("*") if p.is_file() and not hidden(p)]
    assert len(demo) == len(visible) > 0
    assert {"vrm_train/py.typed", "vrm_viz/py.typed", "vrm_app/main.py", "vrm_app/views/runs.py"} <= names
    info = next(n for n in names if n.endswith(".dist-info/METADATA")).rsplit("/", 1)[0]
    assert f"{info}/licenses/LICENSE" in names
    entry_points = zipfile.ZipFile(wheel).read(f"{info}/entry_points.txt").decode()
    assert (
        "vrm-train = vrm_train.cli:main" in entry_points and "vrm-app = vrm_app.launch:main" in entry_points
    )
    assert not any(os.path.basename(n).startswith(".tmp") for n in names)
