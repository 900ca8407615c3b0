"""The statistics and plans of the evidence studies (bench/study.py, equal_budget, robustness,
virtual_views): paired t-intervals against hand-computed values, equal budgets, reusable run names."""

import argparse
import math
import os

import pandas as pd
import pytest

from bench import equal_budget, robustness, study, virtual_views
from bench.study import command_line, fmt_paired, paired, t_quantile


def test_t_quantiles_match_the_table():
    # two-sided 95 % points of Student's t (any statistics table)
    assert t_quantile(1) == pytest.approx(12.706, abs=1e-3)
    assert t_quantile(2) == pytest.approx(4.303, abs=1e-3)
    assert t_quantile(4) == pytest.approx(2.776, abs=1e-3)


def test_paired_interval_by_hand():
    a = pd.Series([82.0, 84.0, 86.0], index=[0, 1, 2])
    b = pd.Series([80.0, 81.0, 82.0], index=[0, 1, 2])  # differences 2, 3, 4: mean 3, sd 1
    p = paired(a, b)
    half = 4.303 * 1 / math.sqrt(3)  # 2.484
    assert p["n"] == 3 and p["mean"] == pytest.approx(3.0)
    assert p["lo"] == pytest.approx(3 - half, abs=1e-3) and p["hi"] == pytest.approx(3 + half, abs=1e-3)
    assert fmt_paired(p).endswith("✓")  # the interval [0.52, 5.48] lies above 0
    assert fmt_paired(paired(b, a)).endswith("✗")


def test_paired_uses_only_common_seeds_and_says_when_it_cannot_tell():
    a = pd.Series([1.0, 5.0, 2.0], index=[0, 1, 2])
    b = pd.Series([2.0, 3.0], index=[0, 1])
    p = paired(a, b)  # differences -1 and +2 on seeds 0, 1; seed 2 has no partner
    assert p["n"] == 2 and p["mean"] == pytest.approx(0.5)
    assert p["lo"] < 0 < p["hi"] and not fmt_paired(p).endswith(("✓", "✗"))
    one = paired(a.iloc[:1], b.iloc[:1])
    assert one["n"] == 1 and "no interval" in fmt_paired(one)
    assert fmt_paired(paired(a.iloc[:0], b)) == "—"


def test_every_method_gets_the_same_validation_budget():
    sizes = {m: len(grid) for m, (_, grid) in equal_budget.GRIDS.items()}
    assert set(sizes) == {"kd", "dkd", "dist", "rkd", "sp", "pkt", "cc", "vrm"}
    assert set(sizes.values()) == {equal_budget.GRID_SIZE}
    lambdas = {p["vrm.lambda_is"] for p in equal_budget.GRIDS["vrm"][1]}
    assert max(lambdas) > 16  # the old grid stopped at its top, 16


def test_grid_edges_are_flagged():
    grid = equal_budget.GRIDS["vrm"][1]
    assert equal_budget.edge_keys("vrm", grid[-1]) == ["vrm.lambda_is", "vrm.lambda_ic"]
    assert equal_budget.edge_keys("vrm", grid[2]) == []
    names = [equal_budget.point_name(m, p) for m, (_, g) in equal_budget.GRIDS.items() for p in g]
    assert len(set(names)) == len(names)  # one run folder per point: finished runs are found again


def test_robustness_plan_covers_every_fraction_seed_and_method(tmp_path):
    args = robustness.parse_args(["--fractions", "0", "0.1", "--seeds", "0", "1", "--out", str(tmp_path)])
    jobs, rows, missing = robustness.plan(args, str(tmp_path))
    labels = {r["method"] for r in rows}
    assert labels | set(missing) == {m[0] for m in robustness.METHODS}
    assert len(jobs) == len(labels) * 2 * 2 and len({d for d, _ in jobs}) == len(jobs)
    for d, over in jobs:
        frac = "0.1" if "/f0.1/" in d else "0"
        assert f"data.corrupt_teacher_fraction={float(frac)}" in over


def test_virtual_view_variants_change_one_thing_each():
    labels = [v[0] for v in virtual_views.VARIANTS]
    assert labels[0] == "vrm" and virtual_views.VARIANTS[0][1] == []
    assert all(len(opts) == 1 for _, opts in virtual_views.VARIANTS[1:])
    with pytest.raises(SystemExit):
        virtual_views.parse_args(["--variants", "nope"])


def test_command_line_keeps_what_changes_results():
    argv = ["--jobs", "2", "--minutes", "30", "--seeds", "0", "1", "--report-only", "--minutes=5"]
    assert command_line("robustness", argv) == "python -m bench.robustness --jobs 2 --seeds 0 1"


def test_no_run_starts_after_the_sitting(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(study, "run_one", lambda job, threads: started.append(job[0]))
    jobs = [(str(tmp_path / f"r{i}"), []) for i in range(3)]
    args = argparse.Namespace(jobs=1, minutes=0.0, report_only=False)
    res = study.run_jobs(args, jobs, "t")
    assert started == [] and not res.done.any() and len(res) == 3
    args = argparse.Namespace(jobs=1, minutes=None, report_only=False)
    study.run_jobs(args, jobs, "t")
    assert started == [d for d, _ in jobs]
    started.clear()
    study.run_jobs(argparse.Namespace(jobs=1, minutes=None, report_only=True), jobs, "t")
    assert started == []  # --report-only trains nothing


def test_teacher_path_is_portable_inside_the_repository(tmp_path):
    inside = argparse.Namespace(out=os.path.join(study.REPO, "bench", "results", "x"))
    assert study.teacher_run(inside) == os.path.join("bench", "results", "x", "teacher")
    assert study.teacher_run(argparse.Namespace(out=str(tmp_path))) == str(tmp_path / "teacher")
    assert study.teacher_run(argparse.Namespace(out=None)) == study.TEACHER_RUN


def test_the_teacher_trains_with_the_same_threads_whatever_the_jobs(tmp_path, monkeypatch):
    """Results depend on the intra-op thread count, so a resumed study's retrained teacher must use the
    same count in every sitting: TEACHER_THREADS, not cpu_count // --jobs."""
    from bench import quality

    seen = []

    def fake_run_one(job, threads):
        seen.append(threads)
        os.makedirs(job[0], exist_ok=True)
        cols = ["test_top1", "train_top1", "val_top1", "epoch_time", "peak_mem_mb"]
        pd.DataFrame({"epoch": [1], **{c: [1.0] for c in cols}}).to_csv(
            os.path.join(job[0], "metrics.csv"), index=False
        )
        with open(os.path.join(job[0], "summary.json"), "w") as f:
            f.write('{"epochs_done": 1, "epochs": 1}')

    monkeypatch.setattr(quality, "run_one", fake_run_one)
    for jobs in (1, 2, 8):
        out = tmp_path / f"jobs{jobs}"
        args = study.parse_study_args(study.study_parser(""), "x", ["--jobs", str(jobs), "--out", str(out)])
        study.ensure_teacher(args)
    assert seen == [quality.TEACHER_THREADS] * 3
