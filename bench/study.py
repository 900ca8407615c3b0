"""Plumbing shared by the evidence studies (bench/equal_budget.py, bench/virtual_views.py,
bench/robustness.py): one protocol, one teacher, resumable run folders, paired statistics.

Every run is an ordinary run directory under ``bench/results/<study>/<run>/``; a run whose summary says it
finished is reused, never retrained, so a study is one command that continues where the last sitting
stopped. Only the small files of a run (config.yaml, metrics.csv, summary.json) are committed
(.gitignore keeps checkpoints and snapshots out). The teacher is trained once into ``runs/studies/teacher``
(not committed; a fresh machine retrains it from the same seed and the study checks its accuracy against
``bench/results/teacher.json``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
from tqdm.auto import tqdm

from bench.quality import (
    REPO,
    common,
    metrics,
    portable_path,
    run_one,
    teacher_overrides,
    train_teacher_run,
)
from bench.report import write_section

RESULTS = os.path.join(REPO, "bench", "results")
TEACHER_RUN = os.path.join("runs", "studies", "teacher")  # relative to the repository: portable configs
TEACHER_RECORD = os.path.join(RESULTS, "teacher.json")
METRICS = [
    "best_test",
    "last_test",
    "last_train",
    "val_score",
    "epoch_time",
    "peak_mem_mb",
]  # bench.quality.metrics


def add_protocol_args(ap: argparse.ArgumentParser) -> None:
    """The protocol of bench/quality.py (Fashion-MNIST, 300 images/class, resnet20 -> resnet8, 10 epochs)."""
    ap.add_argument("--dataset", default="fashion_mnist")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--per-class", type=int, default=300)
    ap.add_argument("--val-per-class", type=int, default=50)
    ap.add_argument("--teacher", default="resnet20")
    ap.add_argument("--student", default="resnet8")
    ap.add_argument("--teacher-per-class", type=int, default=1500)
    ap.add_argument("--teacher-epochs", type=int, default=6)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--jobs", type=int, default=1, help="runs in parallel (threads split between them)")
    ap.add_argument(
        "--no-docs", action="store_true", help="print the tables, do not write docs/benchmarks.md"
    )
    ap.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="a sitting's length: no run starts after this many minutes (runs under way finish)",
    )
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: tabulate the finished runs and list the missing ones",
    )


def study_parser(doc: str) -> argparse.ArgumentParser:
    """A study's parser: its module docstring as the description, then the protocol options."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_protocol_args(ap)
    return ap


def parse_study_args(ap: argparse.ArgumentParser, study: str, argv) -> argparse.Namespace:
    """Add the options every study ends with (``--out``, ``--section``), parse ``argv`` and record the
    study's command line for the docs (``args.command``)."""
    ap.add_argument("--out", default=None, help=f"results folder (default: bench/results/{study})")
    ap.add_argument("--section", default=study)
    args = ap.parse_args(argv)
    args.command = command_line(study, argv)
    return args


def run_study(study: str, args, tables: Callable[[argparse.Namespace, str, dict], str]) -> None:
    """The body of a study's ``main``: train (or reuse) the teacher, then ``tables(args, out, teacher)``
    trains the study's runs and returns its markdown, which is printed and written to its docs section
    (unless ``--no-docs``)."""
    out = results_dir(args, study)
    teacher = ensure_teacher(args)
    text = tables(args, out, teacher)
    print(text)
    if not args.no_docs:
        write_section(args.section, text)


def command_line(script: str, argv) -> str:
    """The study's command for the docs, without the options that do not change its results."""
    given = list(sys.argv[1:] if argv is None else argv)
    kept, skip = [], False
    for a in given:
        if skip:
            skip = False
        elif a == "--minutes":
            skip = True
        elif a not in ("--report-only", "--no-docs") and not a.startswith("--minutes="):
            kept.append(a)
    return " ".join([f"python -m bench.{script}", *kept])


def results_dir(args, study: str) -> str:
    """bench/results/<study> for the default protocol; a protocol of its own gets a folder of its own."""
    if getattr(args, "out", None):
        return args.out
    return os.path.join(RESULTS, study)


def ensure_teacher(args) -> dict:
    """Train (or reuse) the studies' teacher; returns its metrics. A retrained teacher whose best test
    accuracy differs from the recorded one means finished runs were distilled from another teacher: warn."""
    run = os.path.join(REPO, teacher_run(args))
    if getattr(args, "report_only", False):  # a report never trains, not even a teacher without checkpoint
        if finished(run):
            return metrics(run)
        if getattr(args, "out", None) or not os.path.isfile(TEACHER_RECORD):
            return {"best_test": math.nan}  # not trained yet: the tables say "nan"
        with open(TEACHER_RECORD) as f:
            return json.load(f)
    if finished(run) and not any(
        os.path.isfile(os.path.join(run, "checkpoints", f)) for f in ("student.pt", "last.pt")
    ):  # its small files were committed, its checkpoint was not (a fresh machine): train it again
        shutil.rmtree(run)  # git keeps the committed files: `git diff` then shows whether the retrain agrees
        print(f"{run}: no checkpoint here (small files only); training the teacher again", file=sys.stderr)
    # a fixed thread count: a fresh machine retrains the same teacher
    train_teacher_run(run, teacher_overrides(args))
    m = metrics(run)
    if getattr(args, "out", None):  # a protocol of its own: its own teacher, no record
        return m
    record = {"teacher": args.teacher, "dataset": args.dataset, "best_test": round(float(m["best_test"]), 4)}
    if args.dataset == "fashion_mnist" and args.teacher == "resnet20":
        if os.path.isfile(TEACHER_RECORD):
            with open(TEACHER_RECORD) as f:
                old = json.load(f)
            if abs(old["best_test"] - record["best_test"]) > 1e-6:
                print(
                    f"WARNING: the teacher in {TEACHER_RUN} reaches {record['best_test']:.2f} % but the committed "
                    f"results were distilled from one that reached {old['best_test']:.2f} % "
                    f"({TEACHER_RECORD}); runs of the two teachers are being mixed.",
                    file=sys.stderr,
                )
        else:
            os.makedirs(RESULTS, exist_ok=True)
            with open(TEACHER_RECORD, "w") as f:
                json.dump(record, f, indent=1)
    return m


def teacher_run(args) -> str:
    """Where the teacher lives: runs/studies/teacher (relative to the repository, so the configs that name
    it are portable), or <out>/teacher for a study given a results folder of its own (smoke checks)."""
    if not getattr(args, "out", None):
        return TEACHER_RUN
    return portable_path(os.path.join(args.out, "teacher"))


def distill_overrides(args, method: str, seed: int, extra: list[str]) -> list[str]:
    return [
        *common(args),
        f"method={method}",
        f"teacher.name={args.teacher}",
        f"teacher.checkpoint={teacher_run(args)}",
        f"seed={seed}",
        *extra,
    ]


def run_jobs(args, jobs: list[tuple[str, list[str]]], desc: str) -> pd.DataFrame:
    """Train (or reuse) every (run_dir, overrides) job; one row per job (order kept): ``done`` and the
    run's metrics (NaN for a run not finished, which happens only with ``--report-only``)."""
    unique = list(dict(jobs).items())
    if not args.report_only:
        _run_until(unique, args, desc)
    rows = []
    for d, _ in jobs:
        done = finished(d)
        rows.append({"run": os.path.basename(d), "done": done, **(metrics(d) if done else {})})
    return pd.DataFrame(rows, columns=["run", "done", *METRICS])


def deadline(args) -> float | None:
    """The time after which no run starts (``--minutes`` from the first call; shared by later calls)."""
    if getattr(args, "minutes", None) is None:
        return None
    if getattr(args, "_deadline", None) is None:
        args._deadline = time.time() + 60 * args.minutes
    return args._deadline


def _run_until(jobs: list[tuple[str, list[str]]], args, desc: str) -> None:
    """bench.quality's run_all with a sitting's deadline: unfinished jobs start only before it."""
    end = deadline(args)
    todo = [j for j in jobs if not finished(j[0])]
    threads = max(1, (os.cpu_count() or 2) // args.jobs)
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc=desc)

    def work(job):
        if end is not None and time.time() > end:
            return
        run_one(job, threads)
        bar.update(1)

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        list(pool.map(work, todo))
    bar.close()


def finished(run_dir: str) -> bool:
    path = os.path.join(run_dir, "summary.json")
    if not os.path.isfile(path):
        return False
    with open(path) as f:
        s = json.load(f)
    return s.get("epochs_done") == s.get("epochs")


def t_quantile(df: int) -> float:
    """The two-sided 95 % quantile of Student's t with ``df`` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(0.975, df))


def paired(a: pd.Series, b: pd.Series) -> dict:
    """Mean of the per-seed differences a − b with a 95 % t-interval (both indexed by seed; only seeds
    present in both count)."""
    d = (a - b).dropna()
    n = len(d)
    if n == 0:
        return {"n": 0, "mean": math.nan, "lo": math.nan, "hi": math.nan}
    if n == 1:
        return {"n": 1, "mean": float(d.iloc[0]), "lo": math.nan, "hi": math.nan}
    half = t_quantile(n - 1) * float(d.std(ddof=1)) / math.sqrt(n)
    return {"n": n, "mean": float(d.mean()), "lo": float(d.mean()) - half, "hi": float(d.mean()) + half}


def fmt_paired(p: dict) -> str:
    if p["n"] == 0:
        return "—"
    if p["n"] == 1:
        return f"{p['mean']:+.2f} (1 seed, no interval)"
    verdict = "" if p["lo"] <= 0 <= p["hi"] else (" ✓" if p["lo"] > 0 else " ✗")
    return f"{p['mean']:+.2f} [{p['lo']:+.2f}, {p['hi']:+.2f}]{verdict}"


def pm(values: pd.Series) -> str:
    v = values.dropna()
    if len(v) == 0:
        return "—"
    return f"{v.mean():.2f} ± {v.std(ddof=1):.2f}" if len(v) > 1 else f"{v.mean():.2f}"


def teacher_note(best_test: float) -> str:
    return "not trained yet" if math.isnan(best_test) else f"best test top-1 {best_test:.2f}"
