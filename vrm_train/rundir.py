"""The run directory: the one on-disk layout the trainer writes and the app reads.

<run>/config.yaml                 resolved config
<run>/metrics.csv                 one row per epoch, one column per loss term and metric
<run>/summary.json                best/last accuracy, timings (written at the end of each epoch)
<run>/checkpoints/last.pt         full training state (resume)
<run>/checkpoints/best.pt         full training state at the best test top-1
<run>/checkpoints/student.pt      student-only export {"model": state_dict, "arch", ...} (final weights)
<run>/snapshots/probe_eNNN.pt     relation snapshot of the fixed probe batch after epoch NNN (0 = init)
<run>/snapshots/train_eNNN_bKK.pt relation snapshot of training batch KK of epoch NNN
"""

from __future__ import annotations

import csv
import json
import os
import re

SNAPSHOT_RE = re.compile(r"^(probe|train)_e(\d{3,})(?:_b(\d{2,}))?\.pt$")


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

    def read_metrics(self) -> list[dict[str, str]]:
        if not os.path.isfile(self.metrics):
            return []
        with open(self.metrics, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))

    def write_metrics(self, rows: list[dict]) -> None:
        """Rewrite metrics.csv atomically with the union of all rows' columns (first-seen order)."""
        cols: list[str] = []
        for r in rows:
            cols += [k for k in r if k not in cols]
        tmp = self.metrics + ".tmp"
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=cols)
            w.writeheader()
            w.writerows(rows)
        os.replace(tmp, self.metrics)

    def write_summary(self, summary: dict) -> None:
        tmp = self.summary + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=2)
        os.replace(tmp, self.summary)

    def read_summary(self) -> dict:
        if not os.path.isfile(self.summary):
            return {}
        with open(self.summary, encoding="utf-8") as f:
            return json.load(f)
