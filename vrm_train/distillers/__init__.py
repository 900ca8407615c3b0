"""One thin class per method over :mod:`vrm_train.losses` / :mod:`vrm_train.relations`, each in its own
file that registers itself (:mod:`.registry`; how to add one: ``docs/adding_a_method.md``).

distiller = build_distiller(cfg, student, teacher)
out = distiller(x, x_v, y, epoch)   # {"losses": {...}, "metrics": {...}, "logits": ..., "relation": {...}}
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

from torch import nn

from .base import DataInfo, Distiller, preserved_buffers
from .registry import MethodSpec, get_method, list_methods, load_plugins, method_sections, register_method

# Every other module of this package is a method's file: importing it registers the method, so a new method
# is one new file here and nothing else. Imported by name, which fixes the order of methods in lists and of
# the sections in saved configs.
INFRASTRUCTURE = ("base", "registry", "bn", "hooked")


def _method_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name not in INFRASTRUCTURE)


for _name in _method_modules():
    importlib.import_module(f"{__name__}.{_name}")

if TYPE_CHECKING:
    from vrm_train.config import RunConfig

__all__ = [
    "REGISTRY",
    "DataInfo",
    "Distiller",
    "MethodSpec",
    "build_distiller",
    "get_method",
    "list_methods",
    "load_plugins",
    "method_sections",
    "preserved_buffers",
    "register_method",
]


def __getattr__(name: str):
    if name == "REGISTRY":  # name -> distiller class, a fresh copy of the live registry
        return {n: get_method(n).distiller for n in list_methods()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_distiller(
    cfg: RunConfig, student: nn.Module, teacher: nn.Module | None, data: DataInfo | None = None
) -> Distiller:
    """The distiller of ``cfg.method`` with its hyper-parameters from the method's config section,
    bound to ``data`` when given (methods with data-dependent modules need it: FitNet, ReviewKD, CRD)."""
    spec = get_method(cfg.method)
    distiller = spec.distiller(student, teacher if spec.needs_teacher else None, **spec.options(cfg))
    if data is not None:
        distiller.bind(data)
    return distiller
