"""Markdown tables of bench.quality: the method table (mean ± std over seeds) and the sweep."""

from __future__ import annotations

import pandas as pd

from bench.report import markdown_table


def _pm(values: pd.Series) -> str:
    return f"{values.mean():.2f} ± {values.std(ddof=1):.2f}" if len(values) > 1 else f"{values.mean():.2f}"


def quality_markdown(
    args, per_run: pd.DataFrame, vrm_opts, t_metrics: dict, seconds: float, machine: str
) -> str:
    order = list(dict.fromkeys(per_run["label"]))
    kd_best = per_run.loc[per_run.label == "kd", "best_test"].mean()
    rows = []
    for label in order:
        g = per_run[per_run.label == label]
        rows.append(
            [
                f"**{label}**" if label == "vrm" else label,
                _pm(g.best_test),
                _pm(g.last_test),
                _pm(g.last_train),
                _pm(g.last_train - g.last_test),
                f"{g.best_test.mean() - kd_best:+.2f}",
                f"{g.epoch_time.mean():.1f}",
                f"{g.peak_mem_mb.max():.0f}",
            ]
        )
    head = [
        "method",
        "best test top-1",
        "last test top-1",
        "last train top-1",
        "gap (train − test, last)",
        "best vs KD",
        "s / epoch",
        "peak MB",
    ]
    opts = " ".join(vrm_opts) if vrm_opts else "config defaults"
    return "\n".join(
        [
            f"## Distillation quality: {args.dataset}, {args.per_class} images/class, {args.epochs} epochs"
            + (" (quick smoke check)" if args.quick else ""),
            "",
            f"Command: `{args.command}` — this invocation took {seconds / 60:.0f} min (runs already finished "
            "under --out are reused, not retrained).  ",
            f"Machine: {machine}  ",
            f"Data: {args.dataset}, {args.per_class} training images per class ({args.val_per_class} more per class "
            f"held out for validation), full official test set. Teacher {args.teacher} "
            f"({args.teacher_per_class}/class, {args.teacher_epochs} epochs): best test top-1 "
            f"{t_metrics['best_test']:.2f}. Student {args.student}, {args.epochs} epochs, batch {args.batch_size}, "
            f"SGD lr {args.lr} cosine with 1 warm-up epoch, seeds {args.seeds}.  ",
            f"VRM options: {opts}. Accuracy in %, mean ± std over seeds. *best* = the best epoch's test accuracy "
            "(the DKD protocol; it peeks at the test set, so it is optimistic), *last* = the final epoch's "
            "(the CRD protocol). s/epoch = training time per epoch (evaluation excluded), peak MB = max resident "
            "memory of the run's process.",
            "",
            markdown_table(head, rows),
        ]
    )


def sweep_markdown(args, sweep: pd.DataFrame) -> str:
    rows = []
    sweep = sweep.reset_index(drop=True)
    for (method, stage), g in sweep.groupby(["method", "stage"], sort=False):
        best = g.val_score.idxmax()
        for i, r in g.iterrows():
            keys = [k for k in g.columns if k.startswith(("vrm.", "data.", "kd.")) and pd.notna(r[k])]
            opts = ", ".join(f"{k}={r[k]}" for k in keys)
            rows.append([method, stage, opts, f"{r.val_score:.2f}", "chosen" if i == best else ""])
    return "\n".join(
        [
            "## VRM (and KD) hyper-parameter sweep (validation split only)",
            "",
            "Coordinate-wise: each stage varies one group of options on top of the choices of the stages before it "
            f"and keeps the best by validation top-1 (mean of the last 3 epochs), seed {args.seeds[0]}. The test set "
            "plays no part. VRM's choice became the config defaults; KD gets a sweep of the same kind as a fairness "
            "check (row kd_tuned of the quality table). A point equal to an earlier one is the same run. "
            "Full results: `docs/quality_sweep.csv`.",
            "",
            markdown_table(["method", "stage", "options", "val top-1", ""], rows),
        ]
    )
