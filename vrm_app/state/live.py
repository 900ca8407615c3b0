"""The "Open checkpoints" flow: uploaded files, the demo's probe images, the input plan and the live
snapshot computation.

Uploads are written to a private temporary folder only while a computation runs (and removed after it,
whatever happens), and read only through vrm_train's weights-only loader: nothing in a file is ever
executed. Results go to a named folder the user chose, which the app (or a later session) reopens like a run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

import streamlit as st

from vrm_train.build import resolve_checkpoint
from vrm_train.checkpoint import CheckpointError, extract_state_dict, guess_architecture, load_file
from vrm_train.config import ConfigError, DataConfig
from vrm_train.data import DatasetError
from vrm_train.data.registry import get_dataset, list_datasets
from vrm_train.live import LiveSpec, compute_live_snapshots
from vrm_train.live_inputs import InputPlan, check_fit, plan_inputs, state_shape
from vrm_viz.runs import DEMO_DIR, RunError, discover_runs

KEY_RESULT = "open_result"  # folder of the last live computation
FIXED_INPUTS = {  # inputs that come with the run, not from a dataset
    "demo": "the demo's probe images (Fashion-MNIST, 10 classes, 1 channel)",
    "recorded": "the dataset recorded with the checkpoints (our runs only)",
}


def dataset_choices() -> dict[str, str]:
    """The Data choices of the Open checkpoints page: the run's own inputs, then every registered dataset
    of real images (``vrm_train.data.registry``: a dataset registered there appears here), with its summary."""
    specs = [get_dataset(n) for n in list_datasets()]
    return {**FIXED_INPUTS, **{s.name: s.summary for s in specs if s.real_images}}


def needs_root(dataset: str) -> bool:
    """Whether the Data root box applies: a registered dataset that reads files (not the run's own inputs,
    not a bundled set such as digits)."""
    return dataset not in FIXED_INPUTS and get_dataset(dataset).needs_root


NORMALIZATIONS = {
    "auto": "inferred (shown above)",
    "cifar100": "CIFAR-100 statistics",
    "cifar10": "CIFAR-10 statistics",
    "imagenet": "ImageNet statistics",
    "data": "measured on the probe images",
}
ERRORS = (CheckpointError, ConfigError, DatasetError, RunError, OSError)


def default_out(student_name: str, parent: str | None = None) -> str:
    """A fresh folder name for a result: ``<parent>/live_<student>`` (``_2``, ``_3``… when taken).
    ``parent``: the runs folder shown (not the demo, which ships with the package), else ``~/vrm-runs``."""
    base = parent if parent and os.path.isdir(parent) and os.path.abspath(parent) != DEMO_DIR else None
    base = base or os.path.join(os.path.expanduser("~"), "vrm-runs")
    stem = os.path.join(base, "live_" + os.path.basename(student_name).split(".")[0])
    out, k = stem, 1
    while os.path.exists(out):
        k += 1
        out = f"{stem}_{k}"
    return out


@contextlib.contextmanager
def uploads(files: dict):
    """Write uploaded checkpoints ({role: UploadedFile or path}) to a private temporary folder for the
    duration of the block; yields {role: path}. The folder is removed when the block ends."""
    folder = tempfile.mkdtemp(prefix="vrm-upload-")
    try:
        paths = {}
        for role, f in files.items():
            if f is None or isinstance(f, str):
                paths[role] = f
                continue
            path = os.path.join(folder, f"{role}_{os.path.basename(f.name)}")
            with open(path, "wb") as out:
                out.write(f.getbuffer())
            paths[role] = path
        yield paths
    finally:
        shutil.rmtree(folder, ignore_errors=True)


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


@st.cache_data(show_spinner=False, max_entries=16)
def _file_facts(path: str, mtime: float) -> tuple[str | None, tuple[int, int] | None]:
    """(architecture, (classes, channels)) of a checkpoint file, read once per file version."""
    obj = load_file(path)
    state = extract_state_dict(obj, path)
    arch = obj.get("arch") if isinstance(obj, dict) and isinstance(obj.get("arch"), str) else None
    return arch or guess_architecture(state), state_shape(state)


def plan(
    teacher: str | None, t_arch: str | None, s_arch: str | None, dataset: str, root: str, **choices
) -> InputPlan | None:
    """What the models will be fed, before anything is computed (None where the data fixes it: the demo's
    or the recorded dataset). Raises ERRORS when the teacher's classes/channels do not fit the data."""
    if dataset in ("demo", "recorded") or not isinstance(teacher, str) or not os.path.exists(teacher):
        return None
    file, recorded = resolve_checkpoint(teacher)
    arch, shape = _file_facts(file, os.path.getmtime(file))
    t_arch = t_arch or recorded or arch
    if not t_arch:
        return None
    dcfg = DataConfig(name=dataset, root=root or None)
    check_fit("teacher", shape, dcfg)
    return plan_inputs([t_arch, s_arch or t_arch], dcfg, shape[0] if shape else 0, **choices)


def compute(
    *,
    teacher,
    student,
    teacher_arch,
    student_arch,
    dataset,
    root,
    split,
    batches,
    batch_size,
    seed,
    out,
    image_size=None,
    normalization=None,
):
    """Run the live snapshot computation into the folder ``out`` with a progress bar; returns its summary
    (raises ERRORS). ``teacher``/``student``: paths or uploaded files (written to a temporary folder that is
    removed afterwards). A folder that holds files already is refused; a failed computation removes the
    folder it created."""
    out = os.path.abspath(os.path.expanduser(out))
    if os.path.isdir(out) and os.listdir(out):
        raise ConfigError(f"{out} already holds files: choose a new folder name for the result")
    created = not os.path.exists(out)
    bar = st.progress(0.0, text="Loading checkpoints and data…")

    def tick(done, total, label):
        bar.progress(done / total, text=f"{label} ({done}/{total})")

    try:
        with uploads({"teacher": teacher, "student": student}) as paths:
            t_arch = teacher_arch or recorded_arch(paths["teacher"])
            s_arch = student_arch or (recorded_arch(paths["student"]) if paths["student"] else None)
            spec = LiveSpec(
                teacher=paths["teacher"],
                student=paths["student"],
                teacher_arch=t_arch,
                student_arch=s_arch,
                out=out,
                data=None if dataset in ("demo", "recorded") else DataConfig(name=dataset, root=root or None),
                images_from=demo_probe() if dataset == "demo" else None,
                split=split,
                batches=batches,
                batch_size=batch_size,
                seed=seed,
                image_size=image_size,
                normalization=normalization,
                device="auto",
            )
            summary = compute_live_snapshots(spec, progress=False, callback=tick)
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        bar.empty()
    st.session_state[KEY_RESULT] = summary["out"]
    return summary
