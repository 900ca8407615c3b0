"""The Open checkpoints flow: live snapshots from checkpoint paths, then the graph pages show them."""

import os

import pytest
from streamlit.testing.v1 import AppTest

from vrm_viz.runs import DEMO_DIR

APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "vrm_app", "main.py")
pytestmark = pytest.mark.xdist_group("app")


def _open():
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("views/open.py")
    at.run()
    assert not at.exception
    return at


def _button(at, key):
    return next(b for b in at.button if b.key == key)


def test_checkpoints_on_the_demo_probe_images_open_in_the_graph_page():
    at = _open()
    at.selectbox(key="open_dataset").set_value("demo")
    _button(at, "open_go").click()
    at.run()
    assert not at.exception
    assert any("snapshots of resnet20 → resnet8" in s.value for s in at.success), [e.value for e in at.error]
    result = at.session_state["open_result"]
    assert os.path.isdir(os.path.join(result, "snapshots"))
    _button(at, "open_goto_views/graphs.py").click()
    at.run()
    assert not at.exception
    assert at.session_state["source_path"] == result  # the app now shows the live folder
    assert at.title[0].value == "Affinity graphs"
    assert any(m.label == "Edges" for m in at.metric)


def test_fresh_student_on_the_recorded_dataset():
    at = _open()
    at.radio(key="open_student_how").set_value("fresh initialisation")
    at.run()
    at.selectbox(key="open_student_arch").set_value("resnet8")
    at.text_input(key="open_teacher_path").set_value(os.path.join(DEMO_DIR, "teacher_resnet20"))
    at.selectbox(key="open_dataset").set_value("recorded")
    at.run()
    at.number_input(key="open_batches").set_value(1)
    at.number_input(key="open_batch_size").set_value(8)
    _button(at, "open_go").click()
    at.run()
    assert not at.exception
    assert any("(epoch 0)" in s.value for s in at.success), [e.value for e in at.error]


@pytest.mark.parametrize(
    "path, message",
    [
        ("/no/such/teacher.pt", "checkpoint not found"),
        (os.path.join(DEMO_DIR, "kd_resnet8", "metrics.csv"), "not a PyTorch checkpoint"),
    ],
)
def test_bad_files_show_an_error(path, message):
    at = _open()
    at.text_input(key="open_teacher_path").set_value(path)
    at.selectbox(key="open_teacher_arch").set_value("resnet20")
    _button(at, "open_go").click()
    at.run()
    assert not at.exception
    assert any(message in e.value for e in at.error), [e.value for e in at.error]


def test_wrong_architecture_is_named():
    at = _open()
    at.selectbox(key="open_student_arch").set_value("resnet20")
    _button(at, "open_go").click()
    at.run()
    assert not at.exception
    assert any("not the requested 'resnet20'" in e.value for e in at.error), [e.value for e in at.error]
