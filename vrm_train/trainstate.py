"""The trainer's run directory and checkpoint state, a mixin of :class:`vrm_train.engine.Trainer`.

Claiming the run directory (every rank gets rank 0's verdict), opening it (config.yaml, changes.json on
resume), completing what a kill after ``last.pt`` left undone, and the checkpoint state: what ``last.pt`` /
``best.pt`` hold, how ``resume`` restores it, and the exported student. The methods read the trainer's
attributes (cfg, rt, run, claim, data, student, distiller, optimizer, scaler, epoch, best, rows,
snapshot_epochs) and call its ``_probe_snapshot``.
"""

from __future__ import annotations

import dataclasses
import os

import torch

from vrm_train.checkpoint import FORMAT, CheckpointError, atomic_save, load_file
from vrm_train.config import ConfigError, save_config, to_dict
from vrm_train.fileio import atomic_write, output_errors
from vrm_train.resume import record_changes
from vrm_train.runstart import Claim, claim, committed_rows, epoch_of


class RunStateMixin:
    """Run directory and checkpoint state of the Trainer (see the module doc)."""

    def _claim_run_dir(self, resume: bool, change_schedule: bool) -> Claim:
        """Rank 0 locks and checks the run directory (:mod:`vrm_train.runstart`); every rank gets its verdict."""
        verdict: Claim | BaseException = Claim(None)
        if self.rt.is_main:
            try:
                verdict = claim(self.run, self.cfg, resume=resume, change_schedule=change_schedule)
            except Exception as e:  # re-raised below, on every rank
                verdict = e
        if self.rt.distributed:
            box = [verdict if self.rt.is_main else None]
            torch.distributed.broadcast_object_list(box, src=0)
            verdict = box[0] if not self.rt.is_main else verdict
            if not self.rt.is_main and isinstance(verdict, Claim):
                verdict = dataclasses.replace(verdict, lock=None)
        if isinstance(verdict, BaseException):
            raise verdict
        return verdict

    def _committed(self) -> str:
        last = self.run.checkpoint("last")
        if os.path.exists(last):
            return f"Nothing is lost: the last checkpoint {last} (epoch {self.saved_epoch}) is intact."
        return "No epoch had been saved yet."

    def _open_run_dir(self) -> None:
        """Rank 0: write config.yaml (and changes.json on resume), then complete what a kill after the last
        checkpoint left undone."""
        self.saved_epoch = self.epoch
        with output_errors(self.run.path, self._committed):
            os.makedirs(self.run.file("checkpoints"), exist_ok=True)
            os.makedirs(self.run.file("snapshots"), exist_ok=True)
            if not self.claim.resume:
                save_config(self.cfg, self.run.config)
                return
            changes = {k: v for k, v in self.claim.changes.items() if k not in ("out_dir", "name")}
            if changes:
                record_changes(self.run.changes, changes, self.epoch + 1)
                kept = dataclasses.replace(
                    self.cfg, out_dir=self.claim.saved.out_dir, name=self.claim.saved.name
                )
                save_config(kept, self.run.config)
            self._complete_outputs()

    def _complete_outputs(self) -> None:
        """Outputs of the checkpointed epoch that a kill after ``last.pt`` may have left missing or stale."""
        epoch, last = self.epoch, self.run.checkpoint("last")
        best = self.run.checkpoint("best")
        if self.best["epoch"] == epoch and (not os.path.exists(best) or epoch_of(best) != epoch):
            with open(last, "rb") as src:
                atomic_write(best, lambda f: f.write(src.read()), binary=True)
        if epoch in self.snapshot_epochs and not os.path.exists(self.run.probe_snapshot(epoch)):
            self._probe_snapshot(epoch)
        student = self.run.checkpoint("student")
        if epoch == self.cfg.optim.epochs and (not os.path.exists(student) or epoch_of(student) != epoch):
            self._export_student(epoch, float(self.rows[-1]["test_top1"]) if self.rows else float("nan"))

    def _state(self, epoch: int) -> dict:
        return {
            "format": FORMAT,
            "epoch": epoch,
            "model": self.student.state_dict(),
            "extra": self.distiller.extra_modules().state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "best": dict(self.best),
            "arch": self.cfg.model.name,
            "config": to_dict(self.cfg),
        }

    def _load_state(self) -> None:
        path = self.run.checkpoint("last")
        st = load_file(path, map_location=self.rt.device)
        if not isinstance(st, dict) or st.get("format") != FORMAT:
            raise CheckpointError(
                f"{path} is not a checkpoint written by this trainer; cannot resume from it"
            )
        if st.get("optimizer") is None:
            raise CheckpointError(
                f"{path} holds no optimizer state (a slimmed demo checkpoint); it cannot be resumed"
            )
        self.student.load_state_dict(st["model"])
        self.distiller.extra_modules().load_state_dict(st["extra"])
        self.optimizer.load_state_dict(st["optimizer"])
        if self.scaler and st["scaler"]:
            self.scaler.load_state_dict(st["scaler"])
        self.epoch, self.best = st["epoch"], st["best"]
        if self.cfg.optim.epochs < self.epoch:
            raise ConfigError(
                f"optim.epochs={self.cfg.optim.epochs} but {self.run.path} has already finished {self.epoch} "
                f"epochs; resume with optim.epochs={self.epoch} or more"
            )
        self.rows = committed_rows(self.run, self.epoch)

    def _export_student(self, epoch: int, top1: float) -> None:
        export = {
            "model": self.student.state_dict(),
            "arch": self.cfg.model.name,
            "num_classes": self.data.num_classes,
            "in_chans": self.data.in_chans,
            "epoch": epoch,
            "accuracy": top1,
            "dataset": self.cfg.data.name,
            "config": to_dict(self.cfg),
        }
        atomic_save(export, self.run.checkpoint("student"))
