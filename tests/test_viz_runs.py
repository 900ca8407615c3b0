"""vrm_viz.runs / runstats / figures.runs on hand-written run folders with known numbers."""

import math
import os

import pandas as pd
import pytest
import torch
import yaml

from vrm_train.rundir import RunDir
from vrm_viz.figures.runs import (
    accuracy_figure,
    parcoords_dimension,
    parcoords_figure,
    seed_bars_figure,
    terms_figure,
)
from vrm_viz.runs import (
    RunError,
    check_snapshots,
    config_diff,
    discover_runs,
    open_run,
    read_snapshot,
    runs_table,
    scan_runs,
)
from vrm_viz.runstats import (
    accuracy_curves,
    default_runs,
    display_frame,
    loss_terms,
    options_frame,
    seed_groups,
    term_curves,
)


def make_run(root, name, *, method="vrm", seed=0, test=(50.0, 60.0), train=None, terms=None, **cfg):
    """A run folder as the trainer writes it: config.yaml, metrics.csv (one row per epoch), summary.json."""
    run = RunDir(os.path.join(root, name))
    os.makedirs(os.path.join(run.path, "checkpoints"), exist_ok=True)
    config = {
        "method": method,
        "name": name,
        "out_dir": str(root),
        "model": {"name": "resnet8"},
        "teacher": {"name": "resnet20", "checkpoint": "teacher_x"},
        "data": {"name": "fashion_mnist"},
        "optim": {"epochs": len(test)},
        "seed": seed,
        "kd": {"temperature": 4.0},
        "vrm": {"is_edges": "cross_view", "uep_ratio": 0.2, "lambda_ic": 1.0},
    }
    for key, value in cfg.items():  # section__key=value
        section, k = key.split("__")
        config[section][k] = value
    with open(run.config, "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f)
    terms = terms or {"ce": 1.0, method: 0.5}
    train = train if train is not None else [t + 12.0 for t in test]
    rows = [
        {"epoch": e + 1, **{t: v / (e + 1) for t, v in terms.items()}, "train_loss": 2.0 / (e + 1)}
        | {"train_top1": tr, "lr": 0.1, "test_top1": te, "test_loss": 1.0, "best_top1": max(test[: e + 1])}
        for e, (te, tr) in enumerate(zip(test, train, strict=True))
    ]
    if rows:
        run.write_metrics(rows)
        run.write_summary({"best_top1": max(test), "last_top1": test[-1], "epochs_done": len(test)})
    return run.path


@pytest.fixture
def folder(tmp_path):
    make_run(tmp_path, "vrm_a", seed=0, test=(50.0, 60.0, 58.0))
    make_run(tmp_path, "vrm_a_s1", seed=1, test=(52.0, 64.0, 62.0))
    make_run(tmp_path, "vrm_b", seed=0, test=(40.0, 45.0, 44.0), vrm__is_edges="all", vrm__uep_ratio=0.5)
    make_run(tmp_path, "kd_a", method="kd", test=(30.0, 35.0, 36.0), terms={"ce": 1.0, "kd": 0.3})
    return tmp_path


def test_open_run_reads_identity_and_accuracies(folder):
    run = open_run(folder / "vrm_a")
    assert (run.name, run.method, run.pair, run.dataset) == (
        "vrm_a",
        "vrm",
        "resnet20 → resnet8",
        "fashion_mnist",
    )
    assert run.best_top1 == 60.0 and run.last_top1 == 58.0 and run.epochs_done == 3
    assert run.status == "3 epochs, finished"


def test_runs_table_gap_and_options(folder):
    table = runs_table(discover_runs(folder)).set_index("run")
    assert list(table.index) == ["kd_a", "vrm_a", "vrm_a_s1", "vrm_b"]
    assert table.loc["vrm_a", "gap"] == pytest.approx(12.0)
    assert table.loc["vrm_b", "vrm.is_edges"] == "all"
    assert pd.isna(table.loc["kd_a", "vrm.is_edges"])  # an option of another method stays empty


def test_partial_run_opens_with_no_finished_epoch(tmp_path):
    make_run(tmp_path, "fresh", test=(), train=())
    run = open_run(tmp_path / "fresh")
    assert run.epochs_done == 0 and run.status == "no finished epoch yet"
    row = runs_table([run]).iloc[0]
    assert row.epochs == 0 and math.isnan(row.best_top1) and math.isnan(row.gap)
    assert accuracy_curves([run]).empty and seed_groups([run]).empty


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("method: [vrm\nmodel: {", "cannot read"),
        ("- just\n- a list\n", "not a vrm run config"),
        ("name: x\n", "not a vrm run config"),
        ("method: vrm\nmodel: 3\n", "malformed model"),
    ],
)
def test_corrupt_config_raises_run_error(tmp_path, content, message):
    path = make_run(tmp_path, "broken")
    with open(os.path.join(path, "config.yaml"), "w", encoding="utf-8") as f:
        f.write(content)
    with pytest.raises(RunError, match=message):
        open_run(path)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("summary.json", b"{oops", "cannot read"),
        ("summary.json", b"[1, 2]", "not a run summary"),
        ("metrics.csv", b"epoch\n\xff\xfe\x00", "cannot read"),
    ],
)
def test_corrupt_summary_or_metrics_raise_run_error(tmp_path, name, data, message):
    path = make_run(tmp_path, "broken")
    with open(os.path.join(path, name), "wb") as f:
        f.write(data)
    with pytest.raises(RunError, match=message):
        open_run(path)


def test_bad_paths_raise_run_error(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(RunError, match="no such"):
        discover_runs(tmp_path / "missing")
    with pytest.raises(RunError, match="is a file"):
        discover_runs(tmp_path / "file.txt")
    with pytest.raises(RunError, match="no run directories"):
        discover_runs(tmp_path / "empty")
    with pytest.raises(RunError, match="is a file"):
        open_run(tmp_path / "file.txt")
    with pytest.raises(RunError, match=r"no config\.yaml"):
        open_run(tmp_path / "empty")


def test_scan_runs_skips_broken_runs_and_reports_them(folder):
    with open(folder / "vrm_b" / "config.yaml", "w", encoding="utf-8") as f:
        f.write("method: [")
    runs, errors = scan_runs(folder)
    assert [r.name for r in runs] == ["kd_a", "vrm_a", "vrm_a_s1"]
    assert len(errors) == 1 and "vrm_b" in str(errors[0])
    with pytest.raises(RunError, match="vrm_b"):
        discover_runs(folder)


def test_discovery_depth_and_snapshot_only_runs(tmp_path):
    make_run(tmp_path / "a" / "b", "deep_ok")
    make_run(tmp_path / "a" / "b" / "c" / "d", "too_deep")
    live = tmp_path / "live"
    (live / "snapshots").mkdir(parents=True)
    (live / "config.yaml").write_text(yaml.safe_dump({"method": "live", "model": {"name": "resnet8"}}))
    runs = discover_runs(tmp_path)
    assert [r.name for r in runs] == ["deep_ok", "live"]
    assert "no training log" in runs[1].status


def test_config_diff_ignores_noise_and_unused_sections(folder):
    make_run(folder, "vanilla_a", method="vanilla")
    runs = discover_runs(folder)
    diff = config_diff(runs, ignore=("name", "out_dir"))
    assert "name" not in diff.index and "name" in config_diff(runs).index
    assert {"method", "seed", "vrm.is_edges", "vrm.uep_ratio", "kd.temperature"} <= set(diff.index)
    assert "vrm.lambda_ic" in diff.index  # vrm runs 1.0, others: not used (None)
    assert diff.loc["teacher.name", "vanilla_a"] is None  # a vanilla run has no teacher
    assert display_frame(diff).loc["teacher.name", "vanilla_a"] == "—"


def test_loss_terms_and_curves(folder):
    runs = discover_runs(folder)
    terms = loss_terms(runs)
    assert terms[:2] == ["train_loss", "test_loss"] and {"ce", "kd", "vrm"} <= set(terms)
    assert not {"lr", "best_top1", "train_top1"} & set(terms)
    curves = accuracy_curves(runs)
    assert len(curves) == 4 * 3 * 2 and set(curves.split) == {"train", "test"}
    kd = term_curves(runs, ["kd"])
    assert set(kd.run) == {"kd_a"} and kd.value.tolist() == pytest.approx([0.3, 0.15, 0.1])
    assert default_runs(runs) == ["kd_a", "vrm_a"]


def test_seed_groups_mean_and_sample_std(folder):
    groups = seed_groups(discover_runs(folder)).set_index("group")
    assert list(groups.index) == ["kd_a", "vrm_a", "vrm_b"]
    g = groups.loc["vrm_a"]
    assert g.n == 2 and g.seeds == "0, 1" and g.runs == "vrm_a, vrm_a_s1"
    assert g.best_mean == pytest.approx(62.0) and g.best_std == pytest.approx(math.sqrt(8.0))
    assert g.last_mean == pytest.approx(60.0) and g.last_std == pytest.approx(math.sqrt(8.0))
    assert groups.loc["vrm_b"].n == 1 and math.isnan(groups.loc["vrm_b"].best_std)


def test_options_frame_keeps_types(folder):
    frame = options_frame(discover_runs(folder)).set_index("run")
    assert frame.loc["vrm_b", "vrm.uep_ratio"] == 0.5 and frame.loc["kd_a", "vrm.uep_ratio"] is None
    assert frame.loc["vrm_a_s1", "best_top1"] == 64.0 and "name" not in frame


def _snapshot_run(tmp_path):
    path = make_run(tmp_path, "snappy")
    folder = os.path.join(path, "snapshots")
    os.makedirs(folder)
    torch.save({"weights": torch.zeros(3)}, os.path.join(folder, "probe_e000.pt"))
    with open(os.path.join(folder, "probe_e001.pt"), "wb") as f:
        f.write(b"not a zip")
    return open_run(path)


def test_foreign_and_truncated_snapshots_are_reported(tmp_path):
    run = _snapshot_run(tmp_path)
    status = check_snapshots(run).set_index("file").status
    assert "not a relation snapshot" in status["probe_e000.pt"]
    assert status["probe_e001.pt"] != "ok" and "probe_e001.pt" in status["probe_e001.pt"]
    with pytest.raises(RunError, match="not a relation snapshot"):
        read_snapshot(os.path.join(run.path, "snapshots", "probe_e000.pt"))
    with pytest.raises(RunError, match="no probe snapshot for epoch 7"):
        run.snapshot("probe", 7)


def test_accuracy_figure_solid_test_dashed_train(folder):
    fig = accuracy_figure(accuracy_curves(discover_runs(folder)[:2]))
    dashes = {t.name: t.line.dash for t in fig.data}
    assert dashes == {
        "kd_a · test": "solid",
        "kd_a · train": "dash",
        "vrm_a · test": "solid",
        "vrm_a · train": "dash",
    }
    assert fig.data[0].line.color == fig.data[1].line.color != fig.data[2].line.color


def test_terms_figure_one_subplot_per_term(folder):
    runs = discover_runs(folder)
    fig = terms_figure(term_curves(runs, ["train_loss", "kd", "vrm"]))
    assert [a.text for a in fig.layout.annotations] == ["train_loss", "kd", "vrm"]
    assert sum(t.showlegend for t in fig.data) == len(runs)  # one legend entry per run


def test_seed_bars_error_bars_are_the_std(folder):
    groups = seed_groups(discover_runs(folder))
    fig = seed_bars_figure(groups)
    best, last = fig.data
    assert list(best.y) == groups.best_mean.tolist() and "best" in best.name and "last" in last.name
    assert list(best.error_y.array) == groups.best_std.fillna(0.0).tolist()
    assert seed_bars_figure(groups, zoom=False).layout.yaxis.range is None
    low, high = fig.layout.yaxis.range  # zoomed to the data by default
    assert 0 < low < groups.last_mean.min() and high > groups.best_mean.max()


def test_parcoords_encodes_categories():
    dim = parcoords_dimension("vrm.is_edges", ["all", "cross_view", None, "all"])
    assert dim["ticktext"] == ["all", "cross_view", "—"] and dim["values"] == [0, 1, 2, 0]
    assert parcoords_dimension("lr", [0.1, 0.2]) == {"label": "lr", "values": [0.1, 0.2]}
    assert "ticktext" in parcoords_dimension("flag", [True, False])
    assert parcoords_dimension("ratio", [0.2, None])["ticktext"] == ["0.2", "—"]


def test_parcoords_figure_drops_unfinished_runs(folder):
    make_run(folder, "fresh", test=(), train=())
    frame = options_frame(discover_runs(folder))
    fig = parcoords_figure(frame, ["method", "vrm.uep_ratio"], color="last_top1")
    pc = fig.data[0]
    assert [d.label for d in pc.dimensions] == ["method", "vrm.uep_ratio", "best top1", "last top1"]
    assert len(pc.line.color) == 4 and pc.line.colorbar.title.text == "last top1"
