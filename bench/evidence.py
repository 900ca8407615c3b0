"""The whole evidence study of issue 11, one resumable command per sitting:

    nice -n 19 python -m bench.evidence --jobs 2 --minutes 110

runs bench/robustness.py, bench/virtual_views.py and bench/equal_budget.py in that order (each reuses its
finished runs; no run starts after ``--minutes``), then writes their docs/benchmarks.md sections from
whatever has finished. Commit bench/results/ afterwards (only small files are tracked). Stage 2 of the
equal-budget study (the seeds) starts by itself in the sitting after every method's grid has finished.
"""

from __future__ import annotations

import argparse
import sys
import time

from bench import equal_budget, robustness, virtual_views

STUDIES = {"robustness": robustness, "virtual_views": virtual_views, "equal_budget": equal_budget}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--minutes", type=float, default=110.0, help="no run starts after this many minutes")
    ap.add_argument("--studies", nargs="+", default=list(STUDIES), choices=list(STUDIES))
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args(argv)
    common = ["--jobs", str(args.jobs), *(["--report-only"] if args.report_only else [])]
    start = time.time()
    for name in args.studies:
        left = max(args.minutes - (time.time() - start) / 60, 0.0)
        run = common if args.report_only else [*common, "--minutes", f"{left:.2f}"]
        print(f"== {name}: {' '.join(run)}", file=sys.stderr)
        STUDIES[name].main(run)


if __name__ == "__main__":
    main()
