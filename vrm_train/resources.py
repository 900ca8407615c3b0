"""Files that ship with the package: the experiment configs and the demo runs the app opens.

In a source checkout they are the top-level folders ``configs/`` and ``data/demo/``; an installed wheel
carries the same files as package data (``vrm_train/configs/``, ``vrm_viz/demo/``, see ``setup.py``).
Either way they are found here, with :mod:`importlib.resources` first, so nothing depends on the current
directory. Packaged configs can be named instead of given as a path::

    vrm-train distill --config fashion_mnist/vrm            # = configs/fashion_mnist/vrm.yaml
    vrm-train configs                                         # lists them
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

# The folder holding vrm_train/: a source checkout, or site-packages when installed.
_CHECKOUT = Path(__file__).resolve().parent.parent


def _data_dir(package: str, name: str, checkout_path: str) -> Path:
    """``<package>/<name>`` of an installed wheel, else ``<checkout>/<checkout_path>`` of a source checkout.

    Returns the installed location when neither exists, so error messages name where the files belong."""
    packaged = Path(str(importlib.resources.files(package) / name))
    if packaged.is_dir():
        return packaged
    checkout = _CHECKOUT / checkout_path
    return checkout if checkout.is_dir() else packaged


def configs_dir() -> Path:
    """The folder of packaged experiment configs (``configs/`` in a checkout)."""
    return _data_dir("vrm_train", "configs", "configs")


def demo_dir() -> Path:
    """The folder of demo runs the app opens by default (``data/demo`` in a checkout)."""
    return _data_dir("vrm_viz", "demo", os.path.join("data", "demo"))


def list_configs(prefix: str = "") -> list[str]:
    """Names of the packaged configs (``fashion_mnist/vrm``, ...) that start with ``prefix``, sorted.

    Files whose name starts with ``_`` are shared bases (included by others through ``_base_``), not listed."""
    root = configs_dir()
    names = (p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.yaml") if p.name[0] != "_")
    return sorted(n for n in names if n.startswith(prefix))


def find_config(path: str) -> str:
    """The file ``path`` names: an existing file as given, else a packaged config.

    A packaged config may be written with or without a leading ``configs/`` and the ``.yaml`` suffix, so the
    README's ``--config configs/fashion_mnist/vrm.yaml`` works from any directory and in an installed
    package. Returns ``path`` unchanged when nothing matches (the reader then says it was not found)."""
    if os.path.isfile(path):
        return path
    name = Path(path).as_posix()
    for lead in ("./", "configs/"):
        name = name.removeprefix(lead)
    candidate = configs_dir() / name
    for option in (candidate, candidate.with_name(candidate.name + ".yaml")):
        if option.is_file():
            return str(option)
    return path
