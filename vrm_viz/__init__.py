"""vrm_viz: analysis of runs, checkpoints and relation snapshots (no streamlit here)."""
