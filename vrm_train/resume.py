"""What may change when a run is resumed, and the record of what did.

A resumed run continues from its saved state, so every setting that shaped that state (model, data, method,
loss weights, seed, optimizer type, ...) must stay as saved. Three groups of keys may differ:

* :data:`LOCATION_KEYS`: where the run and its inputs live and how the process executes (the run folder
  may have moved; the dataset may sit elsewhere on another machine) — always allowed;
* ``optim.epochs`` — always allowed (extend a finished run);
* :data:`SCHEDULE_KEYS`: the training schedule from the next epoch on (learning rate, its schedule, gradient
  clipping, logging and snapshot options) — allowed with ``--change-schedule``.

Every difference except the run's own location (``out_dir``, ``name``) is appended to ``changes.json`` in
the run directory with the epoch it applies from.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
from typing import Any

from vrm_train.config import ConfigError, RunConfig, to_dict
from vrm_train.fileio import atomic_write_text

FLAG = "--change-schedule"
LOCATION_KEYS = (
    "out_dir",
    "name",
    "teacher.checkpoint",
    "data.root",
    "data.download",
    "data.num_workers",
    "data.eval_batch_size",
    "device",
    "compile",
)
SCHEDULE_KEYS = (
    "optim.epochs",
    "optim.lr",
    "optim.schedule",
    "optim.milestones",
    "optim.gamma",
    "optim.warmup_epochs",
    "optim.clip_grad_norm",
    "log_every",
    "snapshot.epochs",
    "snapshot.train_batches",
)
_FREE = {*LOCATION_KEYS, "optim.epochs"}


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and v:
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out


def config_changes(saved: RunConfig, new: RunConfig) -> dict[str, tuple[Any, Any]]:
    """``{dotted key: (saved value, new value)}`` for every key whose value differs."""
    a, b = _flatten(to_dict(saved)), _flatten(to_dict(new))
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def _listing(changes: dict[str, tuple[Any, Any]], keys) -> str:
    return "; ".join(f"{k}: {changes[k][0]!r} -> {changes[k][1]!r}" for k in keys)


def check_changes(changes: dict[str, tuple[Any, Any]], *, allowed: bool, config_path: str) -> None:
    """Raise :class:`ConfigError` listing the keys that may not change (or that need :data:`FLAG`)."""
    frozen = [k for k in changes if k not in _FREE and k not in SCHEDULE_KEYS]
    if frozen:
        raise ConfigError(
            f"cannot resume with a config that differs from the saved one ({config_path}) in settings that "
            f"shaped the saved training state: {_listing(changes, frozen)}. Resume with the saved values "
            "(`vrm-train resume <run dir>` uses them), or start a new run under another name=.... Only "
            f"the training schedule may change on resume ({', '.join(SCHEDULE_KEYS)}; with {FLAG})."
        )
    flagged = [k for k in changes if k in SCHEDULE_KEYS and k not in _FREE]
    if flagged and not allowed:
        raise ConfigError(
            f"the resumed run would change its training schedule: {_listing(changes, flagged)}. Pass "
            f"{FLAG} to continue with the new values from the next epoch on (recorded in the run's "
            "changes.json), or leave these keys out to keep the saved ones."
        )


def record_changes(path: str, changes: dict[str, tuple[Any, Any]], from_epoch: int) -> None:
    """Append the changes (without the run's own out_dir/name) to ``changes.json`` and say them on stderr."""
    changes = {k: v for k, v in changes.items() if k not in ("out_dir", "name")}
    if not changes:
        return
    history = []
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            try:
                history = json.load(f)
            except json.JSONDecodeError as e:
                raise ConfigError(f"{path} is not valid JSON ({e}); restore or remove it, then resume") from e
    history.append(
        {
            "from_epoch": from_epoch,
            "time": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "changes": {k: {"old": old, "new": new} for k, (old, new) in changes.items()},
        }
    )
    atomic_write_text(path, json.dumps(history, indent=2))
    print(f"resume: from epoch {from_epoch}: {_listing(changes, changes)}", file=sys.stderr)


def relocate_teacher(cfg: RunConfig, run_path: str) -> None:
    """Point a relative ``teacher.checkpoint`` at the file it named when the run was started, even when the
    command runs from another folder or the project folder moved.

    A relative teacher path was relative to the folder the run was started from (``out_dir`` relative to
    it), or, for the demo runs, to the folder holding the run. Absolute or already-resolving paths are kept.
    """
    if cfg.teacher is None or not cfg.teacher.checkpoint:
        return
    path = cfg.teacher.checkpoint
    if os.path.isabs(path) or os.path.exists(path):
        return
    parent = os.path.dirname(os.path.abspath(run_path))
    bases = [parent]
    if not os.path.isabs(cfg.out_dir):
        depth = len([p for p in os.path.normpath(cfg.out_dir).split(os.sep) if p not in ("", ".")])
        start = parent
        for _ in range(depth):
            start = os.path.dirname(start)
        bases.insert(0, start)
    for base in bases:
        candidate = os.path.join(base, path)
        if os.path.exists(candidate):
            cfg.teacher.checkpoint = candidate
            return


def drop_relocations(changes: dict[str, tuple[Any, Any]], saved: RunConfig, run_path: str) -> None:
    """Remove ``teacher.checkpoint`` from ``changes`` when the new value names the file the saved one did."""
    if "teacher.checkpoint" not in changes or saved.teacher is None or not saved.teacher.checkpoint:
        return
    old = RunConfig(teacher=type(saved.teacher)(**to_dict(saved.teacher)), out_dir=saved.out_dir)
    relocate_teacher(old, run_path)
    new = changes["teacher.checkpoint"][1]
    try:
        same = bool(new) and os.path.samefile(old.teacher.checkpoint, new)
    except OSError:
        same = False
    if same:
        del changes["teacher.checkpoint"]
