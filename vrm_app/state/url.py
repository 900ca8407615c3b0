"""Shareable state: the view's folder, run, batch, epoch and options live in the URL (``st.query_params``).

A link such as ``/graphs?folder=/data/runs&run=vrm_r8&batch=probe&epoch=6&uep_ratio=0.3`` reopens that view:
on a session's first script run :func:`restore` keeps the link's parameters as *pending*; the widget helpers
of :mod:`vrm_app.state` take their pending value (:func:`take`) when they set themselves up, if it is valid.
Every run, :func:`begin` clears the URL and each helper writes what it shows back (:func:`share`), so the
address bar always describes the current view, and a reload (a new session) reopens it, folder included.
"""

from __future__ import annotations

import streamlit as st

_PENDING = "_url_pending"
_RESTORED = "_url_restored"
#: URL parameter -> what it holds (documentation for links; the helpers validate every value).
PARAMS = {
    "folder": "runs folder or run directory",
    "run": "run name",
    "batch": "'probe' or a training batch number",
    "epoch": "snapshot epoch",
    "is_edges": "cross_view | all | real_only",
    "uep": "UEP rule",
    "uep_ratio": "UEP ratio",
    "zscore": "true | false",
    "huber_delta": "Huber δ",
    "graph": "inter-sample | inter-class | inter-view",
    "edge": "u,v vertex labels of the inspected edge",
    "baseline": "baseline run of the comparisons",
}


def restore() -> None:
    """On the session's first run: remember the link's parameters (they are applied by the helpers)."""
    if not st.session_state.get(_RESTORED):
        st.session_state[_RESTORED] = True
        st.session_state[_PENDING] = {k: v for k, v in st.query_params.to_dict().items() if k in PARAMS}


def begin() -> None:
    """Start a run's URL from scratch: parameters of another page must not stay in the address bar."""
    if st.query_params.to_dict():
        st.query_params.clear()


def take(name: str) -> str | None:
    """The pending value of a URL parameter (once: later runs follow the widgets), or None."""
    return st.session_state.get(_PENDING, {}).pop(name, None)


def pending(name: str) -> str | None:
    """The pending value without consuming it."""
    return st.session_state.get(_PENDING, {}).get(name)


def share(name: str, value) -> None:
    """Write one parameter of the current view to the URL (booleans as true/false)."""
    if name not in PARAMS:
        raise KeyError(f"unknown URL parameter {name!r}; add it to vrm_app.state.url.PARAMS")
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if st.query_params.get(name) != text:
        st.query_params[name] = text


def as_bool(text: str | None) -> bool | None:
    return None if text is None else text.strip().lower() in ("1", "true", "yes", "on")


def as_float(text: str | None) -> float | None:
    try:
        return None if text is None else float(text)
    except ValueError:
        return None
