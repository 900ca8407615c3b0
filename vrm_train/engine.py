"""One training loop for every method.

    summary = train(load_config("configs/demo/vrm.yaml"))

The loop knows no method by name: the distiller returns named loss terms, the engine sums them, steps
SGD, evaluates each epoch and writes the run directory (:mod:`vrm_train.rundir`). Every epoch's
randomness is seeded from (seed, epoch, rank) and checkpoints hold all training state, so ``resume``
continues exactly where an interrupted run stopped (claiming, opening and completing the run directory,
saving and restoring that state: :mod:`vrm_train.trainstate`).
"""

from __future__ import annotations

import dataclasses
import os
import time

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from vrm_train import runtime as R
from vrm_train.build import data_from_config, load_model, views_from_config
from vrm_train.checkpoint import atomic_save
from vrm_train.config import ConfigError, RunConfig
from vrm_train.corruption import CorruptedTeacher, corruption_table
from vrm_train.data import make_loader
from vrm_train.distillers import DataInfo, build_distiller, get_method
from vrm_train.evaluate import evaluate
from vrm_train.fileio import output_errors
from vrm_train.loggers import RunLoggers
from vrm_train.meters import TrainMeter, grad_norm
from vrm_train.models import create_model
from vrm_train.optim import build_optimizer, lr_at
from vrm_train.rundir import RunDir
from vrm_train.snapshots import probe_indices, relation_snapshot, save_snapshot
from vrm_train.trainstate import RunStateMixin


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN/inf loss; the last good checkpoint is left intact."""


class Trainer(RunStateMixin):
    def __init__(
        self, cfg: RunConfig, *, resume: bool = False, progress: bool = True, change_schedule: bool = False
    ):
        self.cfg, self.progress = cfg, progress
        self.rt = R.setup(cfg.device)
        R.set_determinism(cfg.deterministic)
        R.seed_all(cfg.seed)
        self.run = RunDir(os.path.join(cfg.out_dir, cfg.run_name()))
        self.claim = self._claim_run_dir(resume, change_schedule)
        try:
            self._build()
            self.loggers = RunLoggers(
                cfg, self.run.path, enabled=self.rt.is_main
            )  # a missing extra fails here
            if self.rt.is_main:
                self._open_run_dir()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Release the run directory (the lock goes with the process anyway) and close the loggers."""
        loggers = getattr(self, "loggers", None)
        if loggers is not None:
            loggers.close()
        self.claim.release()

    def _build(self) -> None:
        cfg = self.cfg
        self.data = data_from_config(cfg.data)
        self.views = views_from_config(cfg.data, self.data, self.rt.device)
        nc, ch = self.data.num_classes, self.data.in_chans
        self.student = create_model(cfg.model.name, num_classes=nc, in_chans=ch)
        spec = get_method(cfg.method)
        teacher = load_model(cfg.teacher, num_classes=nc, in_chans=ch) if spec.needs_teacher else None
        self.corrupted = None  # the robustness study's teacher with fixed spurious responses
        if teacher is not None and cfg.data.corrupt_teacher_fraction > 0:
            table = corruption_table(
                self.data.train.labels,
                num_classes=nc,
                fraction=cfg.data.corrupt_teacher_fraction,
                seed=cfg.data.corrupt_teacher_seed,
            )
            teacher = self.corrupted = CorruptedTeacher(teacher, table)
        info = DataInfo(nc, ch, self.data.image_size, self.data.train.labels)
        self.distiller = build_distiller(cfg, self.student, teacher, info).to(self.rt.device)
        if cfg.channels_last:
            self.distiller.to(memory_format=torch.channels_last)
        if cfg.compile:
            self.distiller.student = torch.compile(self.student)
        self.model = self.distiller
        if self.rt.distributed:
            ids = [self.rt.device.index] if self.rt.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.distiller, device_ids=ids)
        self.optimizer = build_optimizer(cfg.optim, self.distiller)
        self.scaler = torch.amp.GradScaler("cuda") if cfg.amp == "fp16" else None
        self.train_loader = make_loader(
            self.data,
            "train",
            batch_size=cfg.data.batch_size,
            train=True,
            device=self.rt.device,
            seed=cfg.seed,
            rank=self.rt.rank,
            world_size=self.rt.world_size,
            num_workers=cfg.data.num_workers,
        )
        self._check_batches()
        self.epoch, self.best, self.rows = 0, {"top1": -1.0, "epoch": 0}, []
        if self.claim.resume:
            self._load_state()
        self.snapshot_epochs = sorted(set(cfg.snapshot.epochs) | {cfg.optim.epochs})
        labels = self.data.test.labels
        self.probe_idx = probe_indices(labels, cfg.snapshot.probe_size, cfg.snapshot.probe_seed)

    def _check_batches(self) -> None:
        if len(self.train_loader) > 0:
            return
        n, b, world = len(self.data.train), self.cfg.data.batch_size, self.rt.world_size
        per = f" per process ({world} processes)" if world > 1 else ""
        raise ConfigError(
            f"the training split has {n} images, fewer than one batch (data.batch_size={b}{per}): no "
            "training step would run. Lower data.batch_size, or train on more images (data.subset_per_class, "
            "data.val_per_class / data.val_fraction hold images out of the training split)."
        )

    # ------------------------------------------------------------------ snapshots
    def _snapshot_meta(self, kind: str, epoch: int, batch: int, seed: int, split: str) -> dict:
        return {
            "kind": kind,
            "split": split,
            "epoch": epoch,
            "batch": batch,
            "seed": seed,
            "method": self.cfg.method,
            "student_arch": self.cfg.model.name,
            "teacher_arch": self.cfg.teacher.name if self.distiller.teacher is not None else None,
            "dataset": self.cfg.data.name,
            "classes": list(self.data.classes),
            "mean": list(self.data.mean),
            "std": list(self.data.std),
        }

    def _probe_snapshot(self, epoch: int) -> None:
        test = self.data.test
        images = test.images[self.probe_idx].to(self.rt.device)
        v = self.views
        tensors = relation_snapshot(
            self.student,
            self.distiller.teacher,
            images,
            virtual_view=v.virtual,
            normalize=v.normalize,
            virtual_seed=self.cfg.snapshot.probe_seed,
        )
        tensors.update(targets=test.labels[self.probe_idx], index=self.probe_idx)
        meta = self._snapshot_meta("probe", epoch, -1, self.cfg.snapshot.probe_seed, "test")
        save_snapshot(self.run.probe_snapshot(epoch), tensors, meta)

    def _train_snapshot(self, epoch, it, batch, x01, xv01, out) -> None:
        rel = dict(out["relation"])
        if any(k not in rel for k in ("s", "s_v", "t", "t_v", "feat_s", "feat_t")):
            x, x_v = self.views.normalize(x01), self.views.normalize(xv01)
            extra = self.distiller.relation_inputs(x, x_v)
            rel = {**extra, **rel}
        tensors = {k: v.float() for k, v in rel.items()}
        tensors.update(
            targets=batch.labels,
            index=batch.index,
            image=(x01 * 255).round().to(torch.uint8),
            image_v=(xv01 * 255).round().to(torch.uint8),
        )
        seed = R.epoch_seed(self.cfg.seed, epoch, self.rt.rank)
        save_snapshot(
            self.run.train_snapshot(epoch, it),
            tensors,
            self._snapshot_meta("train", epoch, it, seed, "train"),
        )

    # ------------------------------------------------------------------ loop
    def _virtual(self, x01: torch.Tensor, keep_rng: bool) -> torch.Tensor:
        if not keep_rng:
            return self.views.virtual(x01)
        devices = [x01.device] if x01.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # snapshot-only work must not shift the random stream
            return self.views.virtual(x01)

    def train_epoch(self, epoch: int) -> dict[str, float]:
        cfg, rt = self.cfg, self.rt
        R.seed_all(R.epoch_seed(cfg.seed, epoch, rt.rank))
        self.train_loader.set_epoch(epoch)
        self.model.train()
        n_batches = len(self.train_loader)
        snap_batches = cfg.snapshot.train_batches if (epoch in self.snapshot_epochs and rt.is_main) else 0
        meter = TrainMeter(rt.device)
        bar = tqdm(
            self.train_loader,
            total=n_batches,
            desc=f"epoch {epoch}/{cfg.optim.epochs}",
            disable=not (self.progress and rt.is_main),
            leave=False,
            dynamic_ncols=True,
        )
        for it, batch in enumerate(bar):
            lr = lr_at(cfg, epoch - 1 + it / n_batches)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            x01 = aug01 = self.views.real(batch.images)
            if not cfg.data.real_view_augment:  # crop + flip go into the virtual view only
                x01 = batch.images.float() / 255.0
            snap = it < snap_batches
            xv01 = None
            if self.distiller.needs_virtual or snap:
                xv01 = self._virtual(aug01, keep_rng=not self.distiller.needs_virtual)
            x = self.views.normalize(x01)
            x_v = self.views.normalize(xv01) if self.distiller.needs_virtual else None
            if cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
                x_v = x_v.contiguous(memory_format=torch.channels_last) if x_v is not None else None
            if self.corrupted is not None:
                self.corrupted.index = batch.index
            with R.autocast(rt, cfg.amp):
                extra = {"index": batch.index} if self.distiller.needs_index else {}
                out = self.model(x, x_v, batch.labels, epoch, **extra)
            if self.corrupted is not None:
                self.corrupted.index = None  # snapshots and evaluation see the clean teacher
            loss = sum(out["losses"].values())
            self.optimizer.zero_grad(set_to_none=True)
            if self.scaler:
                self.scaler.scale(loss).backward()
                self.scaler.unscale_(self.optimizer)
            else:
                loss.backward()
            if snap:  # after backward (its extra forwards restore BN buffers in place), before the update
                with output_errors(self.run.path, self._committed):
                    self._train_snapshot(epoch, it, batch, x01, xv01, out)
            norm = grad_norm(self.distiller.trainable_parameters(), cfg.optim.clip_grad_norm)
            if self.scaler:
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
            meter.add(out, loss, norm, batch.labels)
            step = (epoch - 1) * n_batches + it + 1
            if self.loggers.wants_step(step):
                self.loggers.log_step(step, out["losses"], loss, lr)
            if (it + 1) % cfg.log_every == 0 or it + 1 == n_batches:
                self._check_finite(meter, epoch, it)
                bar.set_postfix(**meter.postfix(), lr=f"{lr:.4g}")
        row = meter.row(rt)
        row["lr"] = lr_at(cfg, epoch - 1)
        return row

    def _check_finite(self, meter: TrainMeter, epoch: int, it: int) -> None:
        if meter.loss_is_finite():
            return
        o, last = self.cfg.optim, self.run.checkpoint("last")
        fix = f"optim.lr={o.lr / 10:.3g} optim.clip_grad_norm={o.clip_grad_norm or 5:g}"
        fix += " optim.gamma=0.1" if o.gamma > 1 else ""  # a schedule that multiplies the lr
        if os.path.exists(last):
            state = f"the last good checkpoint (epoch {self.epoch}) is intact at {last}"
            todo = (
                "Continue from it with a 10x smaller learning rate and gradient clipping: "
                f"vrm-train resume {self.run.path} {fix} --change-schedule"
            )
        else:
            state = "no checkpoint had been written yet"
            todo = f"Start the run again with a 10x smaller learning rate and gradient clipping: {fix}"
        raise NonFiniteLossError(
            f"non-finite loss at epoch {epoch}, step {it + 1} (running sums: {meter.describe()}); {state}. {todo}"
        )

    def _eval_batches(self, split: str):
        """This process's share of ``split`` (a disjoint strided shard when distributed: no duplicates)."""
        bundle = self.data
        if self.rt.distributed:
            data = getattr(bundle, split)
            shard = data.subset(torch.arange(self.rt.rank, len(data), self.rt.world_size))
            bundle = dataclasses.replace(bundle, **{split: shard})
        loader = make_loader(
            bundle,
            split,
            batch_size=self.cfg.data.eval_batch_size,
            train=False,
            device=self.rt.device,
            num_workers=self.cfg.data.num_workers,
        )
        return ((self.views.normalize(b.images.float() / 255.0), b.labels) for b in loader)

    def evaluate(self) -> dict[str, float]:
        row = {}
        amp = (lambda: R.autocast(self.rt, self.cfg.amp)) if self.cfg.amp != "off" else None
        for split in ("test", "val"):
            if getattr(self.data, split) is None:
                continue
            m = evaluate(
                self.student,
                self._eval_batches(split),
                self.rt,
                amp_context=amp,
                channels_last=self.cfg.channels_last,
            )
            row.update({f"{split}_{k}": v for k, v in m.items()})
        return row

    def fit(self) -> dict:
        cfg, rt = self.cfg, self.rt
        if self.epoch == 0 and 0 in self.snapshot_epochs and rt.is_main:
            with output_errors(self.run.path, self._committed):
                self._probe_snapshot(0)
        epochs = range(self.epoch + 1, cfg.optim.epochs + 1)
        outer = tqdm(
            epochs,
            desc=self.run.path.split(os.sep)[-1],
            disable=not (self.progress and rt.is_main),
            dynamic_ncols=True,
        )
        for epoch in outer:
            t0 = time.perf_counter()
            row = {"epoch": epoch, **self.train_epoch(epoch)}
            train_time = time.perf_counter() - t0
            row.update(self.evaluate())
            row.update(
                epoch_time=train_time,
                images_per_s=len(self.train_loader)
                * cfg.data.batch_size
                * rt.world_size
                / max(train_time, 1e-9),
                peak_mem_mb=R.peak_memory_mb(rt),
            )
            improved = row["test_top1"] > self.best["top1"]
            if improved:
                self.best = {"top1": row["test_top1"], "epoch": epoch}
            row["best_top1"] = self.best["top1"]
            self.epoch = epoch
            if rt.is_main:
                self._save_epoch(epoch, row, improved)
            outer.set_postfix(test=f"{row['test_top1']:.2f}", best=f"{self.best['top1']:.2f}")
        if rt.is_main:
            with output_errors(self.run.path, self._committed):
                self.run.write_summary(self.summary())
        return self.summary()

    def _save_epoch(self, epoch: int, row: dict, improved: bool) -> None:
        """The end-of-epoch writes, in the order of :mod:`vrm_train.rundir`: last.pt commits the epoch."""
        self.rows.append(row)
        with output_errors(self.run.path, self._committed):
            self.run.write_metrics(self.rows)
            self.loggers.log_epoch(epoch, row)
            if epoch in self.snapshot_epochs:
                self._probe_snapshot(epoch)
            if epoch == self.cfg.optim.epochs:
                self._export_student(epoch, row["test_top1"])
            state = self._state(epoch)
            atomic_save(state, self.run.checkpoint("last"))
            self.saved_epoch = epoch
            if improved:
                atomic_save(state, self.run.checkpoint("best"))
            self.run.write_summary(self.summary())

    def summary(self) -> dict:
        last = self.rows[-1] if self.rows else {}
        return {
            "run": self.run.path,
            "method": self.cfg.method,
            "epochs_done": self.epoch,
            "epochs": self.cfg.optim.epochs,
            "best_top1": self.best["top1"],
            "best_epoch": self.best["epoch"],
            "last_top1": float(last.get("test_top1", "nan")),
            "last_train_top1": float(last.get("train_top1", "nan")),
            "mean_epoch_time": sum(float(r["epoch_time"]) for r in self.rows) / max(len(self.rows), 1),
            "peak_mem_mb": max((float(r["peak_mem_mb"]) for r in self.rows), default=0.0),
        }


def train(
    cfg: RunConfig, *, resume: bool = False, progress: bool = True, change_schedule: bool = False
) -> dict:
    """Train (or resume) the run described by ``cfg``; returns its summary.

    ``change_schedule`` lets a resumed run continue with changed training-schedule settings
    (:mod:`vrm_train.resume`)."""
    trainer = Trainer(cfg, resume=resume, progress=progress, change_schedule=change_schedule)
    try:
        return trainer.fit()
    finally:
        trainer.close()
        R.teardown(trainer.rt)
