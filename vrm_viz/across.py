"""Several runs side by side on the same snapshot: agreement metrics and pruning statistics, with deltas
against a baseline run (instead of switching runs and remembering numbers).

    table = across_runs(runs, kind="probe", epoch=10)           # one row per run
    table = with_deltas(table, baseline="kd_resnet8")            # + "Δ metric" columns
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from vrm_viz.compare import METRICS, agreement
from vrm_viz.graphs import INTER_SAMPLE, GraphOptions, build_graph
from vrm_viz.runs import Run, RunError

#: Columns besides the agreement metrics (compare.METRICS).
PRUNING = {
    "is_edges": "IS edges",
    "is_pruned": "IS edges pruned",
    "is_pruned_frac": "pruned fraction",
    "pruned_same_class_frac": "pruned among same-class edges",
    "pruned_diagonal_frac": "pruned among inter-view diagonal edges",
}
ID_COLUMNS = ["run", "method", "epoch", "batch", "note"]


def common_epochs(runs: list[Run], kind: str = "probe") -> list[int]:
    """Epochs at which every run has a snapshot of ``kind`` (sorted)."""
    sets = [set(r.snapshot_epochs(kind)) for r in runs]
    return sorted(set.intersection(*sets)) if sets else []


def _pruning(g) -> dict:
    e = g.edges
    pruned = ~e.kept.to_numpy()
    same, diag = e.same_class.to_numpy(), e.diagonal.to_numpy()
    return {
        "is_edges": g.n_edges,
        "is_pruned": g.n_pruned,
        "is_pruned_frac": g.n_pruned / max(g.n_edges, 1),
        "pruned_same_class_frac": float(pruned[same].mean()) if same.any() else np.nan,
        "pruned_diagonal_frac": float(pruned[diag].mean()) if diag.any() else np.nan,
    }


def across_runs(
    runs: list[Run],
    *,
    kind: str = "probe",
    epoch: int | None = None,
    batch: int = -1,
    opts: GraphOptions | None = None,
    build: Callable = build_graph,
) -> pd.DataFrame:
    """One row per run: accuracy, :data:`vrm_viz.compare.METRICS` and :data:`PRUNING` on the run's snapshot
    of ``kind`` at ``epoch`` (None: the run's last) and ``batch`` (training batches). ``opts``: the graph
    options for every run (None: each run's own training options). A run without that snapshot or without
    a teacher gets a row with a note and NaN metrics (it is not silently dropped)."""
    rows = []
    for run in runs:
        row = {"run": run.name, "method": run.method, "epoch": epoch, "batch": batch, "note": ""}
        row["best_top1"], row["last_top1"] = run.best_top1, run.last_top1
        epochs = run.snapshot_epochs(kind)
        ep = epoch if epoch is not None else (epochs[-1] if epochs else None)
        row["epoch"] = ep
        try:
            if ep is None:
                raise RunError(f"no {kind} snapshot")
            snap = run.snapshot(kind, ep, batch)
        except RunError as e:
            row["note"] = str(e).split(";")[0]
            rows.append(row)
            continue
        o = opts or GraphOptions.from_config(run.config)
        row.update(_pruning(build(snap, INTER_SAMPLE, o)))
        if snap.has_teacher:
            row.update(agreement(snap, o, build=build))
        else:
            row["note"] = "no teacher: agreement metrics need one"
        rows.append(row)
    cols = [*ID_COLUMNS, "best_top1", "last_top1", *METRICS, *PRUNING]
    return pd.DataFrame(rows).reindex(columns=cols)


def metric_columns(frame: pd.DataFrame) -> list[str]:
    """The numeric value columns of :func:`across_runs` (what deltas are taken of)."""
    return [c for c in frame.columns if c not in ID_COLUMNS and not c.startswith("Δ ")]


def with_deltas(frame: pd.DataFrame, baseline: str, columns: list[str] | None = None) -> pd.DataFrame:
    """``frame`` plus a "Δ col" column (value − the baseline run's value) after each of ``columns``
    (default: every metric column); the baseline's own deltas are 0."""
    if baseline not in set(frame.run):
        raise ValueError(f"baseline run {baseline!r} is not among the runs compared: {list(frame.run)}")
    base = frame.loc[frame.run == baseline].iloc[0]
    out = frame.copy()
    for col in columns or metric_columns(frame):
        out.insert(out.columns.get_loc(col) + 1, f"Δ {col}", pd.to_numeric(frame[col]) - float(base[col]))
    return out
