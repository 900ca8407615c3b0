"""The Embeddings, Attributions and Learn VRM pages on the demo runs: they render, their widgets matter,
and broken inputs give a message instead of a traceback."""

import json
import os
import shutil

import pytest
from apphelp import run_box
from streamlit.testing.v1 import AppTest

from vrm_viz.runs import DEMO_DIR, open_run

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN = os.path.join(REPO, "vrm_app", "main.py")


def _page(page: str, source: str | None = None) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=90)
    if source is not None:
        at.session_state["source_path"] = source
    at.switch_page(f"views/{page}.py")
    at.run()
    _clean(at)
    return at


def _clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _texts(at: AppTest) -> str:
    return " ".join(str(m.value) for m in at.markdown)


@pytest.mark.parametrize("page", ["embeddings", "attributions", "learn"])
def test_page_renders_on_the_demo(page):
    at = _page(page)
    assert not at.error, [e.value for e in at.error]
    assert at.get("plotly_chart"), "no figure"
    assert at.dataframe, "no table"
    prefix = {"embeddings": "emb", "attributions": "attr", "learn": "learn"}[page]
    assert run_box(at, prefix).value == "vrm_resnet8"


def test_embeddings_projection_and_epoch_change_the_figure():
    at = _page("embeddings")
    assert run_box(at, "emb").value == "vrm_resnet8"
    pca = _charts(at)[0]
    assert [t["name"] for t in pca["data"]][:2] and len(
        {t["xaxis"] for t in pca["data"]}
    ) == 2  # teacher | student
    at.radio(key="emb_method").set_value("tsne").run()
    _clean(at)
    tsne = _charts(at)[0]
    assert tsne["data"][0]["x"] != pca["data"][0]["x"]
    at.selectbox(key="emb_epoch").set_value(0).run()
    _clean(at)
    epoch0 = _charts(at)[0]

    def panel(chart, axis):
        return [t["x"] for t in chart["data"] if t["xaxis"] == axis]

    assert panel(epoch0, "x") == panel(tsne, "x")  # the frozen teacher does not change with the epoch
    assert panel(epoch0, "x2") != panel(tsne, "x2")  # the student does
    assert any("Neighbourhood agreement" in m.label for m in at.metric)


def test_attributions_method_and_samples_change_the_maps():
    at = _page("attributions")
    first = _charts(at)[0]
    assert len(at.dataframe[0].value) == 6  # 3 samples x (teacher, student)
    assert first["layout"]["coloraxis"]["cmin"] == 0.0  # saliency by default: |gradient| >= 0
    at.radio(key="attr_method").set_value("integrated_gradients").run()
    _clean(at)
    assert _charts(at)[0]["layout"]["coloraxis"]["cmin"] != 0.0
    at.multiselect(key="attr_samples").set_value([5]).run()
    _clean(at)
    assert at.dataframe[0].value["sample"].tolist() == [5, 5]


def test_learn_steps_change_the_text_and_the_figure():
    at = _page("learn")
    assert run_box(at, "learn").value == "vrm_resnet8"
    seen = {}
    for step in ["logits", "edges", "virtual", "rep", "uep", "loss"]:
        at.radio(key="learn_step").set_value(step).run()
        _clean(at)
        seen[step] = (_texts(at), json.dumps(_charts(at)[0]["data"])[:2000])
    assert len({text for text, _ in seen.values()}) == 6
    assert len({fig for _, fig in seen.values()}) == 6
    at.slider(key="learn_uep_ratio").set_value(0.2).run()
    metrics = {m.label: m.value for m in at.metric}
    assert float(metrics["L_IS (kept edges)"]) > 0 and metrics["Kept IS edges"] == "80%"  # 5 of 25 pruned
    at.slider(key="learn_uep_ratio").set_value(0.4).run()
    assert {m.label: m.value for m in at.metric}["Kept IS edges"] == "60%"
    at.radio(key="learn_step").set_value("rep").run()
    at.button(key="learn_next").click().run()
    assert at.radio(key="learn_step").value == "uep"
    at.button(key="learn_back").click().run()
    assert at.radio(key="learn_step").value == "rep"


def test_learn_corrupted_sample_moves_the_bars():
    at = _page("learn")
    at.radio(key="learn_part").set_value("Spurious responses").run()
    _clean(at)

    def kd_peak():
        per_sample = at.dataframe[1].value
        kd = per_sample[per_sample["loss"] == "kd"]
        return int(kd.loc[kd["change"].idxmax(), "sample"]), kd

    assert kd_peak()[0] == at.selectbox(key="learn_sp_sample").value == 0
    bars = _charts(at)[0]
    at.selectbox(key="learn_sp_sample").set_value(3).run()
    _clean(at)
    peak, kd = kd_peak()
    assert peak == 3 and (kd.loc[kd["sample"] != 3, "change"] == 0).all()
    assert _charts(at)[0]["data"][0]["y"] != bars["data"][0]["y"]
    summary = at.dataframe[0].value.set_index("loss")
    assert summary.loc["kd", "leak"] == 0 and summary.loc["dist", "leak"] > 0


@pytest.fixture(scope="module")
def broken_folder(tmp_path_factory):
    """A vanilla run, and a KD run that has not written its checkpoints yet."""
    root = tmp_path_factory.mktemp("broken")
    shutil.copytree(os.path.join(DEMO_DIR, "vanilla_resnet8"), root / "vanilla_resnet8")
    shutil.copytree(
        os.path.join(DEMO_DIR, "kd_resnet8"),
        root / "kd_partial",
        ignore=shutil.ignore_patterns("checkpoints"),
    )
    return str(root)


def test_wrong_states_give_messages(broken_folder):
    at = _page("attributions", broken_folder)
    assert run_box(at, "attr").value == "kd_partial"
    assert any("no final checkpoint" in e.value for e in at.error)
    run_box(at, "attr").set_value("vanilla_resnet8").run()
    _clean(at)
    assert any("without a teacher" in i.value for i in at.info)
    assert len(at.dataframe[0].value) == 3  # student only
    at = _page("embeddings", broken_folder)
    run_box(at, "emb").set_value("vanilla_resnet8").run()
    _clean(at)
    assert any("no teacher features" in i.value for i in at.info)
    learn = _page("learn", os.path.join(broken_folder, "vanilla_resnet8"))
    assert any("needs a distillation run" in i.value for i in learn.info)


def test_embeddings_selection_shows_the_images():
    at = _page("embeddings")
    assert not at.subheader and len(at.get("plotly_chart")) == 1
    # the value st.plotly_chart returns for a selection (points carry their batch position as customdata)
    points = [{"curve_number": 0, "point_index": 0, "customdata": [3]}, {"customdata": 7}, {"customdata": 3}]
    at.session_state["emb_scatter_chart"] = {"selection": {"points": points, "box": [], "lasso": []}}
    at.run()
    _clean(at)
    assert [s.value for s in at.subheader] == ["Selected: 2 image(s)"]
    grid = _charts(at)[1]
    assert [a["text"] for a in grid["layout"]["annotations"]][:2] == [
        f"3: {_label(3)} (real)",
        f"3: {_label(3)} (virtual)",
    ]
    assert len([t for t in grid["data"] if t["type"] == "image"]) == 4
    assert sorted(set(at.dataframe[0].value["sample"])) == [3, 7]


def _label(i: int) -> str:
    run = open_run(os.path.join(DEMO_DIR, "vrm_resnet8"))
    snap = run.snapshot("probe", run.snapshot_epochs("probe")[-1])
    return snap.classes[int(snap.targets[i])]
