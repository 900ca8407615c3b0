"""Open checkpoints: the affinity graphs of any teacher/student pair, computed live from the files."""

import os

import streamlit as st

from vrm_app import state
from vrm_app.state import live
from vrm_train.models import list_models
from vrm_viz.runs import DEMO_DIR

st.title("Open checkpoints")
st.caption(
    "Checkpoints this trainer did not write — a published teacher (`{'model': state_dict}`), a student trained "
    "elsewhere, an older run without snapshots — get the same snapshots the trainer saves: both models on the "
    "real and virtual views of a probe batch and of a few more batches. Files are read with "
    "`torch.load(weights_only=True)` and never executed; uploads are kept in a temporary folder only while "
    "the snapshots are computed. The result is a named folder you can reopen any time as a runs folder."
)
AUTO = "recorded / detected"
archs = [AUTO, *list_models()]


def checkpoint_input(role: str, default: str, allow_fresh: bool):
    options = ["path", "upload", *(["fresh initialisation"] if allow_fresh else [])]
    how = st.radio(f"{role.title()} checkpoint", options, horizontal=True, key=f"open_{role}_how")
    path = None
    if how == "path":
        path = (
            st.text_input(f"{role.title()} file or run directory", default, key=f"open_{role}_path") or None
        )
    elif how == "upload":
        up = st.file_uploader(
            f"{role.title()} checkpoint (.pt/.pth)", type=["pt", "pth"], key=f"open_{role}_up"
        )
        path = up  # written to a temporary folder only while computing
    arch = st.selectbox(f"{role.title()} architecture", archs, key=f"open_{role}_arch")
    if how == "fresh initialisation" and arch == AUTO:
        st.caption("A fresh student needs its architecture: choose one.")
    return how, path, None if arch == AUTO else arch


left, right = st.columns(2)
with left:
    _, teacher, t_arch = checkpoint_input("teacher", os.path.join(DEMO_DIR, "teacher_resnet20"), False)
with right:
    s_how, student, s_arch = checkpoint_input("student", os.path.join(DEMO_DIR, "kd_resnet8"), True)

d1, d2 = st.columns([2, 3])
choices = live.dataset_choices()
dataset = d1.selectbox("Data", list(choices), format_func=choices.get, key="open_dataset")
root = d2.text_input(
    "Dataset location (empty: its default)",
    "",
    key="open_root",
    disabled=not live.needs_root(dataset),
)
b1, b2, b3, b4 = st.columns(4)
split = b1.selectbox(
    "Split of the extra batches", ["test", "train", "val"], key="open_split", disabled=dataset == "demo"
)
batches = b2.number_input("Extra batches", 0, 20, 2, key="open_batches", disabled=dataset == "demo")
batch_size = b3.number_input("Batch size", 2, 256, 64, key="open_batch_size", disabled=dataset == "demo")
seed = b4.number_input("Seed", 0, 10_000, 0, key="open_seed")

st.subheader("Input size and normalisation")
i1, i2 = st.columns(2)
fixed = dataset in live.FIXED_INPUTS
size_text = i1.text_input(
    "Input size in px (empty: inferred)",
    "",
    key="open_image_size",
    disabled=fixed,
    help="Image folders are resized to this size. Inferred from the architecture family: CIFAR models were "
    "designed for 32 px, ImageNet models for 224 px; other datasets keep their own size unless you set one.",
)
norm = i2.selectbox(
    "Normalisation",
    list(live.NORMALIZATIONS),
    format_func=live.NORMALIZATIONS.get,
    key="open_normalization",
    disabled=fixed,
    help="Per-channel mean/std the images are normalised with; they should be the ones the teacher was "
    "trained with.",
)
image_size = None
try:
    image_size = int(size_text) if size_text.strip() else None
    inputs = live.plan(
        teacher,
        t_arch,
        s_arch,
        dataset,
        root,
        image_size=image_size,
        normalization=None if norm == "auto" else norm,
    )
    if inputs is not None:
        st.info(f"The models will see: **{inputs.describe()}**.")
    elif fixed:
        st.caption("The demo's images or the recorded dataset fix the input: nothing to choose.")
    else:
        st.caption("Shown once the teacher checkpoint can be read (uploads: when computing).")
except ValueError as e:
    st.error(f"Input size: {e}" if "invalid literal" in str(e) else str(e))
except live.ERRORS as e:
    st.error(str(e))

name = os.path.basename(str(getattr(student, "name", student) or s_arch or "student"))
out = st.text_input(
    "Result folder",
    live.default_out(name, state.source()),
    key="open_out",
    help="A new folder; it opens like a run (type it, or its parent, in the sidebar's runs folder box).",
)

if st.button("Compute snapshots", type="primary", key="open_go", disabled=teacher is None):
    try:
        summary = live.compute(
            teacher=teacher,
            student=None if s_how == "fresh initialisation" else student,
            teacher_arch=t_arch,
            student_arch=s_arch,
            dataset=dataset,
            root=root,
            split=split,
            batches=int(batches),
            batch_size=int(batch_size),
            seed=int(seed),
            out=out,
            image_size=image_size,
            normalization=None if norm == "auto" else norm,
        )
        st.success(
            f"{len(summary['snapshots'])} snapshots of {summary['teacher']} → {summary['student']} "
            f"(epoch {summary['epoch']}) written to {summary['out']}; inputs: {summary['inputs']}."
        )
    except live.ERRORS as e:
        st.error(str(e))

result = st.session_state.get(live.KEY_RESULT)
if result:
    st.subheader("Open the result")
    st.caption(f"`{result}` is a run-like folder; the pages below show it (the sidebar box switches back).")
    cols = st.columns(3)
    for col, (page, title) in zip(
        cols,
        [
            ("views/graphs.py", "Affinity graphs"),
            ("views/compare.py", "Teacher vs student"),
            ("views/pruned.py", "Pruned edges"),
        ],
        strict=True,
    ):
        if col.button(
            f"Open in {title}", key=f"open_goto_{page}", on_click=state.show_source, args=(result,)
        ):
            st.switch_page(page)
