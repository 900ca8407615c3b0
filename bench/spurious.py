"""Where does one corrupted teacher response go? The Learn VRM experiment over every sample of the demo runs.

    python -m bench.spurious

For the demo's VRM runs (data/demo) and two batches (the first training batch of epoch 1: an untrained
student; the probe batch of the last epoch: a trained one), each of the first ``--size`` samples in turn
gets a corrupted teacher (top logit swapped with the sample's least likely class, both views). For each UEP
rule at ``--ratio`` we measure the mean change of the *other* samples' logit gradients with pruning against
without (vrm_viz.spurious.experiment, the page's own function): the share of samples for which UEP protects
the others, and the median relative change (negative: UEP helps). No training; seconds on a CPU.
"""

from __future__ import annotations

import argparse
import os
import sys

import pandas as pd
from tqdm.auto import tqdm

from bench.report import machine, markdown_table, write_section
from vrm_viz.runs import DEMO_DIR, open_run
from vrm_viz.spurious import SCORED_RULES, experiment

RUNS = ["vrm_resnet8", "vrm_resnet8_s1", "vrm_no_pruning_resnet8", "vrm_no_ic_resnet8"]


def batches(run) -> list[tuple[str, object]]:
    train = run.snapshots[run.snapshots.kind == "train"].sort_values(["epoch", "batch"])
    out = []
    if len(train):
        e, b = int(train.epoch.iloc[0]), int(train.batch.iloc[0])
        out.append((f"training batch {b}, epoch {e}", run.snapshot("train", e, b)))
    probes = run.snapshot_epochs("probe")
    if probes:
        out.append((f"probe batch, epoch {probes[-1]}", run.snapshot("probe", probes[-1])))
    return out


def measure(args) -> pd.DataFrame:
    rules = list(SCORED_RULES)
    rows = []
    jobs = [
        (name, label, snap)
        for name in args.runs
        for label, snap in batches(open_run(os.path.join(DEMO_DIR, name)))
    ]
    for name, label, snap in tqdm(jobs, desc="runs × batches"):
        config = open_run(os.path.join(DEMO_DIR, name)).config
        n = min(args.size, snap.batch_size)
        b = slice(0, n)
        for k in range(n):
            for rule in rules:
                res = experiment(
                    snap.s[b],
                    snap.s_v[b],
                    snap.t[b],
                    snap.t_v[b],
                    config,
                    sample=k,
                    wrong_class=int(snap.t[k].argmin()),
                    strength=1.0,
                    uep=rule,
                    uep_ratio=args.ratio,
                )
                v = res["verdict"]
                pruned, total = res["pruned"]
                rows.append(
                    {
                        "run": name,
                        "batch": label,
                        "rule": rule,
                        "sample": k,
                        "with": v["with"],
                        "without": v["without"],
                        "helps": v["helps"],
                        "pruned_share": pruned / total,
                    }
                )
    return pd.DataFrame(rows)


def markdown(args, df: pd.DataFrame) -> str:
    rows = []
    for (run, batch, rule), g in df.groupby(["run", "batch", "rule"], sort=False):
        rel = g["with"] / g["without"] - 1
        rows.append(
            [
                run,
                batch,
                rule,
                f"{g.helps.mean():.0%} ({int(g.helps.sum())}/{len(g)})",
                f"{rel.median():+.0%}",
                f"{g.pruned_share.mean():.0%}",
            ]
        )
    head = [
        "run",
        "batch",
        "UEP rule",
        "samples where UEP protects the others",
        "median change of the others' disturbance",
        "corrupted sample's IS edges pruned",
    ]
    missing = [r for r in ("cross_entropy", "joint_entropy", "teacher_student") if r not in set(df.rule)]
    return "\n".join(
        [
            "## Spurious responses in the Learn VRM experiment (demo runs, no training)",
            "",
            f"Command: `python -m bench.spurious{' ' + ' '.join(args.argv) if args.argv else ''}`  ",
            f"Machine: {machine()}  ",
            f"Each of the first {args.size} samples of a batch in turn gets a corrupted teacher (its top logit swapped "
            f"with its least likely class, both views); UEP ratio {args.ratio}. Disturbance = mean change of the other "
            "samples' logit gradients (vrm_viz.spurious); UEP protects the others when their disturbance is smaller "
            "with pruning than without. Median change: the median over samples of with ÷ without − 1.",
            "",
            markdown_table(head, rows),
            *(["", f"Not measured: {', '.join(missing)} (not offered by this checkout)."] if missing else []),
        ]
    )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", default=RUNS)
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--ratio", type=float, default=0.4)
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args(argv)
    args.argv = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--no-docs"]
    text = markdown(args, measure(args))
    print(text)
    if not args.no_docs:
        write_section("spurious_demo", text)


if __name__ == "__main__":
    main()
