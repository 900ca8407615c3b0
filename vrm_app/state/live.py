"""The "Open checkpoints" flow: uploaded files, the demo's probe images, and the live snapshot computation.

Uploads are written to a private temporary folder and read only through vrm_train's weights-only loader:
nothing in a file is ever executed. Results go to a fresh temporary run-like folder per computation.
"""

from __future__ import annotations

import os
import tempfile

import streamlit as st

from vrm_train.checkpoint import CheckpointError, extract_state_dict, guess_architecture, load_file
from vrm_train.config import ConfigError, DataConfig
from vrm_train.data import DatasetError
from vrm_train.live import LiveSpec, compute_live_snapshots
from vrm_viz.runs import DEMO_DIR, RunError, discover_runs

KEY_RESULT = "open_result"  # folder of the last live computation
DATASETS = {
    "demo": "the demo's probe images (Fashion-MNIST, 10 classes, 1 channel)",
    "recorded": "the dataset recorded with the checkpoints (our runs only)",
    "fashion_mnist": "Fashion-MNIST (Debian package dataset-fashion-mnist)",
    "digits": "scikit-learn digits (bundled)",
    "cifar10": "CIFAR-10 archive or folder",
    "cifar100": "CIFAR-100 archive or folder",
    "imagefolder": "image folders: <root>/train/<class>/… and <root>/val/<class>/…",
}
ERRORS = (CheckpointError, ConfigError, DatasetError, RunError)


def _upload_dir() -> str:
    folder = st.session_state.get("_open_upload_dir")
    if not folder or not os.path.isdir(folder):
        folder = tempfile.mkdtemp(prefix="vrm-upload-")
        st.session_state["_open_upload_dir"] = folder
    return folder


def save_upload(uploaded, role: str) -> str:
    """Write an uploaded checkpoint to the session's temporary folder; returns its path."""
    path = os.path.join(_upload_dir(), f"{role}_{os.path.basename(uploaded.name)}")
    with open(path, "wb") as f:
        f.write(uploaded.getbuffer())
    return path


def demo_probe() -> str:
    """The final probe snapshot of the demo's VRM run (the images of the "demo" dataset choice)."""
    run = next(r for r in discover_runs(DEMO_DIR) if r.name == "vrm_resnet8")
    snaps = run.snapshots[run.snapshots.kind == "probe"]
    return snaps.loc[snaps.epoch.idxmax(), "path"]


def recorded_arch(path: str) -> str | None:
    """The architecture a checkpoint records, or the one its keys and shapes match (None if neither)."""
    if os.path.isdir(path):
        return None  # run directories record it in their config; vrm_train.live reads it there
    obj = load_file(path)
    if isinstance(obj, dict) and isinstance(obj.get("arch"), str):
        return obj["arch"]
    return guess_architecture(extract_state_dict(obj, path))


def compute(*, teacher, student, teacher_arch, student_arch, dataset, root, split, batches, batch_size, seed):
    """Run the live snapshot computation with a progress bar; returns its summary (raises ERRORS)."""
    out = tempfile.mkdtemp(prefix="vrm-live-")
    spec = LiveSpec(
        teacher=teacher,
        student=student,
        teacher_arch=teacher_arch,
        student_arch=student_arch,
        out=os.path.join(out, "live_" + os.path.basename(str(student or student_arch)).split(".")[0]),
        data=None if dataset in ("demo", "recorded") else DataConfig(name=dataset, root=root or None),
        images_from=demo_probe() if dataset == "demo" else None,
        split=split,
        batches=batches,
        batch_size=batch_size,
        seed=seed,
        device="auto",
    )
    bar = st.progress(0.0, text="Loading checkpoints and data…")

    def tick(done, total, label):
        bar.progress(done / total, text=f"{label} ({done}/{total})")

    summary = compute_live_snapshots(spec, progress=False, callback=tick)
    bar.empty()
    st.session_state[KEY_RESULT] = summary["out"]
    return summary
