"""Does VRM work? Distillation quality of VRM, its ablations and the baselines on one budget.

    python -m bench.quality                 # the default benchmark (< 2 h on a 2-core CPU)
    python -m bench.quality --quick         # smoke check in minutes
    python -m bench.quality --dataset digits --per-class 100 --val-per-class 20 --teacher resnet14

Protocol: a low-data regime (``--per-class`` training images per class, with ``--val-per-class`` held out
of the training set for choosing hyper-parameters) and the full official test set. One teacher is trained
once by this script (reused from ``--out`` when present). Every method uses the same student, epochs,
optimizer, schedule and augmentation; baselines use their authors' published loss weights (the config
defaults). VRM's defaults come from a small sweep scored on the validation split only (``--sweep``).
Each run is an ordinary run directory under ``--out`` (the app's Runs and Ablations views open it), and
finished runs are reused, so an interrupted benchmark continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
from tqdm.auto import tqdm

from bench.quality_plan import SWEEP_BASE, ablations, baseline_methods, point_key, sweep_name, sweep_stages
from bench.report import machine, write_section

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(REPO, "docs")


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="fashion_mnist")
    ap.add_argument("--data-root", default=None)
    ap.add_argument(
        "--per-class", type=int, default=300, help="training images per class (after the val split)"
    )
    ap.add_argument("--val-per-class", type=int, default=50)
    ap.add_argument("--teacher", default="resnet20")
    ap.add_argument("--student", default="resnet8")
    ap.add_argument("--teacher-per-class", type=int, default=1500)
    ap.add_argument("--teacher-epochs", type=int, default=6)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument(
        "--sweep",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the validation sweep that picks VRM's hyper-parameters",
    )
    ap.add_argument(
        "--vrm",
        nargs="*",
        default=[],
        help="VRM options (key=value) for the table; default: the sweep's choice, or the config defaults",
    )
    ap.add_argument("--jobs", type=int, default=1, help="runs in parallel (threads split between them)")
    ap.add_argument(
        "--only",
        nargs="+",
        default=None,
        metavar="LABEL",
        help="run and tabulate only these rows (e.g. kd fitnet at); same budget and seeds as the full table",
    )
    ap.add_argument(
        "--quick", action="store_true", help="smoke check: 50/class, 2 epochs, 1 seed, tiny sweep"
    )
    ap.add_argument("--out", default=os.path.join(REPO, "runs", "quality"))
    ap.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md")
    ap.add_argument("--section", default=None, help="docs section name (default: quality or quality_quick)")
    quick = dict(
        per_class=50,
        val_per_class=10,
        epochs=2,
        seeds=[0],
        teacher_per_class=200,
        teacher_epochs=2,
        out=os.path.join(REPO, "runs", "quality_quick"),
    )
    if ap.parse_known_args(argv)[0].quick:  # smaller defaults; options given on the command line win
        ap.set_defaults(**quick)
    args = ap.parse_args(argv)
    args.command = " ".join(["python -m bench.quality", *(sys.argv[1:] if argv is None else argv)])
    return args


def common(args) -> list[str]:
    return [
        f"data.name={args.dataset}",
        *([f"data.root={args.data_root}"] if args.data_root else []),
        f"data.subset_per_class={args.per_class}",
        f"data.val_per_class={args.val_per_class}",
        f"data.batch_size={args.batch_size}",
        "data.eval_batch_size=500",
        f"optim.epochs={args.epochs}",
        f"optim.lr={args.lr}",
        "optim.schedule=cosine",
        "optim.warmup_epochs=1",
        f"model.name={args.student}",
        "snapshot.epochs=[]",
        "snapshot.train_batches=0",
        "snapshot.probe_size=32",
    ]


def portable_path(path: str) -> str:
    """A folder inside the repository as a repository-relative path (the runs start in REPO), so the
    committed config.yaml of a benchmark run names no machine's absolute path; others unchanged."""
    path = os.path.abspath(path)
    return os.path.relpath(path, REPO) if os.path.commonpath([path, REPO]) == REPO else path


def run_one(job: tuple[str, list[str]], threads: int) -> dict:
    """Train one run in a fresh process (its own peak-memory reading); reuse it when already finished."""
    run_dir, overrides = job
    summary = os.path.join(run_dir, "summary.json")
    if os.path.isfile(summary):
        with open(summary) as f:
            s = json.load(f)
        if s.get("epochs_done") == s.get("epochs"):
            return s
    cmd = [
        sys.executable,
        "-m",
        "vrm_train.cli",
        "distill",
        *overrides,
        f"out_dir={portable_path(os.path.dirname(run_dir))}",
        f"name={os.path.basename(run_dir)}",
        "--no-progress",
    ]
    if os.path.isdir(run_dir):
        cmd.append("--resume")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(f"run {run_dir} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def run_all(jobs: list[tuple[str, list[str]]], args, desc: str) -> list[dict]:
    threads = max(1, (os.cpu_count() or 2) // args.jobs)
    bar = tqdm(total=len(jobs), desc=desc)
    results: list[dict] = [None] * len(jobs)  # type: ignore[list-item]

    def work(i_job):
        i, job = i_job
        results[i] = run_one(job, threads)
        bar.update(1)

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        list(pool.map(work, enumerate(jobs)))
    bar.close()
    return results


def teacher_overrides(args) -> list[str]:
    """The benchmark teacher's run options (bench.quality and the evidence studies train the same one)."""
    return [
        "method=vanilla",
        f"data.name={args.dataset}",
        *([f"data.root={args.data_root}"] if args.data_root else []),
        f"data.subset_per_class={args.teacher_per_class}",
        f"data.val_per_class={args.val_per_class}",
        f"optim.epochs={args.teacher_epochs}",
        "optim.schedule=cosine",
        "optim.warmup_epochs=1",
        f"model.name={args.teacher}",
        "snapshot.train_batches=0",
    ]


def train_teacher(args) -> str:
    run = os.path.join(args.out, "teacher")
    train_teacher_run(run, teacher_overrides(args))
    return run


# Training is bit-identical run to run for a fixed number of intra-op threads, but not across thread counts
# (the reductions' order changes: measured on digits, 1 vs 2 threads, from the first epoch). A teacher must
# retrain identically on a fresh machine, so it always uses this many, whatever --jobs says.
TEACHER_THREADS = 2


def train_teacher_run(run: str, over: list[str]) -> None:
    """Train (or reuse) a benchmark's teacher with :data:`TEACHER_THREADS` threads."""
    with tqdm(total=1, desc="teacher") as bar:
        run_one((run, over), TEACHER_THREADS)
        bar.update(1)


def metrics(run_dir: str) -> dict:
    m = pd.read_csv(os.path.join(run_dir, "metrics.csv"))
    return {
        "best_test": m["test_top1"].max(),
        "last_test": m["test_top1"].iloc[-1],
        "last_train": m["train_top1"].iloc[-1],
        "val_score": m["val_top1"].tail(3).mean(),  # mean of the last 3 epochs: less noisy than one epoch
        "epoch_time": m["epoch_time"].mean(),
        "peak_mem_mb": m["peak_mem_mb"].max(),
    }


def run_sweep(args, teacher: str, method: str = "vrm") -> tuple[list[str], pd.DataFrame]:
    """Coordinate-wise sweep of ``method``'s options on the validation split (seed = first seed)."""
    chosen: dict[str, str] = {}
    rows = []
    # effective options -> run directory (a point equal to an earlier one is reused)
    done: dict[tuple, str] = {}
    for stage, candidates in sweep_stages(args.quick, method):
        jobs, names = [], []
        for cand in candidates:
            opts = {**chosen, **cand}
            full = {**SWEEP_BASE[method], **opts}
            name = sweep_name(opts, method)
            run_dir = done.setdefault(point_key(full), os.path.join(args.out, "sweep", name))
            names.append((os.path.basename(run_dir), cand, opts))
            over = [
                *common(args),
                f"method={method}",
                f"teacher.name={args.teacher}",
                f"teacher.checkpoint={teacher}",
                f"seed={args.seeds[0]}",
                *[f"{k}={v}" for k, v in full.items()],
            ]
            jobs.append((run_dir, over))
        run_all(list(dict(jobs).items()), args, f"{method} sweep: {stage}")
        scored = []
        for (name, cand, _opts), (run_dir, _) in zip(names, jobs, strict=True):
            m = metrics(run_dir)
            rows.append(
                {"method": method, "stage": stage, "run": name, **{k: str(v) for k, v in cand.items()}, **m}
            )
            scored.append((m["val_score"], cand))
        best = max(scored, key=lambda x: x[0])[1]
        chosen.update(best)
    return [f"{k}={v}" for k, v in {**SWEEP_BASE[method], **chosen}.items()], pd.DataFrame(rows)


def main(argv=None) -> None:
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    teacher = train_teacher(args)
    t_metrics = metrics(teacher)
    vrm_opts, sweep, tuned = list(args.vrm), None, []
    if args.sweep and not vrm_opts:
        vrm_opts, sweep = run_sweep(args, teacher)
    if args.sweep:  # fairness check: KD with its own validation sweep of the same kind
        kd_opts, kd_sweep = run_sweep(args, teacher, "kd")
        sweep = pd.concat([sweep, kd_sweep]) if sweep is not None else kd_sweep
        tuned = [("kd_tuned", "kd", kd_opts)]
    jobs, labels = [], []
    t_over = [f"teacher.name={args.teacher}", f"teacher.checkpoint={teacher}"]
    for seed in args.seeds:
        for label, method, extra in [*baseline_methods(), *tuned, *ablations(vrm_opts)]:
            over = [*common(args), f"method={method}", *t_over, f"seed={seed}", *extra]
            if method == "vrm":
                over += [o for o in vrm_opts if o.split("=")[0] not in {e.split("=")[0] for e in extra}]
            if args.only is not None and label not in args.only:
                continue
            jobs.append((os.path.join(args.out, f"seed{seed}", label), over))
            labels.append(label)
    run_all(jobs, args, "methods × seeds")
    per_run = pd.DataFrame([{"label": lab, **metrics(j[0])} for lab, j in zip(labels, jobs, strict=True)])
    per_run.to_csv(os.path.join(args.out, "runs.csv"), index=False)
    report(args, per_run, sweep, vrm_opts, t_metrics, time.time() - t0)


def report(
    args, per_run: pd.DataFrame, sweep: pd.DataFrame | None, vrm_opts, t_metrics, seconds: float
) -> None:
    from bench.quality_report import quality_markdown, sweep_markdown

    text = quality_markdown(args, per_run, vrm_opts, t_metrics, seconds, machine())
    print(text)
    if sweep is not None:
        sweep_text = sweep_markdown(args, sweep)
        print(sweep_text)
    if args.no_docs:
        return
    section = args.section or ("quality_quick" if args.quick else "quality")
    write_section(section, text)
    if sweep is not None:
        write_section(f"{section}_sweep", sweep_text)
        sweep.to_csv(os.path.join(DOCS, f"{section}_sweep.csv"), index=False)


if __name__ == "__main__":
    main()
