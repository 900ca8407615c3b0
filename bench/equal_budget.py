"""Does VRM win when everyone is tuned? Every method gets the same validation budget, then seeds.

    python -m bench.equal_budget --jobs 2              # resumable: finished runs are reused
    python -m bench.equal_budget --report-only         # tables from what has finished so far

Stage 1 (validation only, seed 0): each method trains the same number of configurations (GRID_SIZE) over
its own main knobs: loss weights and the temperature where it has one; VRM's λ grid reaches 256 (the old
sweep stopped at 16, its top). The score is validation top-1, mean of the last 3 epochs; the test set plays
no part in any choice. A choice at the edge of its grid is flagged: the grid should then be extended.
Stage 2: the ``--top`` methods by validation score, plus VRM and the best baseline, each at its chosen
configuration with ``--seeds`` (≥ 5), best and last test top-1, and *paired* differences against the best
baseline (the baseline with the highest validation score): the mean of the per-seed differences with a
95 % t-interval (✓: the interval is above 0, ✗: below).
Protocol: bench/quality.py's (Fashion-MNIST, 300 images/class, resnet20 -> resnet8, 10 epochs).
Results: bench/results/equal_budget/<run>/.
"""

from __future__ import annotations

import argparse
import itertools
import os

import pandas as pd

from bench.report import machine, markdown_table
from bench.study import (
    distill_overrides,
    fmt_paired,
    paired,
    parse_study_args,
    pm,
    run_jobs,
    run_study,
    study_parser,
    teacher_note,
)

GRID_SIZE = 6


def _grid(**axes) -> list[dict]:
    keys = list(axes)
    return [dict(zip(keys, v, strict=True)) for v in itertools.product(*axes.values())]


# Each method's grid over its main knobs, GRID_SIZE points each, in the method's config keys. KD and DKD use
# CE weight 1 (KD's earlier sweep preferred it over the published 0.1); DKD's warm-up is scaled to 10 epochs.
GRIDS: dict[str, tuple[list[str], list[dict]]] = {
    "kd": (["kd.ce_weight=1.0"], _grid(**{"kd.kd_weight": [1.0, 4.0, 16.0], "kd.temperature": [2.0, 4.0]})),
    "dkd": (["dkd.warmup=2"], _grid(**{"dkd.beta": [2.0, 8.0, 16.0], "dkd.temperature": [2.0, 4.0]})),
    "dist": (
        [],
        [
            {"dist.beta": w, "dist.gamma": w, "dist.tau": tau}
            for w, tau in itertools.product([1.0, 2.0, 4.0], [1.0, 4.0])
        ],
    ),
    "rkd": ([], _grid(**{"rkd.weight": [0.1, 0.3, 1.0, 3.0, 10.0, 30.0]})),
    "sp": ([], _grid(**{"sp.weight": [300.0, 1000.0, 3000.0, 10000.0, 30000.0, 100000.0]})),
    "pkt": ([], _grid(**{"pkt.weight": [3000.0, 10000.0, 30000.0, 100000.0, 300000.0, 1000000.0]})),
    "cc": ([], _grid(**{"cc.weight": [0.002, 0.006, 0.02, 0.06, 0.2, 0.6]})),
    "vrm": (
        [],
        [{"vrm.lambda_is": w, "vrm.lambda_ic": w} for w in (8.0, 16.0, 32.0, 64.0, 128.0, 256.0)],
    ),
}
BASELINES = ["kd", "dkd", "dist", "rkd", "sp", "pkt", "cc"]


def point_name(method: str, point: dict) -> str:
    parts = [f"{k.split('.', 1)[1]}{v:g}" for k, v in point.items()]
    return f"{method}_" + "_".join(parts)


def edge_keys(method: str, point: dict) -> list[str]:
    """The knobs of ``point`` that sit at the smallest or largest value of the method's grid."""
    grid = GRIDS[method][1]
    out = []
    for k, v in point.items():
        values = sorted({p[k] for p in grid})
        if len(values) > 1 and v in (values[0], values[-1]):
            out.append(k)
    return out


def parse_args(argv=None) -> argparse.Namespace:
    ap = study_parser(__doc__)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--top", type=int, default=3, help="methods (by validation score) that get every seed")
    ap.add_argument("--methods", nargs="+", default=list(GRIDS), choices=list(GRIDS))
    return parse_study_args(ap, "equal_budget", argv)


def stage1(args, out: str) -> pd.DataFrame:
    jobs, rows = [], []
    for method in args.methods:
        fixed, grid = GRIDS[method]
        for point in grid:
            extra = [*fixed, *(f"{k}={v}" for k, v in point.items())]
            run_dir = os.path.join(out, "val", point_name(method, point))
            jobs.append((run_dir, distill_overrides(args, method, args.seeds[0], extra)))
            rows.append({"method": method, "point": point})
    res = run_jobs(args, jobs, "equal budget: validation grid")
    return pd.concat([pd.DataFrame(rows), res], axis=1)


def choices(grid: pd.DataFrame) -> pd.DataFrame:
    """Per method: its best grid point by validation score (only methods whose whole grid finished)."""
    out = []
    for method, g in grid.groupby("method", sort=False):
        if not g.done.all():
            continue
        best = g.loc[g.val_score.idxmax()]
        out.append({"method": method, "point": best.point, "val_score": best.val_score})
    return pd.DataFrame(out, columns=["method", "point", "val_score"])


def stage2(args, out: str, chosen: pd.DataFrame) -> tuple[pd.DataFrame, str | None]:
    if chosen.empty:
        return pd.DataFrame(), None
    ranked = chosen.sort_values("val_score", ascending=False)
    bases = ranked[ranked.method.isin(BASELINES)]
    best_base = bases.method.iloc[0] if len(bases) else None
    keep = list(ranked.method.iloc[: args.top])
    for m in ("vrm", best_base):
        if m is not None and m in set(ranked.method) and m not in keep:
            keep.append(m)
    jobs, rows = [], []
    for method in keep:
        point = ranked.set_index("method").point[method]
        extra = [*GRIDS[method][0], *(f"{k}={v}" for k, v in point.items())]
        for seed in args.seeds:
            run_dir = os.path.join(out, f"seed{seed}", point_name(method, point))
            jobs.append((run_dir, distill_overrides(args, method, seed, extra)))
            rows.append({"method": method, "seed": seed})
    res = run_jobs(args, jobs, "equal budget: seeds")
    return pd.concat([pd.DataFrame(rows), res], axis=1), best_base


def markdown(args, grid, chosen, seeds, best_base, teacher) -> str:
    g_rows = []
    chosen_points = {m: p for m, p in zip(chosen.method, chosen.point, strict=True)}
    for r in grid.itertuples():
        opts = ", ".join(f"{k}={v:g}" for k, v in r.point.items())
        note = ""
        if chosen_points.get(r.method) == r.point:
            edge = edge_keys(r.method, r.point)
            note = "chosen" + (f" (at the grid's edge: {', '.join(edge)})" if edge else "")
        score = f"{r.val_score:.2f}" if r.done else "not run yet"
        g_rows.append([r.method, opts, score, note])
    n_done, n_all = int(grid.done.sum()), len(grid)
    parts = [
        "## Equal-budget comparison (validation-only tuning, then seeds)",
        "",
        f"Command: `{args.command}`  ",
        f"Machine: {machine()}  ",
        f"Protocol: {args.dataset}, {args.per_class} training images per class ({args.val_per_class} per class held "
        f"out for validation), full test set; teacher {args.teacher} ({teacher_note(teacher)}), student "
        f"{args.student}, {args.epochs} epochs, batch {args.batch_size}, SGD lr {args.lr} cosine, 1 warm-up epoch. "
        f"Stage 1: {GRID_SIZE} configurations per method over its own knobs, seed {args.seeds[0]}, scored by "
        "validation top-1 (mean of the last 3 epochs); the test set plays no part in any choice. "
        f"Finished: {n_done} of {n_all} stage-1 runs.",
        "",
        markdown_table(["method", "options", "val top-1", ""], g_rows),
    ]
    if seeds is not None and len(seeds):
        parts += ["", _seed_table(args, seeds, best_base, chosen_points)]
    else:
        parts += ["", "Stage 2 (seeds) starts when every method's grid has finished: not run yet."]
    return "\n".join(parts)


def _seed_table(args, seeds: pd.DataFrame, best_base: str, chosen_points: dict) -> str:
    done = seeds[seeds.done]
    base = done[done.method == best_base].set_index("seed")
    rows = []
    for method, g in seeds.groupby("method", sort=False):
        d = g[g.done].set_index("seed")
        opts = ", ".join(f"{k}={v:g}" for k, v in chosen_points[method].items())
        vs_best = "(reference)" if method == best_base else fmt_paired(paired(d.best_test, base.best_test))
        vs_last = "(reference)" if method == best_base else fmt_paired(paired(d.last_test, base.last_test))
        rows.append(
            [
                f"**{method}**" if method == "vrm" else method,
                opts,
                f"{len(d)}/{len(g)}",
                pm(d.best_test),
                pm(d.last_test),
                vs_best,
                vs_last,
            ]
        )
    head = [
        "method",
        "chosen options",
        "seeds done",
        "best test top-1",
        "last test top-1",
        f"Δ best vs {best_base} (95 % CI)",
        f"Δ last vs {best_base} (95 % CI)",
    ]
    return "\n".join(
        [
            f"Stage 2: seeds {args.seeds}; the top {args.top} methods by validation score, plus VRM and the best "
            f"baseline by validation score ({best_base}). Accuracy in %, mean ± std over the finished seeds. Δ = mean "
            "of the per-seed differences (same seeds, paired) with a 95 % t-interval; ✓ / ✗: the interval lies "
            "above / below 0, otherwise the data do not separate the two.",
            "",
            markdown_table(head, rows),
        ]
    )


def tables(args, out: str, teacher: dict) -> str:
    grid = stage1(args, out)
    chosen = choices(grid)
    seeds, best_base = (None, None)
    if set(chosen.method) == set(args.methods):
        seeds, best_base = stage2(args, out, chosen)
    return markdown(args, grid, chosen, seeds, best_base, teacher["best_test"])


def main(argv=None) -> None:
    run_study("equal_budget", parse_args(argv), tables)


if __name__ == "__main__":
    main()
