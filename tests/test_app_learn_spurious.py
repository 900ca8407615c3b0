"""The Learn VRM page's spurious-response experiment says what its numbers say, and its preset shows UEP
helping (vrm_viz.spurious.uep_verdict, UEP_HELPS_PRESET)."""

import os

from streamlit.testing.v1 import AppTest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN = os.path.join(REPO, "vrm_app", "main.py")


def _experiment_page():
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.switch_page("views/learn.py")
    at.run()
    at.radio(key="learn_part").set_value("Spurious responses").run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    return at


def test_default_verdict_on_the_demo_run():
    at = _experiment_page()
    # the demo's VRM run with its own rule (cross_entropy at 0.4): UEP does not protect the other samples
    assert at.selectbox(key="learn_sp_uep_rule").value == "cross_entropy"
    assert any(w.value.startswith("UEP does not help here") for w in at.warning)
    assert not any(s.value.startswith("UEP helps") for s in at.success)


def test_preset_shows_uep_helping():
    at = _experiment_page()
    at.button(key="learn_sp_preset").click().run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    assert at.selectbox(key="learn_sp_uep_rule").value == "teacher_student"
    assert at.selectbox(key="learn_sp_batch").value[0] == "probe"
    assert at.selectbox(key="learn_sp_sample").value == 3 and at.slider(key="learn_sp_size").value == 16
    assert any(s.value.startswith("UEP helps here") for s in at.success)
