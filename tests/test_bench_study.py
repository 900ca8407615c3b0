"""The statistics and plans of the evidence studies (bench/study.py, equal_budget, robustness,
virtual_views): paired t-intervals against hand-computed values, equal budgets, reusable run names."""

import argparse
import math
import os

import pandas as pd
import pytest

from bench import equal_budget, robustness, study, virtual_views
from bench.study import command_line, fmt_paired, paired, t_quantile


def write_finished_run(run_dir: str, score: float) -> None:
    """The small files of a finished one-epoch run whose every accuracy is ``score`` (fake trainings)."""
    os.makedirs(run_dir, exist_ok=True)
    cols = ["test_top1", "train_top1", "val_top1", "epoch_time", "peak_mem_mb"]
    pd.DataFrame({"epoch": [1], **{c: [score] for c in cols}}).to_csv(
        os.path.join(run_dir, "metrics.csv"), index=False
    )
    with open(os.path.join(run_dir, "summary.json"), "w") as f:
        f.write('{"epochs_done": 1, "epochs": 1}')


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


def test_the_edge_rule_steps_outwards_by_the_grids_own_ratio():
    vrm = equal_budget.GRIDS["vrm"][1]  # λ 8 … 256, doubling; λ_IS and λ_IC move together
    assert equal_budget.tied_keys("vrm") == [["vrm.lambda_is", "vrm.lambda_ic"]]
    low = vrm[0]
    assert equal_budget.extensions("vrm", low, vrm) == [{"vrm.lambda_is": 4.0, "vrm.lambda_ic": 4.0}]
    assert equal_budget.extensions("vrm", vrm[-1], vrm) == [{"vrm.lambda_is": 512.0, "vrm.lambda_ic": 512.0}]
    assert equal_budget.extensions("vrm", vrm[2], vrm) == []  # inside: nothing to add
    # after one round at λ = 4, a choice of 4 steps on to 2, a choice of 8 is inside
    tried = [*vrm, {"vrm.lambda_is": 4.0, "vrm.lambda_ic": 4.0}]
    assert equal_budget.extensions("vrm", tried[-1], tried) == [{"vrm.lambda_is": 2.0, "vrm.lambda_ic": 2.0}]
    assert equal_budget.extensions("vrm", low, tried) == []
    # two independent knobs (KD: weight 1/4/16, T 2/4): one new point per knob at its edge, the other kept
    kd = equal_budget.GRIDS["kd"][1]
    corner = {"kd.kd_weight": 1.0, "kd.temperature": 4.0}
    assert equal_budget.extensions("kd", corner, kd) == [
        {"kd.kd_weight": 0.25, "kd.temperature": 4.0},
        {"kd.kd_weight": 1.0, "kd.temperature": 8.0},
    ]
    # DIST's β = γ move together, τ alone
    assert equal_budget.tied_keys("dist") == [["dist.beta", "dist.gamma"], ["dist.tau"]]


def test_stage1_runs_the_edge_rule_until_the_choice_is_inside(tmp_path, monkeypatch):
    """A fake validation score peaked at λ = 2: the grid (8 … 256) chooses 8, round 1 adds 4, round 2 adds 2;
    MAX_EXTENSIONS = 2 stops there, and the choice (2) is reported as still at the edge."""

    def fake_run_one(job, threads):
        run_dir, over = job
        lam = float(next(o for o in over if o.startswith("vrm.lambda_is=")).split("=")[1])
        write_finished_run(run_dir, 90.0 - abs(math.log2(lam) - 1.0))

    monkeypatch.setattr(study, "run_one", fake_run_one)
    args = equal_budget.parse_args(["--methods", "vrm", "--out", str(tmp_path), "--no-docs"])
    grid = equal_budget.stage1(args, str(tmp_path))
    lams = [p["vrm.lambda_is"] for p in grid.point]
    assert lams == [8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 4.0, 2.0]
    assert list(grid.extension) == [0] * 6 + [1, 2]
    chosen = equal_budget.choices(grid)
    assert chosen.point.iloc[0]["vrm.lambda_is"] == 2.0
    assert chosen.edge.iloc[0] == ["vrm.lambda_is", "vrm.lambda_ic"]
    # stage 2 never reuses the tuning seed
    assert args.tune_seed not in args.seeds and len(args.seeds) >= 5


def test_choices_from_another_folder_train_only_stage_2(tmp_path, monkeypatch, capsys):
    """The GPU script's path: stage 1 is read from a finished folder (nothing trained there), only the seeds
    of the chosen configuration train, under --out."""
    trained = []

    def fake_run_one(job, threads):
        run_dir, over = job
        trained.append(run_dir)
        lam = float(next(o for o in over if o.startswith("vrm.lambda_is=")).split("=")[1])
        write_finished_run(run_dir, 90.0 - abs(math.log2(lam) - 5.0))  # peaked at λ = 32: inside the grid

    monkeypatch.setattr(study, "run_one", fake_run_one)
    cpu, gpu = tmp_path / "cpu", tmp_path / "gpu"
    equal_budget.stage1(equal_budget.parse_args(["--methods", "vrm", "--out", str(cpu)]), str(cpu))
    trained.clear()
    argv = ["--methods", "vrm", "--out", str(gpu), "--choices-from", str(cpu), "--no-docs"]
    args = equal_budget.parse_args(argv)
    text = equal_budget.tables(args, str(gpu), {"best_test": 88.0})
    assert trained == [str(gpu / f"seed{s}" / "vrm_lambda_is32_lambda_ic32") for s in args.seeds]
    assert not (gpu / "val").exists() and "equal_budget_seeds" in text
    assert "seeds done" in capsys.readouterr().out  # stage 2's table, printed (--no-docs: not written)
    from bench import report

    assert not os.path.exists(report.DOC)  # --no-docs wrote no page (the scratch page of conftest.py)
    with pytest.raises(SystemExit):
        equal_budget.tables(
            equal_budget.parse_args(["--out", str(gpu), "--choices-from", str(tmp_path / "nope")]),
            str(gpu),
            {},
        )


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


def test_virtual_view_runs_of_another_vrm_live_in_folders_of_their_own(tmp_path, monkeypatch):
    """The options and the regime parts name their folders by --vrm, so a study at a tuned λ never reuses a
    run trained at another λ."""
    seen = []

    def fake_run_jobs(args, jobs, desc):
        seen.extend(d for d, _ in jobs)
        return pd.DataFrame({"run": [os.path.basename(d) for d, _ in jobs], "done": False})

    monkeypatch.setattr(virtual_views, "run_jobs", fake_run_jobs)
    for vrm in ([], ["vrm.lambda_is=8.0", "vrm.lambda_ic=8.0"]):
        args = virtual_views.parse_args(["--out", str(tmp_path), "--seeds", "0", "--vrm", *vrm])
        virtual_views.options_part(args, str(tmp_path))
        for regime in args.regimes:
            virtual_views.regime_part(args, str(tmp_path), *regime)
    assert len(seen) == len(set(seen))
    tops = {os.path.relpath(d, tmp_path).split(os.sep)[0] for d in seen}
    assert tops == {
        "options",
        "options_lambda_is8.0_lambda_ic8.0",
        "regime_pc50_e30",
        "regime_pc50_e30_lambda_is8.0_lambda_ic8.0",
        "regime_pc20_e40",
        "regime_pc20_e40_lambda_is8.0_lambda_ic8.0",
    }


def test_virtual_view_regimes_are_read_as_images_per_class_by_epochs():
    args = virtual_views.parse_args(["--regimes", "20x40", "5X60", "--seeds", "0", "1", "2", "3"])
    assert args.regimes == [(20, 40), (5, 60)]
    assert args.regime_seeds == [0, 1, 2, 3]  # defaults to --seeds
    assert virtual_views.parse_args(["--regime-seeds", "0"]).regime_seeds == [0]
    for bad in ("20", "20x", "ax40", "0x40", "20x40x2"):
        with pytest.raises(SystemExit):
            virtual_views.parse_args(["--regimes", bad])


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
        write_finished_run(job[0], 1.0)

    monkeypatch.setattr(quality, "run_one", fake_run_one)
    for jobs in (1, 2, 8):
        out = tmp_path / f"jobs{jobs}"
        args = study.parse_study_args(study.study_parser(""), "x", ["--jobs", str(jobs), "--out", str(out)])
        study.ensure_teacher(args)
    assert seen == [quality.TEACHER_THREADS] * 3


def test_a_report_reads_a_committed_teacher_without_training_it(tmp_path, monkeypatch):
    """On a fresh machine the teacher's small files are committed and its checkpoint is not; a sitting
    retrains it, but --report-only must only read it (it once retrained the digits teacher)."""
    from bench import quality

    def no_training(job, threads):
        raise AssertionError("--report-only trained a run")

    monkeypatch.setattr(quality, "run_one", no_training)
    args = study.parse_study_args(study.study_parser(""), "x", ["--out", str(tmp_path), "--report-only"])
    run = os.path.join(study.REPO, study.teacher_run(args))
    write_finished_run(run, 97.5)
    before = sorted(os.listdir(run))
    assert study.ensure_teacher(args)["best_test"] == 97.5
    assert sorted(os.listdir(run)) == before


def test_regime_table_pairs_gap_and_test_with_vrm_without_views():
    """Hand-computed with t(0.975, 2) = 4.303: Δ gap = [−6, −9, −9], mean −8, sd √3, half-width 4.303;
    Δ test = [1, 3, 2], mean 2, sd 1, half-width 4.303/√3 = 2.484."""
    df = pd.DataFrame(
        {
            "variant": ["vrm_no_virtual"] * 3 + ["vrm"] * 3,
            "seed": [0, 1, 2] * 2,
            "done": True,
            "last_train": [90.0, 92.0, 91.0, 85.0, 86.0, 84.0],
            "last_test": [80.0, 80.0, 80.0, 81.0, 83.0, 82.0],
            "val_score": [79.0, 79.0, 79.0, 80.0, 80.0, 80.0],
        }
    )
    table = virtual_views.regime_markdown(df)
    row = next(line for line in table.splitlines() if line.startswith("| vrm |"))
    assert "-8.00 [-12.30, -3.70] ✗" in row
    assert "+2.00 [-0.48, +4.48]" in row
    ref = next(line for line in table.splitlines() if line.startswith("| vrm_no_virtual |"))
    assert ref.count("(reference)") == 2


def test_augment_check_pairs_each_methods_gain_and_their_difference():
    """Hand-computed with t(0.975, 2) = 4.303: VRM's gains [1, 2, 1] → 1.33 ± 1.43; DIST's [1, 0, −1] →
    0 ± 2.48; their difference [0, 2, 2] → 1.33 ± 4.303 · 1.1547 / √3 = 2.87."""
    opts = pd.DataFrame(
        {
            "variant": ["vrm"] * 3 + ["real_plain"] * 3 + ["no_virtual"] * 3,
            "seed": [0, 1, 2] * 3,
            "done": True,
            "val_score": [80.0, 81.0, 82.0, 81.0, 83.0, 83.0, 50.0, 50.0, 50.0],
        }
    )
    aug = pd.DataFrame(
        {
            "variant": ["dist"] * 3 + ["dist_real_plain"] * 3,
            "seed": [0, 1, 2] * 2,
            "done": True,
            "val_score": [78.0, 78.0, 78.0, 79.0, 78.0, 77.0],
        }
    )
    lines = virtual_views.augment_markdown(opts, aug).splitlines()
    row = {line.split("|")[1].strip(): line for line in lines[2:]}
    assert "+1.33 [-0.10, +2.77]" in row["vrm"] and "3/3" in row["vrm"]
    assert "+0.00 [-2.48, +2.48]" in row["dist"]
    assert "+1.33 [-1.54, +4.20]" in row["VRM's gain − DIST's gain"]


def test_robustness_table_charges_each_method_the_corruption_cost_beyond_vrm_without_uep(tmp_path):
    """Last column, by hand: VRM without UEP loses 2 points on every seed; KD loses 1, 0.5, 1; so KD loses
    1, 1.5, 1 points less: mean 7/6, sd 0.2887, t(2) = 4.3027 → half-width 0.7171 → [+0.45, +1.88]."""
    args = robustness.parse_args(
        ["--fractions", "0", "0.2", "--seeds", "0", "1", "2", "--out", str(tmp_path)]
    )
    last = {
        ("vrm_no_uep", 0.0): [80.0, 81.0, 82.0],
        ("vrm_no_uep", 0.2): [78.0, 79.0, 80.0],
        ("kd", 0.0): [70.0, 71.0, 72.0],
        ("kd", 0.2): [69.0, 70.5, 71.0],
    }
    rows = [
        {"fraction": f, "method": m, "seed": s, "done": True, "best_test": v[s], "last_test": v[s]}
        for (m, f), v in last.items()
        for s in range(3)
    ]
    text = robustness.markdown(args, pd.DataFrame(rows), [], 88.0)
    cells = {}  # (corrupted images, method) → the row's cells
    for line in text.splitlines():
        row = [x.strip() for x in line.strip("|").split("|")]
        if line.startswith("| ") and row[0].endswith("%"):
            cells[row[0], row[1]] = row
    assert cells["20%", "kd"][-2] == "-0.83 [-1.55, -0.12] ✗"  # KD against its clean run: -1, -0.5, -1
    assert cells["20%", "kd"][-1] == "+1.17 [+0.45, +1.88] ✓"
    assert cells["20%", "vrm_no_uep"][-1] == "—"  # no cost difference against itself
    assert cells["0%", "kd"][-1] == "—"
