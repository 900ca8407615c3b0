"""Build the pieces of a run from its config: data, transforms, student, teacher."""

from __future__ import annotations

import os
from dataclasses import dataclass

import yaml
from torch import nn

from vrm_train.checkpoint import CheckpointError, load_weights
from vrm_train.config import DataConfig, ModelConfig
from vrm_train.data import DataBundle, Normalize, RealView, VirtualView, build_data
from vrm_train.models import create_model
from vrm_train.rundir import RunDir


def data_from_config(cfg: DataConfig) -> DataBundle:
    return build_data(
        cfg.name,
        root=cfg.root,
        download=cfg.download,
        subset_per_class=cfg.subset_per_class,
        val_per_class=cfg.val_per_class,
        val_fraction=cfg.val_fraction,
        split_seed=cfg.split_seed,
        image_size=cfg.image_size,
        synthetic_size=cfg.synthetic_size,
        synthetic_classes=cfg.synthetic_classes,
    )


@dataclass
class Views:
    """The on-device transforms of a run: real view, virtual view, normalisation."""

    real: nn.Module
    virtual: nn.Module
    normalize: nn.Module


def views_from_config(cfg: DataConfig, bundle: DataBundle, device) -> Views:
    padding = bundle.crop_padding if cfg.crop_padding is None else cfg.crop_padding
    flip = bundle.flip if cfg.flip is None else cfg.flip
    if not bundle.in_memory:
        padding = 0  # image folders are cropped in the loader workers
    return Views(
        real=RealView(padding=padding, flip=flip).to(device),
        virtual=VirtualView(num_ops=cfg.virtual_num_ops, magnitude=cfg.virtual_magnitude).to(device),
        normalize=Normalize(bundle.mean, bundle.std).to(device),
    )


def resolve_checkpoint(path: str) -> tuple[str, str | None]:
    """(checkpoint file, architecture recorded beside it or None) for a file or one of our run directories."""
    if os.path.isdir(path):
        run = RunDir(path)
        if not run.exists():
            raise CheckpointError(f"{path} is a directory but not a run directory (no config.yaml)")
        with open(run.config, encoding="utf-8") as f:
            arch = (yaml.safe_load(f) or {}).get("model", {}).get("name")
        for which in ("student", "last"):
            if os.path.isfile(run.checkpoint(which)):
                return run.checkpoint(which), arch
        raise CheckpointError(
            f"run directory {path} has no checkpoint yet (checkpoints/student.pt or last.pt)"
        )
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    return path, None


def load_model(mcfg: ModelConfig, *, num_classes: int, in_chans: int) -> nn.Module:
    """Create ``mcfg.name`` and load ``mcfg.checkpoint`` into it (strict, with a clear mismatch error)."""
    if not mcfg.checkpoint:
        raise CheckpointError(f"model '{mcfg.name}' has no checkpoint to load")
    file, recorded = resolve_checkpoint(mcfg.checkpoint)
    if recorded is not None and recorded != mcfg.name:
        raise CheckpointError(
            f"{mcfg.checkpoint} holds a '{recorded}' (per its config.yaml) but '{mcfg.name}' was requested; "
            f"set the name to '{recorded}'"
        )
    model = create_model(mcfg.name, num_classes=num_classes, in_chans=in_chans)
    load_weights(model, file, arch=mcfg.name)
    return model
