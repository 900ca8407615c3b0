"""Find, open and summarise run directories (the layout of :mod:`vrm_train.rundir`).

    runs = discover_runs("data/demo")
    table = runs_table(runs)                      # one row per run: method, pair, accuracies, options
    run = open_run("data/demo/vrm_resnet8")
    snap = run.snapshot("probe", epoch=6)         # a Snapshot: logits, features, images of one batch
    diff = config_diff(runs)                      # only the config keys that differ between runs
    runs, problems = scan_runs("some/folder")     # lenient discovery: broken runs reported, not raised

Partial runs (a run still training, or killed before its first epoch ended) open with what they have;
foreign folders and files raise :class:`RunError` with a message that says what was expected.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from functools import cached_property

import pandas as pd
import yaml

from vrm_train.checkpoint import CheckpointError
from vrm_train.distillers import get_method, method_sections
from vrm_train.resources import demo_dir
from vrm_train.rundir import RunDir
from vrm_train.snapshots import load_snapshot
from vrm_viz.snapshot import Snapshot

DEMO_DIR = str(demo_dir())  # data/demo in a checkout, package data of vrm_viz when installed
MAX_DEPTH = 3  # how deep discover_runs looks below the root


class RunError(ValueError):
    """A path that is not a (readable) run directory; the message says what was expected."""


def read_snapshot(path: str) -> Snapshot:
    """Load one snapshot file (weights_only); foreign or incomplete files raise :class:`RunError`."""
    try:
        d = load_snapshot(path)
    except CheckpointError as e:
        raise RunError(str(e)) from e
    names = Snapshot.__dataclass_fields__
    kw = {k: d.get(k) for k in names if k != "path"}
    kw.setdefault("split", "test" if d["kind"] == "probe" else "train")
    for k in ("split", "method", "dataset", "student_arch"):
        kw[k] = kw.get(k) or "?"
    kw["mean"], kw["std"] = kw.get("mean") or [0.0], kw.get("std") or [1.0]
    return Snapshot(path=path, **kw)


@dataclass
class Run:
    path: str
    config: dict
    summary: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    @property
    def method(self) -> str:
        return self.config.get("method", "?")

    @property
    def student(self) -> str:
        return (self.config.get("model") or {}).get("name", "?")

    @property
    def seed(self):
        return self.config.get("seed")

    @property
    def teacher(self) -> str | None:
        t = self.config.get("teacher")
        return t.get("name") if isinstance(t, dict) and self.uses_teacher else None

    @property
    def uses_teacher(self) -> bool:
        """Whether the run's method distils from a teacher (a method not registered here: when the config
        names one)."""
        try:
            return get_method(self.method).needs_teacher
        except KeyError:
            return isinstance(self.config.get("teacher"), dict)

    @property
    def dataset(self) -> str:
        return (self.config.get("data") or {}).get("name", "?")

    @property
    def pair(self) -> str:
        return f"{self.teacher} → {self.student}" if self.teacher else self.student

    @cached_property
    def metrics(self) -> pd.DataFrame:
        """One row per finished epoch (empty for a run that has not finished one).

        Raises :class:`RunError` for an unreadable metrics.csv (:func:`open_run` reads it eagerly)."""
        try:
            rows = RunDir(self.path).read_metrics()
        except (OSError, ValueError, csv.Error) as e:
            raise RunError(f"cannot read {RunDir(self.path).metrics}: {e}") from e
        df = pd.DataFrame(rows)
        if not len(df) or "epoch" not in df:
            return pd.DataFrame({"epoch": []})
        return df.apply(pd.to_numeric, errors="coerce").dropna(subset=["epoch"])

    @property
    def epochs_done(self) -> int:
        """Finished epochs (0 for a run that is still in its first epoch or only holds snapshots)."""
        return int(self.metrics["epoch"].max()) if len(self.metrics) else 0

    @property
    def status(self) -> str:
        """One line: how far the run got (``no finished epoch yet`` for a partial run)."""
        if self.method == "live":
            return "snapshots of saved checkpoints (vrm-train snapshot): no training log"
        if not self.epochs_done:
            return "no finished epoch yet"
        planned = (self.config.get("optim") or {}).get("epochs")
        done = f"{self.epochs_done} epoch{'s' if self.epochs_done > 1 else ''}"
        return f"{done} of {planned}" if planned and planned != self.epochs_done else f"{done}, finished"

    @cached_property
    def snapshots(self) -> pd.DataFrame:
        """Columns kind ("probe" | "train"), epoch, batch (-1 for probe), path."""
        rows = RunDir(self.path).snapshots()
        return pd.DataFrame(rows, columns=["kind", "epoch", "batch", "path"])

    def snapshot_epochs(self, kind: str = "probe") -> list[int]:
        return sorted(self.snapshots.loc[self.snapshots.kind == kind, "epoch"].unique().tolist())

    def snapshot(self, kind: str, epoch: int, batch: int = -1) -> Snapshot:
        sel = self.snapshots[(self.snapshots.kind == kind) & (self.snapshots.epoch == epoch)]
        if kind == "train":
            sel = sel[sel.batch == batch]
        if sel.empty:
            have = ", ".join(
                f"{k} e{e}" + (f" b{b}" if b >= 0 else "") for k, e, b, _ in self.snapshots.values
            )
            raise RunError(
                f"run {self.name} has no {kind} snapshot for epoch {epoch}; it has: {have or 'none'}"
            )
        return read_snapshot(sel.iloc[0]["path"])

    def checkpoint(self, which: str = "student") -> str | None:
        """Path of ``checkpoints/<which>.pt`` if it exists."""
        p = RunDir(self.path).checkpoint(which)
        return p if os.path.isfile(p) else None

    def teacher_checkpoint(self) -> str | None:
        """The teacher path from the config, resolved relative to the run's parent folder when needed."""
        t = self.config.get("teacher")
        ck = t.get("checkpoint") if isinstance(t, dict) else None
        if not ck or not self.uses_teacher:
            return None
        for cand in (ck, os.path.join(os.path.dirname(self.path), ck)):
            if os.path.exists(cand):
                return cand
        return None

    def flat_config(self) -> dict:
        """The config as dotted keys without what the run does not use: other methods' sections, the
        teacher of a vanilla run, the teacher checkpoint path (it differs between machines)."""
        flat = _flatten(self.config)
        others = set(method_sections()) - {self.method}
        unused = ("teacher.checkpoint",) if self.uses_teacher else ("teacher.",)
        return {k: v for k, v in flat.items() if k.split(".")[0] not in others and not k.startswith(unused)}

    @property
    def best_top1(self) -> float:
        return float(self.summary.get("best_top1", _col_max(self.metrics, "test_top1")))

    @property
    def last_top1(self) -> float:
        return float(self.summary.get("last_top1", _col_last(self.metrics, "test_top1")))


def _col_max(df: pd.DataFrame, col: str) -> float:
    return float(df[col].max()) if col in df and len(df) else math.nan


def _col_last(df: pd.DataFrame, col: str) -> float:
    return float(df[col].iloc[-1]) if col in df and len(df) else math.nan


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(_flatten(v, key))
        else:
            out[key] = tuple(v) if isinstance(v, list) else v
    return out


def open_run(path: str) -> Run:
    """Open one run directory; raises :class:`RunError` for anything else."""
    path = os.path.abspath(os.path.expanduser(str(path)))
    if not os.path.exists(path):
        raise RunError(f"no such file or folder: {path}")
    if os.path.isfile(path):
        raise RunError(
            f"{path} is a file; a run is a folder with config.yaml, metrics.csv and checkpoints/ "
            "(open a single checkpoint in the 'Open checkpoints' page)"
        )
    run = RunDir(path)
    if not run.exists():
        raise RunError(
            f"{path} is not a run directory: it has no config.yaml (written by vrm-train at start)"
        )
    try:
        with open(run.config, encoding="utf-8") as f:
            config = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        raise RunError(f"cannot read {run.config}: {e}") from e
    if not isinstance(config, dict) or "method" not in config or "model" not in config:
        raise RunError(f"{run.config} is not a vrm run config (no 'method'/'model' keys)")
    bad = [
        k
        for k in ("model", "teacher", "data", "optim")
        if config.get(k) is not None and not isinstance(config[k], dict)
    ]
    if bad or not isinstance(config["method"], str):
        raise RunError(f"{run.config} is not a vrm run config (malformed {', '.join(bad) or 'method'})")
    try:
        summary = run.read_summary()
    except (OSError, ValueError) as e:
        raise RunError(f"cannot read {run.summary}: {e}") from e
    if not isinstance(summary, dict):
        raise RunError(f"{run.summary} is not a run summary (expected a JSON object)")
    opened = Run(path=path, config=config, summary=summary)
    _ = opened.metrics  # read now: a broken metrics.csv is reported here, not in the middle of a page
    return opened


def _is_run_dir(dirpath: str, filenames: list[str]) -> bool:
    """config.yaml beside checkpoints/, snapshots/ (``vrm-train snapshot`` output) or metrics.csv."""
    if "config.yaml" not in filenames:
        return False
    return "metrics.csv" in filenames or any(
        os.path.isdir(os.path.join(dirpath, d)) for d in ("checkpoints", "snapshots")
    )


def scan_runs(root: str) -> tuple[list[Run], list[RunError]]:
    """Every run at ``root`` or below (up to three levels), and one :class:`RunError` per broken run.

    Raises :class:`RunError` when ``root`` is not a folder or holds no run directory at all (a folder
    whose only runs are broken returns ``([], errors)``)."""
    root = os.path.abspath(os.path.expanduser(str(root)))
    if not os.path.isdir(root):
        raise RunError(
            f"no such folder: {root}" if not os.path.exists(root) else f"{root} is a file, not a folder"
        )
    found, errors = [], []
    base_depth = root.rstrip(os.sep).count(os.sep)
    for dirpath, dirnames, filenames in os.walk(root):
        if _is_run_dir(dirpath, filenames):
            try:
                found.append(open_run(dirpath))
            except RunError as e:
                errors.append(e)
            dirnames[:] = []  # a run holds no runs
        elif dirpath.count(os.sep) - base_depth >= MAX_DEPTH:
            dirnames[:] = []
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    if not found and not errors:
        raise RunError(
            f"no run directories under {root} (a run has config.yaml and checkpoints/, snapshots/ or "
            "metrics.csv; searched 3 levels deep)"
        )
    return sorted(found, key=lambda r: r.path), errors


def discover_runs(root: str) -> list[Run]:
    """Every run directory at ``root`` or below it (up to three levels), sorted by path.

    ``root`` may itself be a run. Raises :class:`RunError` when the path does not exist, holds no run,
    or holds a broken run (see :func:`scan_runs` to skip broken runs instead).
    """
    found, errors = scan_runs(root)
    if errors:
        raise errors[0]
    return found


KEY_OPTIONS = (
    "vrm.is_edges",
    "vrm.uep",
    "vrm.uep_ratio",
    "vrm.huber_delta",
    "vrm.lambda_is",
    "vrm.lambda_ic",
    "vrm.zscore",
    "seed",
)


def runs_table(runs: list[Run]) -> pd.DataFrame:
    """One row per run: identity, accuracies (best and last test top-1, last train top-1, gap), key options."""
    rows = []
    for r in runs:
        m = r.metrics
        train = _col_last(m, "train_top1")
        row = {
            "run": r.name,
            "method": r.method,
            "pair": r.pair,
            "dataset": r.dataset,
            "epochs": int(m["epoch"].max()) if len(m) else 0,
            "best_top1": r.best_top1,
            "last_top1": r.last_top1,
            "last_train_top1": train,
            "gap": train - r.last_top1,
        }
        flat = _flatten(r.config)
        others = set(method_sections()) - {r.method}
        for k in KEY_OPTIONS:
            if k.split(".")[0] not in others:  # another method's option says nothing about this run
                row[k] = flat.get(k)
        rows.append(row)
    return pd.DataFrame(rows)


def config_diff(runs: list[Run], ignore: tuple[str, ...] = ()) -> pd.DataFrame:
    """The config keys whose values differ between ``runs`` (rows: keys, columns: run names).

    ``ignore`` drops keys that always differ and say nothing (e.g. ``("name", "out_dir")``)."""
    flats = {r.name: r.flat_config() for r in runs}
    keys = sorted(set().union(*[f.keys() for f in flats.values()])) if flats else []
    rows = {}
    for k in keys:
        values = [flats[n].get(k) for n in flats]
        if k not in ignore and len({repr(v) for v in values}) > 1:
            rows[k] = values
    return (
        pd.DataFrame.from_dict(rows, orient="index", columns=list(flats))
        if rows
        else pd.DataFrame(columns=list(flats))
    )


def check_snapshots(run: Run) -> pd.DataFrame:
    """Each snapshot file of ``run`` with ``status`` "ok" or the reason it cannot be read (loads every file)."""
    rows = []
    for kind, epoch, batch, path in run.snapshots.itertuples(index=False):
        try:
            read_snapshot(path)
            status = "ok"
        except RunError as e:
            status = str(e)
        rows.append(
            {"file": os.path.basename(path), "kind": kind, "epoch": epoch, "batch": batch, "status": status}
        )
    return pd.DataFrame(rows, columns=["file", "kind", "epoch", "batch", "status"])
