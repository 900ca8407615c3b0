"""Session state and cached loading shared by every view.

Views call these helpers instead of touching files: runs are discovered once per folder (and again
when a run changes on disk), snapshots are loaded once per file. State keys are defined here, once.
"""

from __future__ import annotations

import os

import streamlit as st

from vrm_viz.runs import DEMO_DIR, Run, RunError, Snapshot, discover_runs, read_snapshot

KEY_SOURCE = "source_path"  # folder of runs (or one run directory) the app shows


def source() -> str:
    return st.session_state.get(KEY_SOURCE) or DEMO_DIR


def sidebar_source() -> None:
    """The sidebar box that chooses which folder of runs the app shows (default: the demo)."""
    with st.sidebar:
        st.text_input(
            "Runs folder or run directory",
            value=st.session_state.get(KEY_SOURCE, DEMO_DIR),
            key=KEY_SOURCE,
            help="Any folder holding run directories written by vrm-train (searched 3 levels deep).",
        )
        if source() != DEMO_DIR and st.button("Back to the demo runs", key="source_reset"):
            st.session_state[KEY_SOURCE] = DEMO_DIR
            st.rerun()


def _stamp(root: str) -> float:
    """Changes when any run under ``root`` gains an epoch or a snapshot (cheap: directory mtimes)."""
    total = 0.0
    for dirpath, dirnames, _ in os.walk(root):
        total += os.stat(dirpath).st_mtime
        if dirpath.count(os.sep) - root.count(os.sep) >= 3:
            dirnames[:] = []
    return total


@st.cache_resource(show_spinner="Finding runs…", max_entries=8)
def _discover(root: str, stamp: float) -> list[Run]:
    return discover_runs(root)


def runs() -> list[Run] | None:
    """The runs of the chosen folder, or None after showing the error in the page."""
    root = os.path.abspath(os.path.expanduser(source()))
    try:
        if not os.path.isdir(root):
            discover_runs(root)  # raises the right message
        return _discover(root, _stamp(root))
    except RunError as e:
        st.error(f"{e}")
        st.caption("Choose another folder in the sidebar, or go back to the demo runs.")
        return None


def pick_run(runs_: list[Run], *, key: str, label: str = "Run", need=None) -> Run | None:
    """A select box over ``runs_`` (optionally only those for which ``need(run)`` holds)."""
    options = [r for r in runs_ if need is None or need(r)]
    if not options:
        st.warning("No run here has what this page needs.")
        return None
    names = [r.name for r in options]
    default = next((i for i, r in enumerate(options) if r.method == "vrm"), 0)
    name = st.selectbox(label, names, index=default, key=key)
    return options[names.index(name)]


@st.cache_resource(show_spinner="Loading snapshot…", max_entries=64)
def snapshot(path: str, mtime: float) -> Snapshot:
    return read_snapshot(path)


def load_snapshot(run: Run, kind: str, epoch: int, batch: int = -1) -> Snapshot | None:
    """A snapshot of ``run`` (cached), or None after showing the error in the page."""
    try:
        sel = run.snapshots[(run.snapshots.kind == kind) & (run.snapshots.epoch == epoch)]
        if kind == "train":
            sel = sel[sel.batch == batch]
        if sel.empty:
            run.snapshot(kind, epoch, batch)  # raises with the list of what exists
        path = sel.iloc[0]["path"]
        return snapshot(path, os.path.getmtime(path))
    except RunError as e:
        st.error(str(e))
        return None
