"""Statistics over runs for the Runs and Ablations pages: curves, loss terms, seed groups, options.

curves = accuracy_curves(runs)                # long table: run, epoch, split (train/test), top1
terms = term_curves(runs, loss_terms(runs))   # long table: run, epoch, term, value
groups = seed_groups(runs)                    # mean ± std of best/last test top-1 over seeds
frame = options_frame(runs)                   # differing options + accuracies, one row per run
"""

from __future__ import annotations

import math
import re

import pandas as pd

from vrm_viz.runs import Run, config_diff

MISSING = "—"  # an option that does not apply to a run's method


def option_text(v) -> str:
    """A config value as a category label: ``—`` when missing, lists as ``[a, b]``."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return MISSING
    return str(list(v)) if isinstance(v, (tuple, list)) else str(v)


NOT_LOSSES = {"epoch", "lr", "best_top1", "epoch_time", "images_per_s", "peak_mem_mb"}
NOISE_KEYS = ("name", "out_dir")  # differ between any two runs, mean nothing for a comparison


def loss_terms(runs: list[Run]) -> list[str]:
    """Every loss term (and training statistic) logged in the runs' metrics.csv: total losses first."""
    cols = {c for r in runs for c in r.metrics.columns}
    terms = {c for c in cols if c not in NOT_LOSSES and not c.endswith(("_top1", "_top5"))}
    first = [c for c in ("train_loss", "test_loss", "val_loss") if c in terms]
    return first + sorted(terms - set(first))


def accuracy_curves(runs: list[Run]) -> pd.DataFrame:
    """Long table ``run, epoch, split ("train" | "test"), top1`` of every finished epoch."""
    parts = [
        pd.DataFrame({"run": r.name, "epoch": r.metrics["epoch"], "split": split, "top1": r.metrics[col]})
        for r in runs
        for split, col in (("train", "train_top1"), ("test", "test_top1"))
        if col in r.metrics and len(r.metrics)
    ]
    return (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=["run", "epoch", "split", "top1"])
    )


def term_curves(runs: list[Run], terms: list[str]) -> pd.DataFrame:
    """Long table ``run, epoch, term, value`` of the chosen loss terms (runs lacking a term skip it)."""
    parts = [
        pd.DataFrame({"run": r.name, "epoch": r.metrics["epoch"], "term": t, "value": r.metrics[t]})
        for t in terms
        for r in runs
        if t in r.metrics and len(r.metrics)
    ]
    return (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=["run", "epoch", "term", "value"])
    )


def seed_groups(runs: list[Run]) -> pd.DataFrame:
    """Runs whose configs differ only in ``seed`` (and name/out_dir), one row per group.

    Columns: group (the first run's name without a ``_s<seed>`` suffix), runs, seeds, n, and mean/std
    over the group of ``best_top1`` (best test top-1 over epochs) and ``last_top1`` (final epoch).
    The std is the sample std (ddof=1): NaN for a group of one run. Runs without a finished epoch are left out.
    """
    groups: dict[str, list[Run]] = {}
    for r in runs:
        if r.epochs_done or "best_top1" in r.summary:
            flat = {k: v for k, v in r.flat_config().items() if k not in ("seed", *NOISE_KEYS)}
            groups.setdefault(repr(sorted(flat.items(), key=lambda kv: kv[0])), []).append(r)
    rows = []
    for members in groups.values():
        members = sorted(members, key=lambda r: (str(r.seed), r.name))
        best = pd.Series([r.best_top1 for r in members], dtype=float)
        last = pd.Series([r.last_top1 for r in members], dtype=float)
        rows.append(
            {
                "group": re.sub(r"_s\d+$", "", members[0].name),
                "runs": ", ".join(r.name for r in members),
                "seeds": ", ".join(str(r.seed) for r in members),
                "n": len(members),
                "best_mean": best.mean(),
                "best_std": best.std(ddof=1),
                "last_mean": last.mean(),
                "last_std": last.std(ddof=1),
            }
        )
    cols = ["group", "runs", "seeds", "n", "best_mean", "best_std", "last_mean", "last_std"]
    return pd.DataFrame(rows, columns=cols).sort_values("group", ignore_index=True)


def group_deltas(groups: pd.DataFrame, runs: list[Run], baseline: str) -> pd.DataFrame:
    """:func:`seed_groups` plus differences to the ``baseline`` group: "Δ best" / "Δ last" (difference of
    the means) and, over the seeds both groups ran, "Δ best (paired)" (mean of the per-seed differences),
    its std and the number of paired seeds. Paired differences cancel the seed's share of the noise."""
    if baseline not in set(groups.group):
        raise ValueError(f"baseline group {baseline!r} is not among {list(groups.group)}")
    by_name = {r.name: r for r in runs}

    def per_seed(row) -> dict:
        return {by_name[n].seed: by_name[n] for n in row.runs.split(", ") if n in by_name}

    base = groups.set_index("group").loc[baseline]
    base_seeds = per_seed(base)
    out = groups.copy()
    out["Δ best"] = groups.best_mean - base.best_mean
    out["Δ last"] = groups.last_mean - base.last_mean
    paired, paired_std, n_paired = [], [], []
    for row in groups.itertuples():
        seeds = per_seed(row)
        common = [s for s in seeds if s in base_seeds]
        d = pd.Series([seeds[s].best_top1 - base_seeds[s].best_top1 for s in common], dtype=float)
        paired.append(d.mean() if len(d) else float("nan"))
        paired_std.append(d.std(ddof=1) if len(d) > 1 else float("nan"))
        n_paired.append(len(d))
    out["Δ best (paired)"], out["Δ best (paired) std"], out["paired seeds"] = paired, paired_std, n_paired
    return out


def options_frame(runs: list[Run]) -> pd.DataFrame:
    """One row per run: ``run``, every option that differs between ``runs``, ``best_top1``, ``last_top1``.

    Option values keep their type (None where an option does not apply to a run's method)."""
    diff = config_diff(runs, ignore=NOISE_KEYS)
    out = diff.T.reset_index(names="run") if len(diff) else pd.DataFrame({"run": [r.name for r in runs]})
    out["best_top1"] = [r.best_top1 for r in runs]
    out["last_top1"] = [r.last_top1 for r in runs]
    return out


def default_axes(options: list[str], limit: int = 8) -> list[str]:
    """The options drawn by default in the options-vs-accuracy plot: not ``seed`` (it varies by design,
    not as an ablation), at most ``limit``."""
    return [o for o in options if o != "seed"][:limit]


def default_runs(runs: list[Run], limit: int = 6) -> list[str]:
    """Names of one run per method (the shortest name: the main run, not a seed copy or an ablation)."""
    best: dict[str, Run] = {}
    for r in runs:
        if r.method not in best or (len(r.name), r.name) < (len(best[r.method].name), best[r.method].name):
            best[r.method] = r
    return sorted(r.name for r in best.values())[:limit]


def ablation_runs(runs: list[Run]) -> list[str]:
    """Names of the VRM runs (the full method, its seeds and its ablations); all runs when there are none."""
    return [r.name for r in runs if r.method == "vrm"] or [r.name for r in runs]


def display_frame(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every cell as text (``—`` for None/NaN): config values mix types in a column."""
    return df.apply(lambda col: [option_text(v) for v in col])


def default_terms(terms: list[str], extra: int = 2) -> list[str]:
    """The total train/test losses and the first ``extra`` distillation terms (not the plain CE)."""
    totals = [t for t in terms if t in ("train_loss", "test_loss")]
    return totals + [t for t in terms if t not in ("train_loss", "test_loss", "val_loss", "ce")][:extra]
