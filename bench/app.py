"""App responsiveness on the demo runs: first loads, warm interactions and the foreign-checkpoint flow.

    python -m bench.app                      # server-side times (Streamlit AppTest), writes the "app" section
    python -m bench.app --repeats 5 --no-write

*First load* of a page: a new session opens it with every st.cache_data/st.cache_resource cache cleared (runs,
snapshots, graphs and models are loaded again; Python modules stay imported, as on a running server).
*Interactions*: in one session, after the page's first load, a widget is set to each of a list of values and
the rerun is timed: a slider moved to new positions (the real pruning code re-runs on saved logits), a radio
or select box switched. AppTest runs the script in-process: these are the server-side times a user waits
for, without browser drawing (tests/test_browser.py drives the real browser, untimed). Targets (issue 13): first load < 3 s, every warm
interaction < 1 s (checked on the median and shown with the slowest move); open checkpoints: 3 snapshots of
a 32-px CIFAR pair on a folder of PNGs < 15 s (bench/app_live.py). The machine's load average is printed:
other jobs share its cores, and every time here grows with it.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import statistics
import sys
import time

import streamlit as st
from streamlit.testing.v1 import AppTest

from bench.app_live import LIVE_TARGET_S, live_times
from bench.report import machine, markdown_table, write_section

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN = os.path.join(REPO, "vrm_app", "main.py")
FIRST_TARGET_S, INTERACTION_TARGET_S = 3.0, 1.0
#: (what, page, widget type, key, values set one after the other)
INTERACTIONS = [
    ("Affinity graphs: UEP ratio slider", "views/graphs.py", "slider", "graphs_ratio", [0.3, 0.5, 0.45, 0.2]),
    ("Affinity graphs: edges drawn", "views/graphs.py", "radio", "graphs_show", ["pruned", "score", "kept"]),
    ("Affinity graphs: heatmap quantity", "views/graphs.py", "selectbox", "graphs_quantity", ["score", "status"]),
    ("Pruned edges: UEP ratio slider", "views/pruned.py", "slider", "pruned_ratio", [0.3, 0.5, 0.45, 0.2]),
    ("Pruned edges: teacher-wrong filter", "views/pruned.py", "checkbox", "pruned_t_wrong", [True, False]),
    ("Teacher vs student: epoch", "views/compare.py", "selectbox", "compare_epoch", [3, 1, 0]),
    ("Attributions: Saliency → IG → Saliency", "views/attributions.py", "radio", "attr_method",
     ["integrated_gradients", "saliency"]),
    ("Attributions: images", "views/attributions.py", "multiselect", "attr_samples", [[4, 5], [0, 1, 2]]),
    ("Across runs: baseline", "views/across.py", "selectbox", "across_baseline", ["vrm_resnet8", "kd_resnet8"]),
    ("Ablations: baseline", "views/ablations.py", "selectbox", "abl_baseline", ["vrm_no_ic_resnet8", "vrm_resnet8"]),
]  # fmt: skip


def pages() -> list[str]:
    with open(MAIN, encoding="utf-8") as f:
        return re.findall(r"st\.Page\(\s*HERE\s*/\s*[\"'](views/[^\"']+\.py)[\"']", f.read())


def timed_run(at: AppTest) -> float:
    t0 = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - t0
    if at.exception:
        raise RuntimeError(f"the page raised: {[e.value for e in at.exception]}")
    return elapsed


def clear_caches() -> None:
    st.cache_data.clear()
    st.cache_resource.clear()


def first_load(page: str, timeout: float) -> tuple[float, AppTest]:
    """Seconds of a page's first render in a new session with cold caches, and the session."""
    clear_caches()
    at = AppTest.from_file(MAIN, default_timeout=timeout)
    at.switch_page(page)
    return timed_run(at), at


def widget(at: AppTest, kind: str, key: str):
    return getattr(at, kind)(key=key)


def interaction_times(at: AppTest, kind: str, key: str, values: list) -> list[float]:
    """Seconds of each rerun after setting the widget ``key`` to each value in turn."""
    times = []
    for value in values:
        w = widget(at, kind, key)
        (w.check() if value else w.uncheck()) if kind == "checkbox" else w.set_value(value)
        times.append(timed_run(at))
    return times


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=2, help="rounds over each interaction's values")
    p.add_argument("--timeout", type=float, default=300.0, help="AppTest timeout per run (s)")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = p.parse_args(argv)
    logging.getLogger("streamlit").setLevel(logging.ERROR)  # bare-mode warnings of AppTest/cache clearing
    load_start = os.getloadavg()[0]

    t0 = time.perf_counter()
    AppTest.from_file(MAIN, default_timeout=args.timeout).run()  # imports torch, plotly, the views' modules
    startup = time.perf_counter() - t0

    rows, sessions = [], {}
    for page in pages():
        seconds, at = first_load(page, args.timeout)
        sessions[page] = at
        ok = "✅" if seconds < FIRST_TARGET_S else "❌"
        rows.append([f"first load: {page}", f"{seconds:.2f}", "", f"{ok} < {FIRST_TARGET_S:.0f} s"])
        print(f"first load {page}: {seconds:.2f} s", file=sys.stderr)
    for what, page, kind, key, values in INTERACTIONS:
        at = sessions[page]
        times = [t for _ in range(args.repeats) for t in interaction_times(at, kind, key, values)]
        median, worst = statistics.median(times), max(times)
        ok = "✅" if median < INTERACTION_TARGET_S else "❌"
        rows.append([what, f"{median:.2f}", f"{worst:.2f}", f"{ok} < {INTERACTION_TARGET_S:.0f} s"])
        print(f"{what}: median {median:.2f} s, slowest {worst:.2f} s", file=sys.stderr)
    live = live_times()
    ok = "✅" if max(live["cold"], live["warm"]) < LIVE_TARGET_S else "❌"
    rows.append(
        [
            "Open checkpoints: 3 snapshots, published resnet20 → fresh resnet8, 100-class folder of 32×32 PNGs",
            f"{live['warm']:.1f}",
            f"{max(live['cold'], live['warm']):.1f}",
            f"{ok} < {LIVE_TARGET_S:.0f} s",
        ]
    )
    command = "python -m bench.app" + (f" --repeats {args.repeats}" if args.repeats != 2 else "")
    md = "\n".join(
        [
            "## App responsiveness (app)",
            "",
            f"Command: `{command}`  ",
            f"Machine: {machine()}  ",
            "Demo runs (`data/demo`), Streamlit AppTest: server-side script time, no browser drawing. First "
            "load: a new session, caches cleared. Interactions: one session after the page's first load, the "
            f"widget set to each listed value, {args.repeats} rounds; median and slowest rerun. First script "
            f"run of the process (imports): {startup:.1f} s. Load average at start {load_start:.1f}, at end "
            f"{os.getloadavg()[0]:.1f} (2 cores shared with other jobs: every time grows with it). Open "
            f"checkpoints inputs: {live['inputs']}.",
            "",
            markdown_table(["step", "seconds (median)", "slowest (s)", "target"], rows),
        ]
    )
    print(md)
    if not args.no_write:
        write_section("app", md)
    return md


if __name__ == "__main__":
    main()
