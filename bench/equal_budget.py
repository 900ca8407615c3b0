"""Does VRM win when everyone is tuned? Every method gets the same validation budget, then seeds.

    python -m bench.equal_budget --jobs 2              # resumable: finished runs are reused
    python -m bench.equal_budget --report-only         # tables from what has finished so far

Stage 1 (validation only, seed 0): each method trains the same number of configurations (GRID_SIZE) over
its own main knobs: loss weights and the temperature where it has one; VRM's λ grid reaches 256 (the old
sweep stopped at 16, its top). The score is validation top-1, mean of the last 3 epochs; the test set plays
no part in any choice. Edge rule, the same for every method: while a method's choice sits at the edge of the
values it has tried for a knob (up to ``MAX_EXTENSIONS`` rounds), it also trains the point one grid step
beyond that edge (the grid's own ratio; knobs that move together, such as VRM's λ_IS = λ_IC, step together).
Stage 2: the ``--top`` methods by validation score, plus VRM and the best baseline, each at its chosen
configuration with ``--seeds`` (≥ 5, none of them the tuning seed, so no run that chose a configuration is
scored again), best and last test top-1, and *paired* differences against the best baseline (the baseline
with the highest validation score): the mean of the per-seed differences with a 95 % t-interval (✓: the
interval is above 0, ✗: below).
Protocol: bench/quality.py's (Fashion-MNIST, 300 images/class, resnet20 -> resnet8, 10 epochs).
Results: bench/results/equal_budget/<run>/.
"""

from __future__ import annotations

import argparse
import itertools
import os

import pandas as pd

from bench.report import machine, markdown_table, write_section
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
MAX_EXTENSIONS = 2  # rounds of the edge rule per method


def point_name(method: str, point: dict) -> str:
    parts = [f"{k.split('.', 1)[1]}{v:g}" for k, v in point.items()]
    return f"{method}_" + "_".join(parts)


def edge_keys(method: str, point: dict, tried: list[dict] | None = None) -> list[str]:
    """The knobs of ``point`` at the smallest or largest value among ``tried`` (default: the method's grid)."""
    tried = GRIDS[method][1] if tried is None else tried
    out = []
    for k, v in point.items():
        values = sorted({p[k] for p in tried})
        if len(values) > 1 and v in (values[0], values[-1]):
            out.append(k)
    return out


def tied_keys(method: str) -> list[list[str]]:
    """The method's knobs grouped by those that take equal values at every grid point (they move together)."""
    grid = GRIDS[method][1]
    groups: list[list[str]] = []
    for k in grid[0]:
        for g in groups:
            if all(p[k] == p[g[0]] for p in grid):
                g.append(k)
                break
        else:
            groups.append([k])
    return groups


def extensions(method: str, point: dict, tried: list[dict]) -> list[dict]:
    """The edge rule: for each group of knobs at the edge of the values tried, ``point`` with that group moved
    one step outwards; the step is the ratio between the edge value and its neighbour among those tried."""
    edge = set(edge_keys(method, point, tried))
    out = []
    for group in tied_keys(method):
        if not edge.intersection(group):
            continue
        k = group[0]
        values = sorted({p[k] for p in tried})
        v = point[k]
        neighbour = values[1] if v == values[0] else values[-2]
        new = dict(point)
        for key in group:
            new[key] = float(v * v / neighbour)
        if new not in tried:
            out.append(new)
    return out


def parse_args(argv=None) -> argparse.Namespace:
    ap = study_parser(__doc__)
    ap.add_argument("--tune-seed", type=int, default=0, help="the seed of stage 1 (the validation grid)")
    ap.add_argument(
        "--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5], help="stage 2's seeds (not the tuning seed)"
    )
    ap.add_argument("--top", type=int, default=3, help="methods (by validation score) that get every seed")
    ap.add_argument("--methods", nargs="+", default=list(GRIDS), choices=list(GRIDS))
    ap.add_argument(
        "--choices-from",
        default=None,
        help="take stage 1 (and so each method's choice) from this finished results folder and train only "
        "stage 2 under --out (e.g. the CPU study's choices rerun on a GPU: bench/gpu_equal_budget.sh)",
    )
    return parse_study_args(ap, "equal_budget", argv)


def _val_jobs(args, out: str, method: str, points: list[dict]) -> tuple[list, list[dict]]:
    fixed = GRIDS[method][0]
    jobs, rows = [], []
    for point in points:
        extra = [*fixed, *(f"{k}={v}" for k, v in point.items())]
        run_dir = os.path.join(out, "val", point_name(method, point))
        jobs.append((run_dir, distill_overrides(args, method, args.tune_seed, extra)))
        rows.append({"method": method, "point": point})
    return jobs, rows


def stage1(args, out: str) -> pd.DataFrame:
    """Every method's grid, then the edge rule's rounds (a round's runs start once the round before has
    finished for that method; with ``--report-only``, only the rounds already decided are listed)."""
    jobs, rows = [], []
    for method in args.methods:
        j, r = _val_jobs(args, out, method, GRIDS[method][1])
        jobs += j
        rows += r
    res = run_jobs(args, jobs, "equal budget: validation grid")
    grid = pd.concat([pd.DataFrame(rows), res], axis=1).assign(extension=0)
    for round_ in range(1, MAX_EXTENSIONS + 1):
        jobs, rows = [], []
        for method, g in grid.groupby("method", sort=False):
            if not g.done.all() or (g.extension == round_ - 1).sum() == 0:
                continue  # unfinished, or the round before added nothing: the choice is inside what was tried
            best = g.loc[g.val_score.idxmax()]
            j, r = _val_jobs(args, out, method, extensions(method, best.point, list(g.point)))
            jobs += j
            rows += r
        if not jobs:
            break
        res = run_jobs(args, jobs, f"equal budget: edge rule, round {round_}")
        grid = pd.concat([grid, pd.concat([pd.DataFrame(rows), res], axis=1).assign(extension=round_)])
        grid = grid.reset_index(drop=True)
    return grid


def choices(grid: pd.DataFrame) -> pd.DataFrame:
    """Per method: its best point by validation score (only methods whose every run finished), and the
    knobs at which it still sits at the edge of what was tried."""
    out = []
    for method, g in grid.groupby("method", sort=False):
        if not g.done.all():
            continue
        best = g.loc[g.val_score.idxmax()]
        edge = edge_keys(method, best.point, list(g.point))
        out.append({"method": method, "point": best.point, "val_score": best.val_score, "edge": edge})
    return pd.DataFrame(out, columns=["method", "point", "val_score", "edge"])


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
    chosen_rows = chosen.set_index("method")
    order = {m: i for i, m in enumerate(GRIDS)}  # each method's rows together, its edge-rule rounds last
    grid = grid.sort_values(["method", "extension"], key=lambda c: c.map(order) if c.name == "method" else c)
    for r in grid.itertuples():
        opts = ", ".join(f"{k}={v:g}" for k, v in r.point.items())
        note = f"edge rule, round {r.extension}" if r.extension else ""
        if r.method in chosen_rows.index and chosen_rows.point[r.method] == r.point:
            edge = chosen_rows.edge[r.method]
            chosen_note = "chosen" + (f" (still at the edge: {', '.join(edge)})" if edge else "")
            note = f"{note}, {chosen_note}" if note else chosen_note
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
        f"Stage 1: {GRID_SIZE} configurations per method over its own knobs, seed {args.tune_seed}, scored by "
        "validation top-1 (mean of the last 3 epochs); the test set plays no part in any choice. Edge rule (every "
        f"method alike, up to {MAX_EXTENSIONS} rounds): a choice at the edge of the values tried also trains the "
        "point one grid step beyond it. "
        f"Finished: {n_done} of {n_all} stage-1 runs.",
        "",
        markdown_table(["method", "options", "val top-1", ""], g_rows),
    ]
    if seeds is None or not len(seeds):
        parts += ["", "Stage 2 (seeds) starts when every method's grid has finished: not run yet."]
    else:
        parts += ["", f"Stage 2 (seeds): the next section, `{args.section}_seeds`."]
    return "\n".join(parts)


def seeds_markdown(args, chosen, seeds, best_base, teacher) -> str:
    """Stage 2 as a section of its own (the README shows it; the grid above stays in docs/benchmarks.md)."""
    chosen_points = dict(zip(chosen.method, chosen.point, strict=True))
    return "\n".join(
        [
            "## Equal budget, stage 2: every method tuned on validation, then fresh seeds",
            "",
            f"Command: `{args.command}` (stage 1, the validation grid: section `{args.section}`)  ",
            f"Machine: {machine()}  ",
            f"Protocol: {args.dataset}, {args.per_class} training images per class, full test set; teacher "
            f"{args.teacher} ({teacher_note(teacher)}), student {args.student}, {args.epochs} epochs, batch "
            f"{args.batch_size}, SGD lr {args.lr} cosine. Each method at the configuration its own validation grid "
            f"chose ({GRID_SIZE} runs per method plus the edge rule, seed {args.tune_seed}).",
            "",
            _seed_table(args, seeds, best_base, chosen_points),
        ]
    )


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
            f"Stage 2: seeds {args.seeds} (the tuning seed, {args.tune_seed}, is not among them); the top {args.top} methods by validation score, plus VRM and the best "
            f"baseline by validation score ({best_base}). Accuracy in %, mean ± std over the finished seeds. Δ = mean "
            "of the per-seed differences (same seeds, paired) with a 95 % t-interval; ✓ / ✗: the interval lies "
            "above / below 0, otherwise the data do not separate the two.",
            "",
            markdown_table(head, rows),
        ]
    )


def tables(args, out: str, teacher: dict) -> str:
    if args.choices_from:
        if not os.path.isdir(os.path.join(args.choices_from, "val")):
            raise SystemExit(
                f"--choices-from {args.choices_from}: no stage-1 runs there (expected a val/ folder)"
            )
        grid = stage1(argparse.Namespace(**{**vars(args), "report_only": True}), args.choices_from)
    else:
        grid = stage1(args, out)
    chosen = choices(grid)
    seeds, best_base = (None, None)
    if set(chosen.method) == set(args.methods):
        seeds, best_base = stage2(args, out, chosen)
    if seeds is not None and len(seeds):
        text = seeds_markdown(args, chosen, seeds, best_base, teacher["best_test"])
        print(text)
        if not args.no_docs:
            write_section(f"{args.section}_seeds", text)
    return markdown(args, grid, chosen, seeds, best_base, teacher["best_test"])


def main(argv=None) -> None:
    run_study("equal_budget", parse_args(argv), tables)


if __name__ == "__main__":
    main()
