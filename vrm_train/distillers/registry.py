"""The method registry: one entry per distillation method, written by the method's own file.

A method is a pure loss function (:mod:`vrm_train.losses`, :mod:`vrm_train.relations`) plus one distiller
file that registers itself with its typed config section::

    @dataclass
    class MyConfig:
        ce_weight: float = 1.0
        weight: float = 2.0

    @register_method("my", config=MyConfig, summary="my loss on logits")
    class My(Distiller):
        def __init__(self, student, teacher, *, ce_weight, weight): ...

Everything else derives from here: the config's ``method`` choices and its sections (``cfg.my`` is a
``MyConfig``), the engine's teacher loading and batch-size check (``needs_teacher``, ``min_batch``), the
config generator, the CLI help, and the method lists of ``vrm_viz`` and the app. Methods outside this
package register by being imported: a module named with ``vrm-train --plugin MODULE``, or an installed
package's entry point in the group ``vrm_train.methods``.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from importlib import metadata

__all__ = [
    "MethodSpec",
    "get_method",
    "list_methods",
    "load_plugins",
    "method_sections",
    "register_method",
    "unregister_method",
]

ENTRY_POINT_GROUP = "vrm_train.methods"


@dataclass(frozen=True)
class MethodSpec:
    """What the rest of the code may know about a method (never its name as a special case).

    ``config``: the dataclass of its config section (``None``: no options); its fields are passed to the
    distiller as keyword arguments. ``needs_teacher``: the engine loads ``cfg.teacher``. ``min_batch``:
    the smallest per-process batch the loss is defined on (relations need two samples).
    """

    name: str
    distiller: type
    config: type | None
    needs_teacher: bool
    min_batch: int
    summary: str
    module: str

    def section(self, cfg) -> object | None:
        """This method's section of a :class:`~vrm_train.config.RunConfig` (None if it has no options)."""
        return getattr(cfg, self.name) if self.config is not None else None

    def options(self, cfg) -> dict:
        section = self.section(cfg)
        return dataclasses.asdict(section) if section is not None else {}


_METHODS: dict[str, MethodSpec] = {}
_NAME_RULE = "lower-case letters, digits and '_', starting with a letter"


def register_method(name: str, *, config: type | None = None, min_batch: int = 1, summary: str | None = None):
    """Class decorator: register a :class:`~vrm_train.distillers.base.Distiller` subclass as ``name``.

    ``needs_teacher`` is read from the class attribute of the same name. Registering a name twice raises
    ``ValueError`` unless it is the same class (a module imported again).
    """
    if not (name[:1].isalpha() and name.replace("_", "").isalnum() and name == name.lower()):
        raise ValueError(f"method name {name!r} must be {_NAME_RULE}")
    if config is not None and not dataclasses.is_dataclass(config):
        raise TypeError(f"method {name!r}: config must be a dataclass, got {config!r}")
    if not isinstance(min_batch, int) or min_batch < 1:
        raise ValueError(f"method {name!r}: min_batch must be an int >= 1, got {min_batch!r}")

    def deco(cls: type) -> type:
        old = _METHODS.get(name)
        if old is not None and (old.distiller.__module__, old.distiller.__qualname__) != (
            cls.__module__,
            cls.__qualname__,
        ):
            raise ValueError(
                f"method {name!r} is already registered by {old.distiller.__module__}.{old.distiller.__qualname__}"
            )
        doc = (cls.__doc__ or "").strip().splitlines()
        _METHODS[name] = MethodSpec(
            name=name,
            distiller=cls,
            config=config,
            needs_teacher=bool(getattr(cls, "needs_teacher", True)),
            min_batch=min_batch,
            summary=summary or (doc[0] if doc else name),
            module=cls.__module__,
        )
        cls.method_name = name
        return cls

    return deco


def unregister_method(name: str) -> None:
    """Remove ``name`` from the registry (tests that register a temporary method clean up with this)."""
    _METHODS.pop(name, None)


_plugins_loaded = False


def load_plugins(modules: list[str] | tuple[str, ...] = ()) -> None:
    """Import the modules named (each registers its methods) and, once, the ``vrm_train.methods`` entry points."""
    global _plugins_loaded
    if not _plugins_loaded:
        _plugins_loaded = True
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            ep.load()
    for mod in modules:
        try:
            importlib.import_module(mod)
        except ImportError as e:
            raise ImportError(f"cannot import method plugin {mod!r}: {e}") from e


def _builtins() -> dict[str, MethodSpec]:
    import vrm_train.distillers  # noqa: F401  (importing the package registers the built-in methods)

    return _METHODS


def list_methods() -> list[str]:
    """Registered method names, in registration order (built-ins first)."""
    return list(_builtins())


def get_method(name: str) -> MethodSpec:
    """The spec of ``name``; ``KeyError`` naming the registered methods otherwise."""
    methods = _builtins()
    if name not in methods:
        raise KeyError(
            f"unknown method {name!r}; registered methods: {', '.join(methods)} "
            "(a method of your own registers when its module is imported: vrm-train --plugin MODULE)"
        )
    return methods[name]


def method_sections() -> dict[str, type]:
    """Config section name -> its dataclass, for every registered method that has options."""
    return {n: s.config for n, s in _builtins().items() if s.config is not None}
