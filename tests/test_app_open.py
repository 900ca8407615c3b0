"""The Open checkpoints flow: live snapshots from checkpoint paths, then the graph pages show them."""

import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from vrm_viz.runs import DEMO_DIR

APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "vrm_app", "main.py")
pytestmark = pytest.mark.xdist_group("app")


def _open(out=None):
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("views/open.py")
    at.run()
    assert not at.exception
    if out is not None:
        at.text_input(key="open_out").set_value(str(out))
    return at


def _button(at, key):
    return next(b for b in at.button if b.key == key)


def test_checkpoints_on_the_demo_probe_images_open_in_the_graph_page(tmp_path):
    at = _open(tmp_path / "live_kd")
    at.selectbox(key="open_dataset").set_value("demo")
    _button(at, "open_go").click()
    at.run()
    assert not at.exception
    assert any("snapshots of resnet20 → resnet8" in s.value for s in at.success), [e.value for e in at.error]
    result = at.session_state["open_result"]
    assert result == str(tmp_path / "live_kd")  # the named folder, reopenable later
    assert os.path.isdir(os.path.join(result, "snapshots"))
    _button(at, "open_goto_views/graphs.py").click()
    at.run()
    assert not at.exception
    assert at.session_state["source_path"] == result  # the app now shows the live folder
    assert at.title[0].value == "Affinity graphs"
    assert any(m.label == "Edges" for m in at.metric)


def test_fresh_student_on_the_recorded_dataset(tmp_path):
    at = _open(tmp_path / "fresh")
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


@pytest.fixture(scope="module")
def png_case(tmp_path_factory):
    """A flat folder of 32×32 PNGs in 100 classes and a published-layout CIFAR resnet20 (no arch recorded)."""
    import numpy as np
    import torch
    from PIL import Image

    from vrm_train.models import create_model

    root = tmp_path_factory.mktemp("pngcase")
    rng = np.random.default_rng(0)
    for c in range(100):
        os.makedirs(root / "pngs" / f"c{c:03d}")
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
            root / "pngs" / f"c{c:03d}" / "0.png"
        )
    torch.manual_seed(0)
    torch.save({"model": create_model("resnet20", num_classes=100).state_dict()}, root / "resnet20.pth")
    return root


def test_32px_folder_shows_its_inputs_and_computes_at_32px(png_case, tmp_path):
    import torch

    at = _open(tmp_path / "live_png")
    at.text_input(key="open_teacher_path").set_value(str(png_case / "resnet20.pth"))
    at.radio(key="open_student_how").set_value("fresh initialisation").run()
    at.selectbox(key="open_student_arch").set_value("resnet8")
    at.selectbox(key="open_dataset").set_value("imagefolder").run()
    at.text_input(key="open_root").set_value(str(png_case / "pngs")).run()
    assert not at.exception
    shown = " ".join(i.value for i in at.info)
    assert "32 px, cifar100 normalisation" in shown and "CIFAR-family" in shown  # before computing
    at.text_input(key="open_image_size").set_value("24")
    at.selectbox(key="open_normalization").set_value("imagenet").run()
    assert "24 px, imagenet normalisation" in " ".join(i.value for i in at.info)
    at.number_input(key="open_batches").set_value(1)
    at.number_input(key="open_batch_size").set_value(8)
    _button(at, "open_go").click()
    at.run()
    assert not at.exception and at.success, [e.value for e in at.error]
    probe = torch.load(tmp_path / "live_png" / "snapshots" / "probe_e000.pt", weights_only=True)
    assert probe["image"].shape[-1] == 24 and len(probe["classes"]) == 100


def test_mismatched_data_is_refused_before_computing(png_case, tmp_path):
    at = _open(tmp_path / "never")
    at.text_input(key="open_teacher_path").set_value(str(png_case / "resnet20.pth"))
    at.selectbox(key="open_dataset").set_value("fashion_mnist").run()
    errors = " ".join(e.value for e in at.error)
    assert "100 classes and 3 input channel(s)" in errors and "cifar100" in errors
    _button(at, "open_go").click()
    at.run()
    assert not os.path.exists(tmp_path / "never")  # nothing written for a refused computation


def test_uploads_live_only_while_computing(tmp_path, monkeypatch):
    import tempfile

    from vrm_app.state.live import uploads

    class Uploaded:
        name = "teacher.pth"

        def getbuffer(self):
            return b"bytes"

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with uploads({"teacher": Uploaded(), "student": None}) as paths:
        assert Path(paths["teacher"]).read_bytes() == b"bytes" and paths["student"] is None
    assert os.listdir(tmp_path) == []
    with pytest.raises(RuntimeError), uploads({"teacher": Uploaded()}):
        raise RuntimeError("a failed computation")
    assert os.listdir(tmp_path) == []
