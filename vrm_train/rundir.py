"""The run directory: the one on-disk layout the trainer writes and the app reads.

<run>/config.yaml                 resolved config
<run>/metrics.csv                 one row per epoch, one column per loss term and metric
<run>/summary.json                best/last accuracy, timings (written at the end of each epoch)
<run>/checkpoints/last.pt         full training state (resume)
<run>/checkpoints/best.pt         full training state at the best test top-1
<run>/checkpoints/student.pt      student-only export {"model": state_dict, "arch", ...} (final weights)
<run>/snapshots/probe_eNNN.pt     relation snapshot of the fixed probe batch after epoch NNN (0 = init)
<run>/snapshots/train_eNNN_bKK.pt relation snapshot of training batch KK of epoch NNN
<run>/changes.json                settings changed on resume (key, old, new, from which epoch), if any
<run>/.lock                       held by the process training the run (vrm_train.runlock)

The end of an epoch writes, in this order: metrics.csv, the probe snapshot, student.pt (last epoch),
last.pt, best.pt, summary.json. last.pt is the commit point: a kill before it repeats the epoch on
resume; a kill after it leaves best.pt/summary.json to be completed by resume.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil

from vrm_train.fileio import atomic_write, atomic_write_text, remove_temp_files

SNAPSHOT_RE = re.compile(r"^(probe|train)_e(\d{3,})(?:_b(\d{2,}))?\.pt$")


class RunDirError(ValueError):
    """A run directory that cannot be used as asked; the message says why and what to do."""


class RunDir:
    def __init__(self, path: str):
        self.path = os.path.abspath(path)

    def file(self, *parts: str) -> str:
        return os.path.join(self.path, *parts)

    @property
    def config(self) -> str:
        return self.file("config.yaml")

    @property
    def metrics(self) -> str:
        return self.file("metrics.csv")

    @property
    def summary(self) -> str:
        return self.file("summary.json")

    def checkpoint(self, which: str) -> str:
        return self.file("checkpoints", f"{which}.pt")

    def probe_snapshot(self, epoch: int) -> str:
        return self.file("snapshots", f"probe_e{epoch:03d}.pt")

    def train_snapshot(self, epoch: int, batch: int) -> str:
        return self.file("snapshots", f"train_e{epoch:03d}_b{batch:02d}.pt")

    def snapshots(self) -> list[tuple[str, int, int, str]]:
        """(kind, epoch, batch, path) of every snapshot file, sorted; batch is -1 for probe snapshots."""
        folder = self.file("snapshots")
        out = []
        if os.path.isdir(folder):
            for name in os.listdir(folder):
                m = SNAPSHOT_RE.match(name)
                if m:
                    batch = int(m.group(3)) if m.group(3) else -1
                    out.append((m.group(1), int(m.group(2)), batch, os.path.join(folder, name)))
        return sorted(out)

    def exists(self) -> bool:
        return os.path.isfile(self.config)

    def has_checkpoint(self) -> bool:
        return os.path.isfile(self.checkpoint("last"))

    @property
    def changes(self) -> str:
        return self.file("changes.json")

    def checkpoint_files(self) -> list[str]:
        folder = self.file("checkpoints")
        if not os.path.isdir(folder):
            return []
        return sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".pt"))

    def has_finished_epoch(self) -> bool:
        """Whether any epoch was committed: a checkpoint exists (a slimmed demo run keeps only student.pt)."""
        return bool(self.checkpoint_files())

    def reset_unfinished(self) -> None:
        """Remove what a start that never finished an epoch wrote (config, metrics, summary, snapshots,
        temporary files); anything else in the folder is left alone."""
        if self.has_finished_epoch():
            raise RunDirError(f"{self.path} has a finished epoch; refusing to reset it")
        for name in ("config.yaml", "metrics.csv", "summary.json", "changes.json"):
            if os.path.isfile(self.file(name)):
                os.remove(self.file(name))
        for _, _, _, path in self.snapshots():
            os.remove(path)
        self.remove_temp_files()
        for sub in ("checkpoints", "snapshots"):
            if os.path.isdir(self.file(sub)) and not os.listdir(self.file(sub)):
                shutil.rmtree(self.file(sub))

    def remove_temp_files(self) -> list[str]:
        """Delete leftovers of killed writes; call only while holding the run's lock."""
        return remove_temp_files(self.path, self.file("checkpoints"), self.file("snapshots"))

    def read_metrics(self) -> list[dict[str, str]]:
        """The rows of metrics.csv ([] when it does not exist yet).

        Raises :class:`RunDirError` for a file that is not a metrics table of ours: not UTF-8 text, no
        ``epoch`` column, epochs that are not increasing integers."""
        if not os.path.isfile(self.metrics):
            return []
        bad = f"{self.metrics} is not a metrics table written by vrm-train"
        fix = (
            "Nothing was changed. Restore the file (a backup or another copy of the run); to continue without "
            "the old history, rename the file aside and resume: the new metrics.csv then starts at the next epoch."
        )
        try:
            with open(self.metrics, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                rows = list(reader)
                header = reader.fieldnames or []
        except UnicodeDecodeError as e:
            raise RunDirError(f"{bad} (it is not UTF-8 text: {e.reason} at byte {e.start}). {fix}") from None
        except csv.Error as e:
            raise RunDirError(f"{bad} (CSV error: {e}). {fix}") from None
        if not header and not rows:
            return []
        if "epoch" not in header:
            raise RunDirError(f"{bad} (no 'epoch' column; columns: {', '.join(header[:8]) or 'none'}). {fix}")
        last = 0
        for line, row in enumerate(rows, start=2):
            value = row.get("epoch")
            try:
                epoch = int(value)
            except (TypeError, ValueError):
                raise RunDirError(f"{bad} (line {line}: epoch {value!r} is not an integer). {fix}") from None
            if epoch <= last:
                raise RunDirError(f"{bad} (line {line}: epoch {epoch} after epoch {last}). {fix}")
            last = epoch
        return rows

    def write_metrics(self, rows: list[dict]) -> None:
        """Rewrite metrics.csv atomically with the union of all rows' columns (first-seen order)."""
        cols: list[str] = []
        for r in rows:
            cols += [k for k in r if k not in cols]

        def write(f):
            w = csv.DictWriter(f, fieldnames=cols)
            w.writeheader()
            w.writerows(rows)

        atomic_write(self.metrics, write)

    def write_summary(self, summary: dict) -> None:
        atomic_write_text(self.summary, json.dumps(summary, indent=2))

    def read_summary(self) -> dict:
        if not os.path.isfile(self.summary):
            return {}
        with open(self.summary, encoding="utf-8") as f:
            return json.load(f)
