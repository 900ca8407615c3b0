"""Packaging beyond what pyproject.toml can say: the experiment configs and the demo runs stay in their
top-level folders (``configs/``, ``data/demo/``) and ship inside the wheel as package data of
``vrm_train`` and ``vrm_viz`` (found with ``vrm_train.resources``). Everything else is in pyproject.toml."""

from setuptools import find_packages, setup

DATA_PACKAGES = {"vrm_train.configs": "configs", "vrm_viz.demo": "data/demo"}

setup(
    packages=find_packages(include=["vrm_train*", "vrm_viz*", "vrm_app*"]) + list(DATA_PACKAGES),
    package_dir=DATA_PACKAGES,
    package_data={
        "vrm_train": ["py.typed"],
        "vrm_viz": ["py.typed"],
        "vrm_train.configs": ["**/*.yaml"],
        "vrm_viz.demo": ["**/*"],
    },
)
