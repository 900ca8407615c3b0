"""The Runs and Ablations pages: widgets change what is shown; bad sources give a clear error, not a traceback."""

import json
import os
import shutil

import pytest
import torch
from apphelp import run_box
from streamlit.testing.v1 import AppTest

from vrm_viz.runs import DEMO_DIR, discover_runs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN = os.path.join(REPO, "vrm_app", "main.py")
RUNS, ABLATIONS = "views/runs.py", "views/ablations.py"


def open_page(page: str, source: str | None = None) -> AppTest:
    """The app on ``page``; with ``source``, typed into the sidebar box as a user would."""
    at = AppTest.from_file(MAIN, default_timeout=90)
    at.switch_page(page)
    at.run()
    if source is not None:
        at.sidebar.text_input(key="source_path").input(str(source)).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def chart_titled(at: AppTest, words: str) -> dict:
    found = [c for c in charts(at) if words in c["layout"].get("title", {}).get("text", "")]
    assert len(found) == 1, (
        f"expected one chart titled '{words}', got {[c['layout'].get('title') for c in charts(at)]}"
    )
    return found[0]


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


# ---------------------------------------------------------------- Runs


def test_runs_table_lists_every_demo_run():
    at = open_page(RUNS)
    table = at.dataframe[0].value
    assert sorted(table["run"]) == sorted(r.name for r in discover_runs(DEMO_DIR))
    assert {"method", "pair", "best_top1", "last_top1", "last_train_top1", "gap"} <= set(table.columns)
    assert (table["best_top1"] >= table["last_top1"] - 1e-9).all()


def test_runs_curves_follow_the_chosen_runs():
    at = open_page(RUNS)
    at.multiselect(key="runs_curves_runs").set_value(["vrm_resnet8"]).run()
    names = [t["name"] for t in chart_titled(at, "Top-1 accuracy")["data"]]
    assert names == ["vrm_resnet8 · test", "vrm_resnet8 · train"]
    at.multiselect(key="runs_curves_runs").set_value(["kd_resnet8", "vanilla_resnet8"]).run()
    data = chart_titled(at, "Top-1 accuracy")["data"]
    assert {t["name"] for t in data} == {
        f"{r} · {s}" for r in ("kd_resnet8", "vanilla_resnet8") for s in ("test", "train")
    }
    assert {t["line"]["dash"] for t in data} == {"solid", "dash"}
    at.multiselect(key="runs_curves_runs").set_value([]).run()
    assert not charts(at) and "Choose at least one run" in texts(at.info)


def test_runs_loss_terms_follow_the_chosen_terms():
    at = open_page(RUNS)
    at.multiselect(key="runs_curves_runs").set_value(["vrm_resnet8", "kd_resnet8"]).run()
    terms = at.multiselect(key="runs_terms")
    assert {"train_loss", "vrm", "kd", "vrm_ic", "vrm_is"} <= set(terms.options)
    terms.set_value(["kd", "vrm_ic"]).run()
    fig = chart_titled(at, "Loss terms")
    assert [a["text"] for a in fig["layout"]["annotations"]] == ["kd", "vrm_ic"]
    assert {t["name"] for t in fig["data"]} == {"kd_resnet8", "vrm_resnet8"}
    at.multiselect(key="runs_terms").set_value(["train_loss"]).run()
    assert [a["text"] for a in chart_titled(at, "Loss terms")["layout"]["annotations"]] == ["train_loss"]


def test_runs_detail_follows_the_chosen_run():
    at = open_page(RUNS)
    run_box(at, "runs_detail").set_value("teacher_resnet20").run()
    assert "**teacher_resnet20** · vanilla · resnet20" in texts(at.markdown)
    snaps = at.dataframe[-1].value
    assert set(snaps["kind"]) == {"probe", "train"} and (snaps["status"] == "ok").all()


# ---------------------------------------------------------------- Ablations


def test_ablations_default_to_vrm_runs_and_show_the_diff():
    at = open_page(ABLATIONS)
    chosen = at.multiselect(key="abl_runs").value
    assert {"vrm_resnet8", "vrm_resnet8_s1", "vrm_no_ic_resnet8"} <= set(
        chosen
    ) and "kd_resnet8" not in chosen
    diff = at.dataframe[0].value.set_index("option")
    assert {"seed", "vrm.is_edges", "vrm.uep", "vrm.lambda_ic"} <= set(
        diff.index
    ) and "name" not in diff.index
    assert diff.loc["vrm.lambda_ic", "vrm_no_ic_resnet8"] == "0.0"
    groups = at.dataframe[1].value.set_index("group")
    assert groups.loc["vrm_resnet8", "n"] == 2 and groups.loc["vrm_resnet8", "seeds"] == "0, 1"
    bars = chart_titled(at, "over seeds")["data"]
    assert [b["name"].split()[0] for b in bars] == ["best", "last"]


def test_ablations_follow_the_chosen_runs():
    at = open_page(ABLATIONS)
    at.multiselect(key="abl_runs").set_value(["kd_resnet8", "kd_resnet8_s1", "dist_resnet8"]).run()
    groups = at.dataframe[1].value.set_index("group")
    assert list(groups.index) == ["dist_resnet8", "kd_resnet8"] and groups.loc["kd_resnet8", "n"] == 2
    kd = [r for r in discover_runs(DEMO_DIR) if r.name.startswith("kd_resnet8")]
    mean = sum(r.best_top1 for r in kd) / 2
    assert groups.loc["kd_resnet8", "best_mean"] == pytest.approx(mean)
    bars = chart_titled(at, "over seeds")["data"][0]
    assert bars["x"] == ["dist_resnet8", "kd_resnet8"] and bars["error_y"]["array"][0] == 0.0
    at.multiselect(key="abl_runs").set_value(["kd_resnet8"]).run()
    assert "at least two runs" in texts(at.info) and not charts(at)


def test_ablations_zoom_axes_and_colour():
    at = open_page(ABLATIONS)
    low, _ = chart_titled(at, "over seeds")["layout"]["yaxis"]["range"]  # zoomed to the data by default
    assert low > 0
    at.checkbox(key="abl_zoom").uncheck().run()
    assert "range" not in chart_titled(at, "over seeds")["layout"]["yaxis"]
    axes = at.multiselect(key="abl_axes")
    assert "seed" in axes.options and "seed" not in axes.value  # no seed axis by default
    groups = next(d.value for d in at.dataframe if "Δ best" in d.value).set_index("group")
    base = at.selectbox(key="abl_baseline").value
    assert base == "vrm_resnet8" and groups.loc[base, "Δ best"] == 0
    other = groups.drop(index=base).iloc[0]
    assert other["Δ best"] == pytest.approx(other.best_mean - groups.loc[base, "best_mean"])
    at.multiselect(key="abl_axes").set_value(axes.options[:2]).run()
    pc = chart_titled(at, "Options vs accuracy")["data"][0]
    assert [d["label"] for d in pc["dimensions"]] == [*axes.options[:2], "best top1", "last top1"]
    at.radio(key="abl_color").set_value("last_top1").run()
    pc = chart_titled(at, "Options vs accuracy")["data"][0]
    assert pc["line"]["colorbar"]["title"]["text"] == "last top1"


# ---------------------------------------------------------------- bad sources


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    (root / "empty").mkdir()
    (root / "a_file.txt").write_text("not a folder")
    corrupt = root / "corrupt" / "run"
    (corrupt / "checkpoints").mkdir(parents=True)
    (corrupt / "config.yaml").write_text("method: [vrm\nmodel: {")
    mixed = root / "mixed"
    partial = mixed / "partial_vrm"
    (partial / "checkpoints").mkdir(parents=True)
    shutil.copy(os.path.join(DEMO_DIR, "vrm_resnet8", "config.yaml"), partial / "config.yaml")
    shutil.copytree(corrupt, mixed / "broken_run")
    foreign = root / "foreign" / "vrm_resnet8"
    shutil.copytree(os.path.join(DEMO_DIR, "vrm_resnet8"), foreign)
    torch.save({"state_dict": torch.zeros(2)}, foreign / "snapshots" / "probe_e000.pt")
    return root


@pytest.mark.parametrize("page", [RUNS, ABLATIONS])
@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("missing/folder", "no such folder"),
        ("a_file.txt", "is a file, not a folder"),
        ("empty", "no run directories"),
        ("corrupt", "cannot read"),
    ],
)
def test_bad_source_shows_an_error(bad, page, where, message):
    at = open_page(page, bad / where)
    assert message in texts(at.error), texts(at.error)
    assert not at.dataframe and not charts(at)
    assert "Choose another folder" in texts(at.caption)


def test_broken_run_is_skipped_and_partial_run_opens(bad):
    at = open_page(RUNS, bad / "mixed")
    assert "broken_run" in texts(at.warning) and not at.error
    assert list(at.dataframe[0].value["run"]) == ["partial_vrm"]
    assert "no finished epoch yet" in texts(at.info)
    assert "no finished epoch yet" in texts(at.markdown)


def test_foreign_snapshot_shows_an_error_in_the_page(bad):
    at = open_page(RUNS, bad / "foreign")
    assert "probe_e000.pt" in texts(at.error) and "not a relation snapshot" in texts(at.error)
    assert at.dataframe[0].value["run"].tolist() == ["vrm_resnet8"]


def test_back_to_the_demo(bad):
    at = open_page(RUNS, bad / "empty")
    assert at.error
    at.sidebar.button(key="source_reset").click().run()
    assert at.sidebar.text_input(key="source_path").value == DEMO_DIR
    assert not at.error and len(at.dataframe[0].value) == len(discover_runs(DEMO_DIR))
