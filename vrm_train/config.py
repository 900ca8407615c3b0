"""Typed run configuration: the single home of every default.

A run is described by :class:`RunConfig`, a tree of dataclasses. YAML files give values for some keys
(optionally on top of other YAML files named under ``_base_``) and the command line overrides single keys
with dotted ``key=value`` pairs (reading both: :mod:`vrm_train.config_files`). Unknown keys and values of the
wrong type are errors that name the key.

    cfg = load_config("configs/cifar100/vrm/resnet32x4_resnet8x4.yaml", ["optim.lr=0.1", "vrm.uep_ratio=0.3"])
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from vrm_train.config_files import ConfigError, apply_overrides, read_yaml
from vrm_train.fileio import atomic_write_text
from vrm_train.resources import find_config


def _methods():
    """The method registry (imported on first use: the distillers import this module's ConfigError)."""
    from vrm_train.distillers import registry

    return registry


def _default_sections() -> dict[str, Any]:
    return {name: cls() for name, cls in _methods().method_sections().items()}


def __getattr__(name: str) -> Any:
    """``METHODS`` and the method sections' classes (``VRMConfig``, ...) live in the registry; these names
    are kept importable from here."""
    if name == "METHODS":
        return tuple(_methods().list_methods())
    for cls in _methods().method_sections().values():
        if cls.__name__ == name:
            return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class ModelConfig:
    name: str = "resnet8"
    # Teacher only: one of our run directories, or a checkpoint file (ours or the published {"model": ...} layout).
    checkpoint: str | None = None


@dataclass
class DataConfig:
    name: str = "fashion_mnist"  # cifar100 | cifar10 | fashion_mnist | digits | imagefolder | synthetic
    root: str | None = None  # None: the dataset's default location
    download: bool = False  # CIFAR only: fetch the official archive (MD5-verified) when missing
    subset_per_class: int | None = None  # train images kept per class (seeded), None = all
    val_per_class: int | None = None  # held-out validation images per class, taken from the training set
    val_fraction: float | None = None  # alternative to val_per_class
    split_seed: int = 0
    batch_size: int = 64  # per process
    eval_batch_size: int = 256
    num_workers: int = 4  # image folders only; in-memory datasets need none
    image_size: int | None = None  # image folders: training crop size (default 224)
    crop_padding: int | None = None  # None: the dataset's default (4 for CIFAR)
    flip: bool | None = None  # None: the dataset's default
    # Virtual view: kornia-style RandAugment drawn per image and per step, on top of the real view.
    virtual_num_ops: int = 2
    # in (0, 30): RandAugment's m (the sweep of bench/quality.py kept 9 over 5 and 15)
    virtual_magnitude: int = 9
    # true: the real view is the ordinary training augmentation (crop + flip) and the virtual view is RandAugment
    # on top of it; false: the real view is the plain image and crop + flip go into the virtual view only
    # (in-memory datasets only; bench/virtual_views.py tests it)
    real_view_augment: bool = True
    # Robustness study (bench/robustness.py): the teacher's logits are corrupted for this fraction of the
    # training images, the same images (drawn with corrupt_teacher_seed) and the same wrong class every epoch:
    # the teacher's top logit is swapped with that class's (vrm_train/corruption.py). 0 = the clean teacher.
    corrupt_teacher_fraction: float = 0.0
    corrupt_teacher_seed: int = 0
    synthetic_size: int = 2048  # synthetic dataset only: number of training images
    synthetic_classes: int = 10  # synthetic dataset only


@dataclass
class OptimConfig:
    epochs: int = 240
    lr: float = 0.05
    momentum: float = 0.9  # SGD only
    nesterov: bool = False  # SGD only
    weight_decay: float = 5e-4  # AdamW: not applied to norms, biases, position embeddings, class tokens
    schedule: Literal["multistep", "cosine"] = "multistep"
    milestones: list[int] = field(default_factory=lambda: [150, 180, 210])
    gamma: float = 0.1
    warmup_epochs: float = 0.0  # linear warm-up from 0, in epochs (fractions allowed)
    clip_grad_norm: float | None = None
    # sgd: the CNN recipe. adamw: the transformer recipe (e.g. lr 5e-4, weight_decay 0.05, cosine, warm-up).
    name: Literal["sgd", "adamw"] = "sgd"
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # AdamW only
    eps: float = 1e-8  # AdamW only


@dataclass
class LogConfig:
    """Optional mirrors of metrics.csv in users' tools (vrm_train/loggers.py); metrics.csv is always written."""

    tensorboard: bool = False  # event files in <run>/tensorboard (the tensorboard extra)
    wandb: bool = False  # a Weights & Biases run in <run>/wandb (the wandb extra)
    wandb_mode: Literal["offline", "online"] = "offline"  # offline: no network; `wandb sync` uploads later
    wandb_project: str = "vrm"
    every: int = 50  # steps between per-step scalars


@dataclass
class SnapshotConfig:
    epochs: list[int] = field(default_factory=list)  # 0 = before training; the last epoch is always added
    probe_size: int = 64  # fixed probe batch drawn (stratified, seeded) from the test set
    probe_seed: int = 0
    train_batches: int = 2  # the first N training batches of each snapshot epoch are saved too


@dataclass
class RunConfig:
    method: str = "vrm"
    name: str | None = None  # run directory name; default: <method>_<teacher>_<model>_<dataset>_s<seed>
    out_dir: str = "runs"
    model: ModelConfig = field(default_factory=ModelConfig)
    teacher: ModelConfig | None = None
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    snapshot: SnapshotConfig = field(default_factory=SnapshotConfig)
    log: LogConfig = field(default_factory=LogConfig)
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: Literal["off", "bf16", "fp16"] = "off"  # bf16 / fp16: CUDA only
    channels_last: bool = False
    compile: bool = False
    log_every: int = 50  # steps between progress-bar refreshes (and NaN checks)
    # One section per registered method (``cfg.kd``, ``cfg.vrm``, ...), typed by the method's own config
    # dataclass (vrm_train/distillers/<method>.py). Saved as top-level keys, after ``optim``.
    sections: dict[str, Any] = field(default_factory=lambda: _default_sections(), repr=False)

    def __getattr__(self, name: str) -> Any:
        sections = self.__dict__.get("sections")
        if sections is not None and name in sections:
            return sections[name]
        raise AttributeError(f"RunConfig has no key {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        sections = self.__dict__.get("sections")
        if sections is not None and name in sections:
            sections[name] = value
        else:
            super().__setattr__(name, value)

    def run_name(self) -> str:
        if self.name:
            return self.name
        parts = [self.method]
        if self.teacher is not None:
            parts.append(self.teacher.name)
        parts += [self.model.name, self.data.name, f"s{self.seed}"]
        return "_".join(parts)


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotated type ``tp`` and return it (ints widen to floats)."""
    inner, optional = _strip_optional(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"config key '{key}' may not be null (expected {_type_name(inner)})")
    if typing.get_origin(inner) is Literal:
        allowed = typing.get_args(inner)
        if value not in allowed:
            raise ConfigError(
                f"config key '{key}' must be one of {', '.join(map(str, allowed))}, got {value!r}"
            )
        return value
    if dataclasses.is_dataclass(inner):
        if isinstance(value, inner):
            return value
        if not isinstance(value, dict):
            raise ConfigError(
                f"config key '{key}' must be a mapping of {inner.__name__} fields, got {value!r}"
            )
        return _build(inner, value, key)
    if typing.get_origin(inner) is list:
        (item_tp,) = typing.get_args(inner)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"config key '{key}' must be a list of {_type_name(item_tp)}, got {value!r}")
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if inner is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-7" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"config key '{key}' must be a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"config key '{key}' must be a number, got {value!r}")
        return float(value)
    if inner is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key '{key}' must be an integer, got {value!r}")
        return value
    if inner is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key '{key}' must be true or false, got {value!r}")
        return value
    if inner is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key '{key}' must be a string, got {value!r}")
        return value
    raise ConfigError(f"config key '{key}' has an unsupported type {tp!r}")  # pragma: no cover


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _build(cls: type, values: dict, prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    sections = _methods().method_sections() if cls is RunConfig else {}
    if cls is RunConfig:
        names.discard("sections")
    kwargs, built = {}, {}
    for k, v in values.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if k in sections:
            built[k] = _coerce(v, sections[k], key)
        elif k in names:
            kwargs[k] = _coerce(v, hints[k], key)
        else:
            valid = ", ".join(sorted(names | set(sections)))
            raise ConfigError(f"unknown config key '{key}'; valid keys here: {valid}")
    if cls is RunConfig:
        kwargs["sections"] = {**_default_sections(), **built}
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict:
    """The config as plain YAML-able data (a RunConfig's method sections are top-level keys after ``optim``)."""
    if not isinstance(cfg, RunConfig):
        return dataclasses.asdict(cfg)
    out = {}
    for f in dataclasses.fields(cfg):
        if f.name == "sections":
            continue
        value = getattr(cfg, f.name)
        out[f.name] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else _plain(value)
        if f.name == "optim":
            out.update({k: dataclasses.asdict(v) for k, v in cfg.sections.items()})
    return out


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


def from_dict(values: dict) -> RunConfig:
    """Build and validate a :class:`RunConfig` from nested plain data (unknown keys are errors)."""
    cfg = _build(RunConfig, values)
    validate(cfg)
    return cfg


def _check_choices(obj: Any, prefix: str = "") -> None:
    """Literal-typed keys hold one of their values (also for configs built in code, not parsed)."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value, key = getattr(obj, f.name), f"{prefix}{f.name}"
        inner, _ = _strip_optional(hints[f.name])
        if typing.get_origin(inner) is Literal and value is not None:
            _coerce(value, inner, key)
        elif dataclasses.is_dataclass(value):
            _check_choices(value, key + ".")


def validate(cfg: RunConfig) -> None:
    """Cross-field checks; raises :class:`ConfigError` naming the key."""
    methods = _methods()
    if cfg.method not in methods.list_methods():
        allowed = ", ".join(methods.list_methods())
        raise ConfigError(f"config key 'method' must be one of {allowed}, got {cfg.method!r}")
    from vrm_train.data import list_datasets

    if cfg.data.name not in list_datasets():
        raise ConfigError(
            f"config key 'data.name' must be one of {', '.join(list_datasets())}, got {cfg.data.name!r}"
        )
    _check_choices(cfg)
    for name, section in cfg.sections.items():
        _check_choices(section, name + ".")
        for problem in section.check() if hasattr(section, "check") else []:
            raise ConfigError(problem)
    spec = methods.get_method(cfg.method)
    if spec.needs_teacher and (cfg.teacher is None or not cfg.teacher.checkpoint):
        raise ConfigError(f"method '{cfg.method}' needs a teacher: set teacher.name and teacher.checkpoint")
    positive = {
        "optim.epochs": cfg.optim.epochs,
        "optim.lr": cfg.optim.lr,
        "data.batch_size": cfg.data.batch_size,
        "data.eval_batch_size": cfg.data.eval_batch_size,
        "log_every": cfg.log_every,
        "log.every": cfg.log.every,
    }
    for key, v in positive.items():
        if not v > 0:
            raise ConfigError(f"config key '{key}' must be > 0, got {v}")
    if not 0 < cfg.data.virtual_magnitude < 30:
        raise ConfigError(
            f"config key 'data.virtual_magnitude' must be in (0, 30), got {cfg.data.virtual_magnitude}"
        )
    if not 0.0 <= cfg.data.corrupt_teacher_fraction <= 1.0:
        raise ConfigError(
            "config key 'data.corrupt_teacher_fraction' must be in [0, 1], got "
            f"{cfg.data.corrupt_teacher_fraction}"
        )
    if cfg.data.corrupt_teacher_fraction > 0 and not spec.needs_teacher:
        raise ConfigError(
            f"config key 'data.corrupt_teacher_fraction' needs a teacher; method '{cfg.method}' has none"
        )
    if not cfg.data.real_view_augment and cfg.data.name == "imagefolder":
        raise ConfigError(
            "config key 'data.real_view_augment=false' needs an in-memory dataset: image folders are cropped "
            "in the loader workers"
        )
    if cfg.data.virtual_num_ops < 0:
        raise ConfigError(f"config key 'data.virtual_num_ops' must be >= 0, got {cfg.data.virtual_num_ops}")
    if cfg.data.batch_size < spec.min_batch:
        raise ConfigError(
            f"config key 'data.batch_size' must be >= {spec.min_batch} for method '{cfg.method}' "
            "(its loss relates samples of a batch)"
        )
    if cfg.amp != "off" and not cfg.device.startswith(("cuda", "auto")):
        raise ConfigError(f"config key 'amp' = {cfg.amp!r} needs a CUDA device; set amp=off on {cfg.device}")
    if len(cfg.optim.betas) != 2 or not all(0.0 <= b < 1.0 for b in cfg.optim.betas):
        raise ConfigError(f"config key 'optim.betas' must be two numbers in [0, 1), got {cfg.optim.betas}")
    if sorted(cfg.optim.milestones) != cfg.optim.milestones:
        raise ConfigError(f"config key 'optim.milestones' must be increasing, got {cfg.optim.milestones}")
    if any(e < 0 for e in cfg.snapshot.epochs):
        raise ConfigError(f"config key 'snapshot.epochs' must be >= 0, got {cfg.snapshot.epochs}")


def load_config(path: str | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML file (or start from the defaults) and apply ``key=value`` overrides."""
    values = read_yaml(find_config(path)) if path else {}
    return from_dict(apply_overrides(values, overrides or []))


def save_config(cfg: RunConfig, path: str) -> None:
    """Write the resolved config as YAML (atomically)."""
    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))
