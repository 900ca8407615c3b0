"""Cached models and computations of the Embeddings, Attributions and Learn VRM pages.

Models are cached resources (one per checkpoint file and modification time); projections, attributions
and gradient experiments are cached data (one per input and setting). Helpers that can fail show the
reason in the page and return None, so views never print a traceback.
"""

from __future__ import annotations

import os

import pandas as pd
import streamlit as st
from torch import nn

from vrm_app import state
from vrm_train.checkpoint import CheckpointError
from vrm_viz import attribution, embeddings, spurious
from vrm_viz.models import load_student, load_teacher
from vrm_viz.runs import Run, RunError, open_run
from vrm_viz.snapshot import Snapshot


def _mtime(path: str | None) -> float:
    return os.path.getmtime(path) if path and os.path.exists(path) else 0.0


def _stamp(run: Run, which: str) -> float:
    """Changes when the checkpoint behind ``which`` changes on disk (teacher: the file or run folder)."""
    if which == "student":
        return _mtime(run.checkpoint("student"))
    path = run.teacher_checkpoint()
    if path and os.path.isdir(path):
        path = os.path.join(path, "checkpoints", "student.pt")
    return _mtime(path)


@st.cache_resource(show_spinner="Loading the model from its checkpoint…", max_entries=16)
def _model(run_path: str, which: str, stamp: float) -> nn.Module:
    run = open_run(run_path)
    return load_student(run) if which == "student" else load_teacher(run)


def models(run: Run, *, need_teacher: bool = False) -> dict[str, nn.Module] | None:
    """{"teacher": ..., "student": ...} loaded from the run's checkpoints (cached). A missing teacher is
    explained and left out (unless ``need_teacher``); a missing student shows the reason and gives None."""
    out = {}
    for which in ("teacher", "student"):
        if which == "teacher" and run.teacher is None and not need_teacher:
            st.info(
                f"Run {run.name} was trained without a teacher ('{run.method}'): only its own model is shown."
            )
            continue
        try:
            out[which] = _model(run.path, which, _stamp(run, which))
        except (CheckpointError, RunError, ValueError, OSError) as e:
            st.error(f"Cannot load the {which} of {run.name}: {e}")
            if which == "student" or need_teacher:
                return None
    return out


def full_vrm_first(runs: list[Run]) -> list[Run]:
    """``runs`` with one complete VRM run (cross-view edges, UEP on, both λ > 0; lowest seed, then
    shortest name) moved before the other VRM runs, so that a run picker opens on it, not on an ablation."""
    vrm = [r for r in runs if r.method == "vrm"]

    def complete(r: Run) -> bool:
        o = spurious.vrm_options(r.config)
        raw = (r.config.get("vrm") or {}).get("uep", o["uep"])
        return o["is_edges"] == "cross_view" and raw != "none" and o["lambda_is"] > 0 and o["lambda_ic"] > 0

    full = sorted(
        (r for r in vrm if complete(r)), key=lambda r: (r.config.get("seed", 0), len(r.name), r.name)
    )
    if not full:
        return runs
    rest = [r for r in runs if r is not full[0]]
    at = next((i for i, r in enumerate(rest) if r.method == "vrm"), len(rest))
    return [*rest[:at], full[0], *rest[at:]]


def probe_snapshot(run: Run, *, key: str, label: str = "Epoch of the probe snapshot") -> Snapshot | None:
    """An epoch picker over the run's probe snapshots (default: the last) and the chosen snapshot."""
    epochs = run.snapshot_epochs("probe")
    if not epochs:
        st.warning(f"Run {run.name} has no probe snapshot yet (they are written at the snapshot epochs).")
        return None
    epoch = st.selectbox(label, epochs, index=len(epochs) - 1, key=key)
    return state.load_snapshot(run, "probe", epoch)


def sample_labels(snap: Snapshot) -> list[str]:
    return [f"{i}: {snap.classes[int(c)]}" for i, c in enumerate(snap.targets)]


def selected_samples(event) -> list[int]:
    """Sorted batch positions of the points selected in a chart whose points carry them as customdata
    (the value ``st.plotly_chart(..., on_select="rerun")`` returns; a dict or attribute dictionary)."""
    selection = (event or {}).get("selection") or {}
    out = set()
    for p in selection.get("points") or []:
        data = p.get("customdata")
        if isinstance(data, list | tuple):
            data = data[0] if data else None
        if data is not None:
            out.add(int(data))
    return sorted(out)


@st.cache_data(
    show_spinner="Projecting the features (t-SNE takes a few seconds, once per setting)…", max_entries=64
)
def embedding(
    path: str, mtime: float, method: str, seed: int, perplexity: float
) -> tuple[pd.DataFrame, float | None]:
    """(embedding table, teacher–student 5-NN agreement or None without teacher) of a snapshot."""
    snap = state.snapshot(path, mtime)
    df = embeddings.embedding_frame(snap, method=method, seed=seed, perplexity=perplexity)
    agree = None
    if snap.feat_t is not None and snap.feat_s is not None:
        agree = embeddings.neighbour_agreement(snap.feat_t, snap.feat_s, k=min(5, snap.batch_size - 1))
    return df, agree


def embeddings_for(snap: Snapshot, *, method: str, seed: int, perplexity: float):
    """Cached :func:`embedding` of a loaded snapshot; shows the error and returns None on failure."""
    try:
        return embedding(snap.path, _mtime(snap.path), method, int(seed), float(perplexity))
    except ValueError as e:
        st.error(f"Cannot project this snapshot: {e}")
        return None


@st.cache_data(show_spinner="Computing attributions…", max_entries=64)
def _attributions(
    run_path: str,
    stamps: tuple,
    snap_path: str,
    snap_mtime: float,
    samples: tuple,
    method: str,
    target: str,
    view: str,
    n_steps: int,
    which: tuple,
) -> list[attribution.SampleAttribution]:
    snap = state.snapshot(snap_path, snap_mtime)
    loaded = {w: _model(run_path, w, s) for w, s in zip(which, stamps, strict=True)}
    return attribution.explain(
        loaded, snap, list(samples), method=method, target=target, view=view, n_steps=n_steps
    )


def attributions(
    run: Run,
    loaded: dict,
    snap: Snapshot,
    samples: list[int],
    *,
    method: str,
    target: str,
    view: str,
    n_steps: int,
):
    """Cached :func:`vrm_viz.attribution.explain` for the models in ``loaded`` (from :func:`models`)."""
    which = tuple(loaded)
    stamps = tuple(_stamp(run, w) for w in which)
    try:
        return _attributions(
            run.path,
            stamps,
            snap.path,
            _mtime(snap.path),
            tuple(samples),
            method,
            target,
            view,
            n_steps,
            which,
        )
    except (ValueError, RuntimeError) as e:
        st.error(f"Cannot compute attributions: {e}")
        return None


@st.cache_data(show_spinner="Differentiating every loss twice…", max_entries=128)
def _spurious(
    path: str,
    mtime: float,
    size: int,
    sample: int,
    wrong: int,
    strength: float,
    config: dict,
    uep: str,
    ratio: float,
):
    snap = state.snapshot(path, mtime)
    b = slice(0, size)
    return spurious.experiment(
        snap.s[b],
        snap.s_v[b],
        snap.t[b],
        snap.t_v[b],
        config,
        sample=sample,
        wrong_class=wrong,
        strength=strength,
        uep=uep,
        uep_ratio=ratio,
    )


def spurious_experiment(
    snap: Snapshot,
    config: dict,
    *,
    size: int,
    sample: int,
    wrong_class: int,
    strength: float,
    uep: str,
    uep_ratio: float,
):
    """Cached :func:`vrm_viz.spurious.experiment` (per-sample table, summary, pruned edges, verdict)."""
    if not snap.has_teacher:
        st.warning("This snapshot has no teacher logits, so there is no teacher prediction to corrupt.")
        return None
    try:
        return _spurious(
            snap.path,
            _mtime(snap.path),
            size,
            sample,
            wrong_class,
            float(strength),
            config,
            uep,
            float(uep_ratio),
        )
    except ValueError as e:
        st.error(f"Cannot run the experiment: {e}")
        return None
