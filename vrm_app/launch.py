"""``vrm-app``: start the app on the packaged demo runs (an installed package needs no checkout).

Usage: ``vrm-app [streamlit options]``, e.g. ``vrm-app --server.port 8502 --server.headless true``;
every option of ``streamlit run`` is passed on. The app opens on http://localhost:8501 by default.
"""

from __future__ import annotations

import os
import sys

ROUTER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "main.py")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] in (["-h"], ["--help"]):
        print(__doc__.strip())
        return 0
    try:
        from streamlit.web import cli as streamlit_cli
    except ImportError:
        print(
            "vrm-app: error: the app needs its extra dependencies (streamlit, plotly, ...); "
            "install them with: pip install 'vrm[app]'",
            file=sys.stderr,
        )
        return 2
    sys.argv = ["streamlit", "run", ROUTER, "--browser.gatherUsageStats", "false", *args]
    return streamlit_cli.main()


if __name__ == "__main__":
    sys.exit(main())
