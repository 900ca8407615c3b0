"""Launcher for a source checkout: ``streamlit run app/main.py`` runs the app's router, ``vrm_app/main.py``.

The app itself is the installable package ``vrm_app`` (installed users start it with ``vrm-app``). This file
only puts the checkout first on ``sys.path``, so the checkout's own code is what runs, and executes the
router on every rerun.
"""

import os
import runpy
import sys

CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if CHECKOUT not in sys.path:
    sys.path.insert(0, CHECKOUT)

runpy.run_path(os.path.join(CHECKOUT, "vrm_app", "main.py"), run_name="__main__")
