"""The graph pages (Affinity graphs, Teacher vs student, Pruned edges) on the demo runs, via AppTest."""

import base64
import json
import math
import os
import shutil

import numpy as np
import pytest
from apphelp import run_box
from streamlit.testing.v1 import AppTest

from vrm_viz.runs import DEMO_DIR, open_run

ROOT = DEMO_DIR
APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "vrm_app", "main.py")
PAGES = ["views/graphs.py", "views/compare.py", "views/pruned.py"]


def _open(page, root=ROOT, run=None):
    at = AppTest.from_file(APP, default_timeout=60)
    if root != DEMO_DIR:
        at.session_state["source_path"] = root
    at.switch_page(page)
    at.run()
    _ok(at)
    if run:
        run_box(at, page.split("/")[1][:-3]).set_value(run).run()
        _ok(at)
    return at


def _ok(at):
    assert not at.exception, [e.value for e in at.exception]


def _charts(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _chart(at, title: str) -> dict:
    found = [c for c in _charts(at) if title in (c["layout"].get("title") or {}).get("text", "")]
    assert found, f"no chart titled {title!r}: {[c['layout'].get('title') for c in _charts(at)]}"
    return found[0]


def _array(value) -> np.ndarray:
    """A data array of a plotly JSON spec (plain lists, or the base64 typed arrays plotly writes for numpy)."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = [int(n) for n in str(value.get("shape", len(flat))).split(",")]
        return flat.reshape(shape)
    return np.asarray(value, dtype=float)


def _z(chart: dict) -> np.ndarray:
    return _array(chart["data"][0]["z"]).astype(float)


def _metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def _text(at) -> str:
    parts = [e.value for kind in ("info", "warning", "caption", "markdown") for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


def _probe_size(name="vrm_resnet8") -> int:
    run = open_run(os.path.join(ROOT, name))
    return run.snapshot("probe", run.snapshot_epochs()[-1]).batch_size


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_on_the_demo(page):
    at = _open(page)
    assert run_box(at, page.split("/")[1][:-3]).value.startswith("vrm")  # a VRM run by default
    assert len(_charts(at)) >= 2
    assert "vrm_train.relations" in _text(at)  # says the graphs are recomputed with the real code


def test_graphs_epoch_kind_and_ratio_change_the_figures():
    at = _open("views/graphs.py", run="vrm_resnet8")
    b = _probe_size()
    first = _z(_chart(at, "Inter-sample graph"))
    assert first.shape == (2 * b, 2 * b)
    epochs = at.selectbox(key="graphs_epoch").options
    at.selectbox(key="graphs_epoch").set_value(int(epochs[0])).run()
    _ok(at)
    second = _z(_chart(at, "Inter-sample graph"))
    assert second.shape == first.shape and not np.allclose(second, first, equal_nan=True)

    ratio = open_run(os.path.join(ROOT, "vrm_resnet8")).config["vrm"]["uep_ratio"]
    assert _metric(at, "Pruned") == str(math.floor(ratio * b * b))
    at.selectbox(key="graphs_quantity").set_value("status")
    at.slider(key="graphs_ratio").set_value(0.5).run()
    _ok(at)
    assert _metric(at, "Pruned") == str(math.floor(0.5 * b * b))
    z = _z(_chart(at, "kept / pruned"))
    assert int((z == 1).sum()) == 2 * math.floor(0.5 * b * b)

    at.toggle(key="graphs_rep").set_value(False).run()  # REP off: every pair of the 2B vertices
    _ok(at)
    assert _metric(at, "Edges") == str(2 * b * (2 * b - 1) // 2)

    at.radio(key="graphs_kind").set_value("inter-class").run()
    _ok(at)
    c = len(open_run(os.path.join(ROOT, "vrm_resnet8")).snapshot("probe", 0).classes)
    assert _z(_chart(at, "Inter-class graph")).shape == (c, c)
    at.radio(key="graphs_kind").set_value("inter-view").run()
    _ok(at)
    assert _z(_chart(at, "Inter-view graph")).shape == (b, b)


def test_graphs_edge_inspector_follows_the_endpoints():
    at = _open("views/graphs.py", run="vrm_resnet8")
    at.selectbox(key="graphs_edge_u").set_value("r3")
    at.selectbox(key="graphs_edge_v").set_value("v5").run()
    _ok(at)
    assert "E[r3, v5]" in _chart(at, "Edge vectors")["layout"]["title"]["text"]
    images = [c for c in _charts(at) if c["data"] and c["data"][0]["type"] == "image"]
    assert len(images) == 1 and len(images[0]["data"]) == 2
    assert "Edge r3 – v5" in _text(at)


def test_runs_without_teacher_explain_it():
    at = _open("views/graphs.py", run="vanilla_resnet8")
    assert at.selectbox(key="graphs_quantity").value == "loss"
    assert "no teacher" in _text(at) and "compares the teacher's graph with the student's" in _text(at)
    assert not [c for c in _charts(at) if c["data"] and c["data"][0]["type"] == "heatmap"]
    at.selectbox(key="graphs_quantity").set_value("score").run()
    _ok(at)
    z = _z(_chart(at, "Inter-sample graph: UEP score"))  # the student's own graph is shown
    assert np.isfinite(z).sum() == 2 * _probe_size("vanilla_resnet8") ** 2  # B² cross-view edges, both cells
    assert _chart(at, "Node-link view")
    at.radio(key="graphs_kind").set_value("inter-view").run()  # the diagonal table needs no teacher
    _ok(at)
    assert _z(_chart(at, "Inter-view graph: UEP score")).shape == (_probe_size("vanilla_resnet8"),) * 2
    cmp = _open("views/compare.py", run="vanilla_resnet8")
    assert "no teacher" in _text(cmp) and not _charts(cmp)


def test_real_only_run_has_no_inter_view_graph():
    at = _open("views/graphs.py", run="vrm_no_virtual_resnet8")
    assert at.toggle(key="graphs_virtual").value is False  # the run's own options: is_edges=real_only
    b = _probe_size("vrm_no_virtual_resnet8")
    assert _metric(at, "Edges") == str(b * (b - 1) // 2)
    at.radio(key="graphs_kind").set_value("inter-view").run()
    _ok(at)
    assert "no inter-view relations" in _text(at)


def test_compare_metrics_follow_the_epoch():
    at = _open("views/compare.py", run="vrm_resnet8")
    label = "IS edge cosine"
    before = _metric(at, label)
    assert _chart(at, "Agreement across")["data"]
    at.selectbox(key="compare_epoch").set_value(int(at.selectbox(key="compare_epoch").options[0])).run()
    _ok(at)
    assert _metric(at, label) != before
    assert len(_chart(at, "edge lengths of teacher and student")["data"]) == 3


def test_pruned_filters_and_export():
    at = _open("views/pruned.py", run="vrm_resnet8")
    pruned = int(_metric(at, "Pruned"))
    edges = int(_metric(at, "Edges"))
    assert f"{edges} of {edges} edges" in _text(at)
    at.radio(key="pruned_status").set_value("pruned").run()
    _ok(at)
    assert f"{pruned} of {edges} edges" in _text(at)
    at.checkbox(key="pruned_diagonal").set_value(True)
    at.radio(key="pruned_status").set_value("all").run()
    _ok(at)
    assert f"{_probe_size()} of {edges} edges" in _text(at)
    assert any("CSV" in b.label for b in at.get("download_button"))
    assert _chart(at, "Pruned fraction by")["data"]


@pytest.mark.parametrize("page", PAGES)
def test_run_without_snapshots_warns(tmp_path, page):
    src = os.path.join(ROOT, "vrm_resnet8")
    dst = tmp_path / "vrm_copy"
    dst.mkdir()
    for name in ("config.yaml", "metrics.csv"):
        shutil.copy(os.path.join(src, name), dst / name)
    at = _open(page, root=str(tmp_path))
    assert any("no relation snapshots" in w.value for w in at.warning)
    assert not _charts(at)


def test_pruning_controls_keep_the_run_options_after_visiting_another_page():
    at = _open("views/graphs.py", run="vrm_resnet8")
    vrm = open_run(os.path.join(ROOT, "vrm_resnet8")).config["vrm"]
    at.switch_page("views/pruned.py").run()
    at.switch_page("views/graphs.py").run()  # streamlit forgets the states of widgets it did not draw
    _ok(at)
    run = open_run(os.path.join(ROOT, run_box(at, "graphs").value)).config["vrm"]
    assert run["is_edges"] == vrm["is_edges"] == "cross_view"
    assert at.toggle(key="graphs_virtual").value is True and at.toggle(key="graphs_rep").value is True
    assert at.slider(key="graphs_ratio").value == pytest.approx(run["uep_ratio"])
    assert at.number_input(key="graphs_delta").value == pytest.approx(run["huber_delta"])


@pytest.fixture(scope="module")
def run_with_a_broken_snapshot(tmp_path_factory):
    """A copy of the demo VRM run whose probe snapshot of epoch 0 is not a snapshot."""
    root = tmp_path_factory.mktemp("broken")
    dst = root / "vrm_resnet8"
    shutil.copytree(os.path.join(ROOT, "vrm_resnet8"), dst, ignore=shutil.ignore_patterns("checkpoints"))
    (dst / "snapshots" / "probe_e000.pt").write_bytes(b"not a torch file")
    return str(root)


@pytest.mark.parametrize("page", ["views/compare.py", "views/pruned.py"])
def test_unreadable_snapshot_is_left_out_of_the_evolution(run_with_a_broken_snapshot, page):
    at = _open(page, root=run_with_a_broken_snapshot)
    assert any("probe_e000.pt" in w.value for w in at.warning)
    assert _chart(at, "Agreement across" if "compare" in page else "Pruned fraction by")


def test_unreadable_snapshot_chosen_shows_an_error(run_with_a_broken_snapshot):
    at = _open("views/graphs.py", root=run_with_a_broken_snapshot)
    at.selectbox(key="graphs_epoch").set_value(0).run()
    _ok(at)
    assert at.error and "probe_e000.pt" in at.error[0].value
    assert not _charts(at)
