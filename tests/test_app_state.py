"""App state: it follows the runs folder and the chosen batch, describes non-VRM runs honestly, shows
pruned edges on request, and lives in the URL (a link reopens the same view)."""

import os
import shutil

import pytest
from apphelp import run_box
from streamlit.testing.v1 import AppTest

from vrm_viz import explain as X
from vrm_viz import graphs as G
from vrm_viz import nodelink as N
from vrm_viz.runs import DEMO_DIR, open_run

pytestmark = pytest.mark.xdist_group("app_state")
APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "vrm_app", "main.py")
GRAPHS = "views/graphs.py"


def _ok(at):
    assert not at.exception, [e.value for e in at.exception]


def _open(page=GRAPHS, *, params=None, source=None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in (params or {}).items():
        at.query_params[k] = v
    if source:
        at.session_state["source_path"] = source
    at.switch_page(page)
    at.run()
    _ok(at)
    return at


def _captions(at) -> str:
    return "\n".join(str(c.value) for c in at.caption)


def _chart_titles(at) -> list[str]:
    import json

    out = []
    for el in at.get("plotly_chart"):
        spec = json.loads(el.proto.spec)
        out.append(spec["layout"].get("title", {}).get("text", ""))
    return out


@pytest.fixture(scope="module")
def other_folder(tmp_path_factory):
    """A second runs folder holding one run, live_resnet8 (a copy of the demo's kd_resnet8)."""
    root = tmp_path_factory.mktemp("other")
    shutil.copytree(os.path.join(DEMO_DIR, "kd_resnet8"), root / "live_resnet8")
    return str(root)


def test_run_box_follows_the_folder(other_folder):
    at = _open()
    assert run_box(at, "graphs").value == "vrm_resnet8"
    at.sidebar.text_input(key="source_path").set_value(other_folder).run()
    _ok(at)
    box = run_box(at, "graphs")  # exactly one run box: the old folder's is gone
    assert box.value == "live_resnet8" and box.options == ["live_resnet8"]
    assert "live_resnet8" in _captions(at) and "vrm_resnet8" not in _captions(at)
    at.sidebar.button(key="source_reset").click().run()
    _ok(at)
    assert run_box(at, "graphs").value == "vrm_resnet8"


def test_options_panel_does_not_call_other_methods_vrm():
    at = _open()
    assert "Trained with is_edges=" in _captions(at)
    run_box(at, "graphs").set_value("kd_resnet8").run()
    _ok(at)
    text = _captions(at)
    assert "trained with `kd`, not VRM" in text and "Trained with is_edges=" not in text


def test_edge_inspector_follows_the_batch():
    at = _open()
    at.selectbox(key="graphs_edge_u").set_value("r5").run()
    at.selectbox(key="graphs_edge_v").set_value("v9").run()
    assert (at.selectbox(key="graphs_edge_u").value, at.selectbox(key="graphs_edge_v").value) == ("r5", "v9")
    at.selectbox(key="graphs_batch").set_value("training batch 0").run()
    _ok(at)
    run = open_run(os.path.join(DEMO_DIR, "vrm_resnet8"))
    snap = run.snapshot("train", run.snapshot_epochs("train")[-1], 0)
    g = G.inter_sample_graph(snap, G.GraphOptions.from_config(run.config))
    top = N.top_edges(g.edges, 1, N.rank_column(g)).iloc[0]
    # the inspector starts again from the new batch's top edge instead of keeping r5 – v9 of the old one
    assert (at.selectbox(key="graphs_edge_u").value, at.selectbox(key="graphs_edge_v").value) == (
        top.u,
        top.v,
    )


def test_node_link_can_show_only_pruned_edges():
    at = _open()
    assert any("edges (" in t and "— kept and pruned" in t for t in _chart_titles(at))
    at.radio(key="graphs_show").set_value("pruned").run()
    _ok(at)
    title = next(t for t in _chart_titles(at) if t.startswith("Node-link view"))
    k = at.slider(key="graphs_topk").value
    assert title.startswith(f"Node-link view: {k} edges ({k} pruned")
    assert X.SHOW["pruned"] in title


def test_a_link_reopens_the_view(other_folder):
    params = {
        "folder": DEMO_DIR,
        "run": "kd_resnet8",
        "batch": "1",
        "epoch": "3",
        "uep_ratio": "0.3",
        "zscore": "false",
        "edge": "r2,v7",
    }
    at = _open(params=params)
    assert run_box(at, "graphs").value == "kd_resnet8"
    assert at.selectbox(key="graphs_batch").value == "training batch 1"
    assert at.selectbox(key="graphs_epoch").value == 3
    assert at.slider(key="graphs_ratio").value == pytest.approx(0.3)
    assert at.toggle(key="graphs_zscore").value is False
    assert (at.selectbox(key="graphs_edge_u").value, at.selectbox(key="graphs_edge_v").value) == ("r2", "v7")
    # the address bar follows the widgets: moving the slider rewrites uep_ratio
    at.slider(key="graphs_ratio").set_value(0.5).run()
    assert at.query_params["uep_ratio"] == "0.5" and at.query_params["run"] == "kd_resnet8"
    assert at.query_params["edge"] == "r2,v7" and at.query_params["epoch"] == "3"
    # a reload is a new session with the same URL: the runs folder comes back
    reload = _open(params={"folder": other_folder})
    assert run_box(reload, "graphs").value == "live_resnet8"
    assert reload.sidebar.text_input(key="source_path").value == other_folder


def test_invalid_link_values_are_ignored():
    at = _open(params={"run": "no_such_run", "epoch": "999", "uep_ratio": "abc", "edge": "x,y"})
    assert run_box(at, "graphs").value == "vrm_resnet8"
    assert at.selectbox(key="graphs_epoch").value == max(
        open_run(os.path.join(DEMO_DIR, "vrm_resnet8")).snapshot_epochs()
    )


PRUNED = "views/pruned.py"


def test_pruned_page_explains_the_top_edge_and_links_to_the_graphs():
    at = _open(PRUNED)
    assert at.latex and "p_m(c)" in at.latex[0].value  # the cross-entropy rule's formula
    titles = _chart_titles(at)
    assert any(t.startswith("UEP scores (cross_entropy)") for t in titles)
    run = open_run(os.path.join(DEMO_DIR, "vrm_resnet8"))
    epoch = run.snapshot_epochs()[-1]
    g = G.inter_sample_graph(run.snapshot("probe", epoch), G.GraphOptions.from_config(run.config))
    top = g.edges.sort_values("score", ascending=False, kind="stable").iloc[0]
    header = next(s.value for s in at.subheader if s.value.startswith("Edge "))
    assert header == f"Edge {top.u} – {top.v}: pruned"
    assert any(t.startswith("Class probabilities at the two endpoints") for t in titles)
    at.button(key="pruned_to_graphs").click().run()
    _ok(at)
    assert at.title[0].value == "Affinity graphs"
    assert run_box(at, "graphs").value == "vrm_resnet8" and at.selectbox(key="graphs_epoch").value == epoch
    assert (at.selectbox(key="graphs_edge_u").value, at.selectbox(key="graphs_edge_v").value) == (
        top.u,
        top.v,
    )


def test_pruned_page_filters_wrong_endpoints():
    at = _open(PRUNED)
    everything = len(at.dataframe[0].value)
    at.checkbox(key="pruned_t_wrong").check().run()
    _ok(at)
    rows = at.dataframe[0].value
    assert 0 < len(rows) < everything and rows.teacher_wrong.all()
    wrong = (rows.u_pred_t_class != rows.u_class) | (rows.v_pred_t_class != rows.v_class)
    assert wrong.all()


def test_across_runs_table_and_deltas():
    at = _open("views/across.py")
    assert at.selectbox(key="across_baseline").value == "kd_resnet8"
    frame = at.dataframe[0].value.set_index("run")
    assert {"kd_resnet8", "vrm_resnet8"} <= set(frame.index)
    assert frame.loc["kd_resnet8", "Δ cka_logits"] == 0
    want = frame.loc["vrm_resnet8", "cka_logits"] - frame.loc["kd_resnet8", "cka_logits"]
    assert frame.loc["vrm_resnet8", "Δ cka_logits"] == pytest.approx(want)
    assert any(t.startswith("Difference to the baseline run kd_resnet8") for t in _chart_titles(at))
    at.selectbox(key="across_baseline").set_value("vrm_resnet8").run()
    _ok(at)
    frame = at.dataframe[0].value.set_index("run")
    assert frame.loc["vrm_resnet8", "Δ cka_logits"] == 0 and at.query_params["baseline"] == "vrm_resnet8"
    at.toggle(key="across_own").set_value(False).run()  # one set of options for every run
    _ok(at)
    assert at.slider(key="across_ratio").value == pytest.approx(0.4)


def test_compare_heatmaps_sorted_by_class_and_real_views_by_default():
    at = _open("views/compare.py")
    assert at.toggle(key="compare_sort").value is True
    import json

    spec = next(
        json.loads(e.proto.spec)
        for e in at.get("plotly_chart")
        if "edge lengths" in json.loads(e.proto.spec)["layout"]["title"]["text"]
    )
    rows = spec["data"][0]["y"]
    run = open_run(os.path.join(DEMO_DIR, "vrm_resnet8"))
    snap = run.snapshot("probe", run.snapshot_epochs()[-1])
    assert len(rows) == snap.batch_size and all(r.startswith("r") for r in rows)  # real views only
    classes = [r.split(" · ")[1] for r in rows]
    order = [snap.classes.index(c) for c in classes]
    assert order == sorted(order)  # grouped by class
    at.radio(key="compare_views").set_value("real and virtual views").run()
    spec = next(
        json.loads(e.proto.spec)
        for e in at.get("plotly_chart")
        if "edge lengths" in json.loads(e.proto.spec)["layout"]["title"]["text"]
    )
    assert len(spec["data"][0]["y"]) == 2 * snap.batch_size


def test_glossary_and_paper_link_are_shown():
    at = _open("views/learn.py")
    text = "\n".join(m.value for m in at.markdown) + "\n".join(c.value for c in at.caption)
    assert "arxiv.org/abs/2502.20760" in text
    for term in ("**IS**", "**IC**", "**IV**", "**REP**", "**UEP**", "**δ**", "**CKA**"):
        assert term in text
