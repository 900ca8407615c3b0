"""Helpers shared by the AppTest modules."""

from streamlit.testing.v1 import AppTest


def run_box(at: AppTest, prefix: str):
    """The run select box of a page (its key is ``<prefix>_run@<folder digest>``: one widget per folder)."""
    found = [s for s in at.selectbox if (s.key or "").startswith(f"{prefix}_run@")]
    if len(found) != 1:
        raise LookupError(f"{len(found)} run boxes with prefix {prefix!r}: {[s.key for s in at.selectbox]}")
    return found[0]
