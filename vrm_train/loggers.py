"""Optional logging to the tools users already read: TensorBoard event files and Weights & Biases.

metrics.csv stays the source of truth (the app reads it); these mirror it, switched by the ``log``
section of the config::

    log:
      tensorboard: true      # event files in <run>/tensorboard/  ->  tensorboard --logdir runs/
      wandb: true            # a W&B run in <run>/wandb/, offline by default (wandb sync <dir> later)
      every: 50              # steps between per-step scalars

Per step (every ``every`` steps): ``step/loss``, ``step/<term>`` for each loss term and ``step/lr``,
at the global step. Per epoch: every column of metrics.csv as ``epoch/<column>`` at the epoch number.
Both packages are optional extras (``pip install 'vrm[tensorboard]'``, ``'vrm[wandb]'``); asking for one
that is not installed is a :class:`~vrm_train.config.ConfigError` before training starts.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import torch

from vrm_train.config import ConfigError, RunConfig, to_dict

__all__ = ["RunLoggers"]


class RunLoggers:
    """The external loggers of one run (none when ``enabled`` is False: other ranks, or nothing asked)."""

    def __init__(self, cfg: RunConfig, run_dir: str, *, enabled: bool = True):
        self.every = cfg.log.every
        self._tb = self._wandb = None
        if not enabled:
            return
        if cfg.log.tensorboard:
            self._tb = _tensorboard_writer(os.path.join(run_dir, "tensorboard"))
        if cfg.log.wandb:
            self._wandb = _wandb_run(cfg, run_dir)

    @property
    def active(self) -> bool:
        return self._tb is not None or self._wandb is not None

    def wants_step(self, step: int) -> bool:
        return self.active and step % self.every == 0

    def log_step(self, step: int, losses: dict[str, torch.Tensor], loss: torch.Tensor, lr: float) -> None:
        """Scalars of one training step (``step`` counts from 1 over the whole run)."""
        values = {"step/loss": float(loss.detach()), "step/lr": float(lr)}
        values.update({f"step/{k}": float(v.detach()) for k, v in losses.items()})
        self._write(values, step)

    def log_epoch(self, epoch: int, row: dict[str, Any]) -> None:
        """Every numeric column of the epoch's metrics.csv row."""
        values = {f"epoch/{k}": float(v) for k, v in row.items() if k != "epoch" and _number(v)}
        self._write(values, epoch, epoch_axis=True)

    def _write(self, values: dict[str, float], step: int, epoch_axis: bool = False) -> None:
        if self._tb is not None:
            for k, v in values.items():
                self._tb.add_scalar(k, v, step)
            self._tb.flush()
        if self._wandb is not None:
            axis = "epoch" if epoch_axis else "global_step"
            self._wandb.log({**values, axis: step})

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None


def _number(v) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def _tensorboard_writer(log_dir: str):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:  # torch raises this when the tensorboard package is missing
        raise ConfigError(
            "config key 'log.tensorboard' = true needs the tensorboard package: pip install 'vrm[tensorboard]' "
            f"(or set log.tensorboard=false); import failed: {e}"
        ) from None
    return SummaryWriter(log_dir=log_dir)


def _wandb_run(cfg: RunConfig, run_dir: str):
    try:
        import wandb
    except ImportError:
        raise ConfigError(
            "config key 'log.wandb' = true needs the wandb package: pip install 'vrm[wandb]' (or set log.wandb=false)"
        ) from None
    run_id = hashlib.sha1(os.path.abspath(run_dir).encode()).hexdigest()[:12]  # the same W&B run on resume
    run = wandb.init(
        project=cfg.log.wandb_project,
        name=cfg.run_name(),
        id=run_id,
        resume="allow",
        dir=run_dir,
        mode=cfg.log.wandb_mode,
        config=to_dict(cfg),
        reinit="finish_previous",
    )
    run.define_metric("step/*", step_metric="global_step")
    run.define_metric("epoch/*", step_metric="epoch")
    return run
