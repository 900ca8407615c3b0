"""Session state and cached loading shared by every view.

Views call these helpers instead of touching files: runs are discovered once per folder (and again
when a run changes on disk), snapshots are loaded once per file. State keys are defined here, once.
"""

from __future__ import annotations

import hashlib
import os

import pandas as pd
import streamlit as st

from vrm_app.state import url
from vrm_viz.runs import DEMO_DIR, Run, RunError, check_snapshots, read_snapshot, scan_runs
from vrm_viz.snapshot import Snapshot

KEY_SOURCE = "source_path"  # folder of runs (or one run directory) the app shows


def source() -> str:
    return st.session_state.get(KEY_SOURCE) or DEMO_DIR


def _reset_source() -> None:
    st.session_state[KEY_SOURCE] = DEMO_DIR  # in a callback: runs before the text box is drawn again


def show_source(path: str) -> None:
    """Make the app show ``path`` (use as a button callback: it runs before the sidebar box is drawn)."""
    st.session_state[KEY_SOURCE] = path


def sidebar_source() -> None:
    """The sidebar box that chooses which folder of runs the app shows (default: the demo, or the
    ``folder`` of the link the session was opened with); the choice is written back to the URL."""
    linked = url.take("folder")
    if linked:
        st.session_state[KEY_SOURCE] = linked
    st.session_state.setdefault(KEY_SOURCE, DEMO_DIR)
    if source() != DEMO_DIR:
        url.share("folder", source())
    with st.sidebar:
        st.text_input(
            "Runs folder or run directory",
            key=KEY_SOURCE,
            help="Any folder holding run directories written by vrm-train (searched 3 levels deep).",
        )
        if source() != DEMO_DIR:
            st.button("Back to the demo runs", key="source_reset", on_click=_reset_source)


def _stamp(root: str) -> float:
    """Changes when any run under ``root`` gains an epoch or a snapshot (cheap: directory mtimes)."""
    total = 0.0
    for dirpath, dirnames, _ in os.walk(root):
        total += os.stat(dirpath).st_mtime
        if dirpath.count(os.sep) - root.count(os.sep) >= 3:
            dirnames[:] = []
    return total


@st.cache_resource(show_spinner="Finding runs…", max_entries=8)
def _scan(root: str, stamp: float) -> tuple[list[Run], list[RunError]]:
    return scan_runs(root)


def runs() -> list[Run] | None:
    """The runs of the chosen folder, or None after showing the error in the page.

    Broken runs (corrupt config.yaml, unreadable metrics.csv or summary.json) are skipped with a warning
    naming each of them; when no run can be opened the page gets an error and None."""
    root = os.path.abspath(os.path.expanduser(source().strip()))
    try:
        if not os.path.isdir(root):
            scan_runs(root)  # raises the right message
        found, problems = _scan(root, _stamp(root))
    except RunError as e:
        found, problems = [], [e]
    if problems and found:
        with st.expander(f"⚠️ {len(problems)} run folder(s) under {root} could not be opened", expanded=False):
            for e in problems:
                st.warning(str(e))
    if not found:
        for e in problems:
            st.error(str(e))
        st.caption("Choose another folder in the sidebar, or go back to the demo runs.")
        return None
    return found


def follow_source(*keys: str) -> None:
    """Forget the widgets ``keys`` when the runs folder changed since they were last drawn: their options
    are run names or terms of the old folder, so their old choices would be dropped or invalid."""
    marker, src = f"{keys[0]}__source", source()
    if st.session_state.get(marker) != src:
        for k in keys:
            st.session_state.pop(k, None)
        st.session_state[marker] = src


def run_key(key: str) -> str:
    """The widget key of a run box: it names the folder, so a box of another folder is another widget
    (its label can never show a run of the old folder while the page shows one of the new)."""
    digest = hashlib.sha1(os.path.abspath(source()).encode()).hexdigest()[:10]
    return f"{key}@{digest}"


def pick_run(runs_: list[Run], *, key: str, label: str = "Run", need=None, share: bool = True) -> Run | None:
    """A select box over ``runs_`` (optionally only those for which ``need(run)`` holds); its choice
    follows the folder and the link's ``run`` parameter, and is written to the URL (``share``)."""
    options = [r for r in runs_ if need is None or need(r)]
    if not options:
        st.warning("No run here has what this page needs.")
        return None
    names = [r.name for r in options]
    vrm = [i for i, r in enumerate(options) if r.method == "vrm"]  # the main VRM run, not an ablation
    default = names[min(vrm, key=lambda i: (len(names[i]), names[i]))] if vrm else names[0]
    wkey = run_key(key)
    linked = url.take("run") if share else None
    if linked in names:
        st.session_state[wkey] = linked
    if st.session_state.get(wkey) not in names:
        st.session_state[wkey] = default
    name = st.selectbox(label, names, key=wkey)
    if share:
        url.share("run", name)
    return options[names.index(name)]


def snapshot_status(run: Run) -> pd.DataFrame:
    """:func:`vrm_viz.runs.check_snapshots` of ``run``, cached until its snapshots folder changes."""
    folder = os.path.join(run.path, "snapshots")
    stamp = os.stat(folder).st_mtime if os.path.isdir(folder) else 0.0
    return _check(run.path, stamp, run)


@st.cache_data(show_spinner="Checking snapshots…", max_entries=32)
def _check(path: str, stamp: float, _run: Run) -> pd.DataFrame:
    return check_snapshots(_run)


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
