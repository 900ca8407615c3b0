"""Checkpoint I/O: atomic writes, safe loading, and weights that fit the architecture they claim.

Every file is read with ``torch.load(..., weights_only=True)``: plain tensors and containers only. The one
exception is an explicit allow-list, :data:`ALLOWED_GLOBALS`, for published teacher checkpoints that
carry their training arguments as an ``argparse.Namespace`` (RepDistiller's ``*_last.pth`` files). A file
that needs anything else is refused with an explanation; nothing in a checkpoint is ever executed.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
from typing import Any

import torch
from torch import nn

from vrm_train.fileio import atomic_write

FORMAT = "vrm-checkpoint-v1"

# Globals a checkpoint may reference beyond what weights_only allows by default. Namespace holds only
# the argument values of the training script that wrote the file; it has no behaviour to run.
ALLOWED_GLOBALS: tuple[type, ...] = (argparse.Namespace,)

# Wrapper prefixes added by DistributedDataParallel / DataParallel and by torch.compile.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message says why and what to do."""


def atomic_save(obj: Any, path: str) -> None:
    """``torch.save`` to a uniquely named temporary file in the same folder, flush it to disk, then rename
    over ``path``. A crash at any point leaves either the old file or the new one, never a truncated file.
    """
    atomic_write(path, lambda f: torch.save(obj, f), binary=True)


def load_file(path: str, map_location: str | torch.device = "cpu") -> Any:
    """Load a ``.pt``/``.pth`` file safely (weights only, plus :data:`ALLOWED_GLOBALS`)."""
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    if os.path.isdir(path):
        raise CheckpointError(
            f"{path} is a directory; give a checkpoint file (or use a run directory loader)"
        )
    try:
        with torch.serialization.safe_globals(list(ALLOWED_GLOBALS)):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        names = re.findall(r"GLOBAL ([\w.]+)", str(e)) or re.findall(r"global ([\w.]+)", str(e))
        if names or "global" in str(e).lower():
            what = f" (it references {', '.join(sorted(set(names)))})" if names else ""
            raise CheckpointError(
                f"refusing to load {path}: the file needs arbitrary unpickling{what}, which could run code. "
                "Only tensors, plain containers and argparse.Namespace are accepted. Re-save it as "
                "torch.save({'model': model.state_dict()}, path) in a trusted environment."
            ) from e
        raise _unreadable(path, e) from e
    except Exception as e:  # torch.load raises KeyError/IndexError/RuntimeError/... on foreign bytes
        raise _unreadable(path, e) from e


def _unreadable(path: str, e: Exception) -> CheckpointError:
    return CheckpointError(
        f"cannot read {path} ({type(e).__name__}: {e}): the file is truncated or not a PyTorch checkpoint; "
        "re-download or re-export it."
    )


def extract_state_dict(obj: Any, path: str = "<checkpoint>") -> dict[str, torch.Tensor]:
    """The model state dict inside a loaded checkpoint.

    Accepts our checkpoints and exports (``{"model": ...}``), the published teacher layout
    (``{"model": state_dict, "epoch": ..., ...}``), ``{"state_dict": ...}`` and a bare state dict.
    Wrapper prefixes (``module.``, ``_orig_mod.``) are removed.
    """
    sd = obj
    if isinstance(obj, dict):
        for key in ("model", "state_dict", "student"):
            if isinstance(obj.get(key), dict):
                sd = obj[key]
                break
    if not isinstance(sd, dict) or not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        keys = list(obj)[:8] if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(
            f"{path} holds no model state dict (top-level keys: {keys}); expected a dict of tensors or "
            "a dict with a 'model' or 'state_dict' entry"
        )
    out = {}
    for k, v in sd.items():
        for p in _WRAPPER_PREFIXES:
            while k.startswith(p):
                k = k[len(p) :]
        out[k] = v
    return out


def check_fits(model: nn.Module, state: dict[str, torch.Tensor], *, arch: str, path: str) -> None:
    """Raise :class:`CheckpointError` naming what does not fit when ``state`` is not ``model``'s."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs {arch} {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    if not (missing or unexpected or shapes):
        return
    lines = [f"checkpoint {path} does not fit architecture '{arch}':"]
    head_w = next((k for k in shapes if k.split(":")[0].endswith(("fc.weight", "classifier.weight"))), None)
    if head_w and len(shapes) <= 2 and not missing and not unexpected:
        lines.append(
            f"  class count differs ({head_w}); set the dataset/num_classes the checkpoint was trained on"
        )
    if missing:
        lines.append(f"  {len(missing)} missing keys, e.g. {', '.join(missing[:4])}")
    if unexpected:
        lines.append(f"  {len(unexpected)} unexpected keys, e.g. {', '.join(unexpected[:4])}")
    if shapes:
        lines.append(f"  {len(shapes)} shape mismatches, e.g. {'; '.join(shapes[:3])}")
    guess = guess_architecture(state)
    if guess and guess != arch:
        lines.append(f"  the keys and shapes match '{guess}': did you mean that architecture?")
    raise CheckpointError("\n".join(lines))


def guess_architecture(state: dict[str, torch.Tensor]) -> str | None:
    """Name of the registered architecture whose state-dict keys and shapes match ``state`` exactly.

    The class count and input channels are read off the state itself (last 2-D weight, first conv).
    Models are built on the meta device, so the search allocates nothing.
    """
    from vrm_train.models import create_model, list_models

    mats = [v for v in state.values() if v.dim() == 2]
    convs = [v for v in state.values() if v.dim() == 4]
    if not mats or not convs:
        return None
    num_classes, in_chans = mats[-1].shape[0], convs[0].shape[1]
    for name in list_models():
        try:
            with torch.device("meta"):
                own = create_model(name, num_classes=num_classes, in_chans=in_chans).state_dict()
        except (ValueError, RuntimeError, TypeError):
            continue
        if own.keys() == state.keys() and all(own[k].shape == state[k].shape for k in own):
            return name
    return None


def load_weights(model: nn.Module, path: str, *, arch: str) -> dict[str, Any]:
    """Load the model weights stored in ``path`` into ``model`` (strict), after checking they fit.

    Returns the whole loaded object (for its metadata: epoch, accuracy, config).
    """
    obj = load_file(path)
    state = extract_state_dict(obj, path)
    check_fits(model, state, arch=arch, path=path)
    model.load_state_dict(state, strict=True)
    return obj if isinstance(obj, dict) else {"model": state}
