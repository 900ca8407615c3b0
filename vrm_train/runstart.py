"""Taking a run directory at the start of training: lock it, clean it, decide start, retry or resume.

:func:`claim` runs on rank 0 only, before anything is built, and writes nothing but the lock file: every
refusal leaves the folder as it was. The outcomes:

* no run there (no ``config.yaml``) → a new run;
* a run whose earlier start finished no epoch (no checkpoint) → started afresh, saying so;
* a run with a finished epoch → refused without ``resume``; with it, continued after checking that its
  metrics.csv is ours and that the config differs only where :mod:`vrm_train.resume` allows.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

from vrm_train.checkpoint import CheckpointError, load_file
from vrm_train.config import ConfigError, RunConfig, load_config
from vrm_train.fileio import output_errors
from vrm_train.resume import check_changes, config_changes, drop_relocations
from vrm_train.rundir import RunDir, RunDirError
from vrm_train.runlock import RunLock


@dataclass
class Claim:
    lock: RunLock | None
    resume: bool = False  # a finished epoch exists and is continued
    saved: RunConfig | None = None  # the config saved in the run (resume only)
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()


def _note(text: str) -> None:
    print(f"vrm-train: {text}", file=sys.stderr)


def check_models(cfg: RunConfig) -> None:
    """Model names that exist, and no student checkpoint (it would be ignored: students start fresh)."""
    from vrm_train.models import list_models

    names = list_models()
    for key, m in (("model", cfg.model), ("teacher", cfg.teacher)):
        if m is not None and m.name not in names:
            raise ConfigError(
                f"config key '{key}.name': unknown model {m.name!r} (names are case-sensitive); available: "
                f"{', '.join(names)}"
            )
    if cfg.model.checkpoint:
        raise ConfigError(
            f"config key 'model.checkpoint' ({cfg.model.checkpoint}) is not used: the trained network (model) "
            "always starts from a fresh initialisation. To continue a run, use `vrm-train resume <run dir>`; "
            "a teacher's weights go in teacher.checkpoint (or --teacher)."
        )


def claim(run: RunDir, cfg: RunConfig, *, resume: bool, change_schedule: bool) -> Claim:
    """Lock ``run`` for this process and decide how to start it (see the module docstring)."""
    check_models(cfg)
    with output_errors(os.path.dirname(run.path)):
        lock = RunLock(run.path).acquire()
    try:
        if lock.took_over:
            _note(f"took over the lock of {lock.took_over}, which is no longer running")
        with output_errors(run.path):
            removed = run.remove_temp_files()
        if removed:
            _note(
                f"removed {len(removed)} temporary file(s) left by an interrupted write: {', '.join(removed)}"
            )
        if not run.exists():
            return Claim(lock)
        if not run.has_finished_epoch():
            _note(
                f"{run.path} holds an earlier start that finished no epoch (no checkpoint): starting it afresh"
            )
            with output_errors(run.path):
                run.reset_unfinished()
            return Claim(lock)
        if not resume:
            raise FileExistsError(
                f"run directory {run.path} already exists and has finished epochs; continue it with "
                "`vrm-train resume <run dir>` (or --resume with the same config), or choose another name "
                "(name=...) or out_dir"
            )
        if not run.has_checkpoint():
            raise RunDirError(
                f"{run.path} has no checkpoints/last.pt (demo runs keep only student.pt), so it cannot be "
                "resumed; train a new run under another name=..."
            )
        run.read_metrics()  # refuses a metrics.csv that is not ours before anything is built
        saved = load_config(run.config)
        changes = config_changes(saved, cfg)
        drop_relocations(changes, saved, run.path)
        check_changes(changes, allowed=change_schedule, config_path=run.config)
        return Claim(lock, resume=True, saved=saved, changes=changes)
    except BaseException:
        lock.release()
        raise


def epoch_of(path: str) -> int | None:
    """The epoch recorded in one of our checkpoint files (None when unreadable)."""
    try:
        obj = load_file(path)
    except CheckpointError:
        return None
    return obj.get("epoch") if isinstance(obj, dict) else None


def committed_rows(run: RunDir, epoch: int) -> list[dict]:
    """The metrics rows of the epochs up to the checkpointed ``epoch``; refuses a history with holes (it
    would be rewritten without them). Rows after ``epoch`` belong to an epoch the kill interrupted."""
    rows = [r for r in run.read_metrics() if int(r["epoch"]) <= epoch]
    if not os.path.isfile(run.metrics):
        print(
            f"vrm-train: {run.metrics} is missing: the history restarts at epoch {epoch + 1}", file=sys.stderr
        )
        return rows
    have = [int(r["epoch"]) for r in rows]
    if epoch and (not have or have != list(range(have[0], epoch + 1))):
        raise RunDirError(
            f"{run.metrics} does not hold the history of the {epoch} epochs saved in last.pt (its epochs: "
            f"{have[:5]}{'...' if len(have) > 5 else ''}); resuming would rewrite it without them, so nothing "
            "was changed. Restore the file; to continue without the old history, rename it aside and resume."
        )
    return rows
