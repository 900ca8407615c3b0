"""App responsiveness on the demo runs, measured with Streamlit's AppTest (no browser, no network).

    python -m bench.app                      # every page of vrm_app/main.py, writes the "app" section
    python -m bench.app --repeats 5 --no-write

For each page registered in vrm_app/main.py: the *cold* render (all st.cache_data/st.cache_resource caches
cleared, so runs, snapshots and models are loaded again; Python modules stay imported) and the *cached*
render (the same page run again, median of ``--repeats``). Then the affinity-graph pruning slider: the
graphs page's UEP-ratio slider is moved and the rerun timed (median over ``--repeats`` moves), i.e. the
real pruning function running on saved logits plus redrawing. AppTest runs the script in-process, so
these times are the server-side script time a user waits for, without browser drawing.
Targets: cached render < 2 s per page, slider update < 0.5 s. Open checkpoints: see bench/app_live.py
(3 snapshots of a 32-px CIFAR pair on a folder of PNGs, < 15 s).
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
CACHED_TARGET_S, SLIDER_TARGET_S = 2.0, 0.5
SLIDER_KEYS = ("graphs_ratio", "graphs_uep_ratio")  # the graphs page names it graphs_ratio


def pages() -> list[str]:
    with open(MAIN, encoding="utf-8") as f:
        return re.findall(r"st\.Page\(\s*[\"'](views/[^\"']+\.py)[\"']", f.read())


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


def page_times(page: str, repeats: int, timeout: float) -> tuple[float, float]:
    """(cold, median cached) seconds of one page."""
    clear_caches()
    at = AppTest.from_file(MAIN, default_timeout=timeout)
    at.switch_page(page)
    cold = timed_run(at)
    cached = statistics.median(timed_run(at) for _ in range(repeats))
    return cold, cached


def find_slider(at: AppTest):
    """The UEP-ratio slider of the graphs page."""
    found = [w for w in at.slider if w.key in SLIDER_KEYS]
    if not found:
        raise LookupError(
            f"no slider {SLIDER_KEYS} on the graphs page; its sliders: {[w.key for w in at.slider]}"
        )
    return found[0]


def slider_values(widget) -> list[float]:
    """Every position of the numeric slider."""
    n = round((widget.max - widget.min) / widget.step)
    return [round(widget.min + i * widget.step, 10) for i in range(n + 1)]


def slider_time(repeats: int, timeout: float) -> tuple[float, str]:
    """Median seconds of a rerun after moving the UEP-ratio slider (caches warm), and what was moved."""
    at = AppTest.from_file(MAIN, default_timeout=timeout)
    at.switch_page("views/graphs.py")
    timed_run(at)
    widget = find_slider(at)
    start = widget.value
    values = [v for v in slider_values(widget) if v != start]
    picks = [values[(i * 7 + len(values) // 2) % len(values)] for i in range(repeats)]
    times = []
    for v in picks:
        before = [m.value for m in at.metric]
        find_slider(at).set_value(v)
        times.append(timed_run(at))
        assert find_slider(at).value == v, "the slider did not take the new value"
        if before and [m.value for m in at.metric] == before:
            print(f"note: moving the slider to {v} left the page's metrics unchanged", file=sys.stderr)
    return statistics.median(times), f"`{widget.key}` moved from {start} through {sorted(set(picks))}"


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3, help="cached reruns and slider moves (median)")
    p.add_argument("--timeout", type=float, default=300.0, help="AppTest timeout per run (s)")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = p.parse_args(argv)
    logging.getLogger("streamlit").setLevel(logging.ERROR)  # bare-mode warnings of AppTest/cache clearing
    load = os.getloadavg()[0]

    warm = AppTest.from_file(MAIN, default_timeout=args.timeout)
    t0 = time.perf_counter()
    warm.run()  # first script run of the process: imports torch, plotly, the views' modules
    startup = time.perf_counter() - t0

    rows, worst = [], 0.0
    for page in pages():
        cold, cached = page_times(page, args.repeats, args.timeout)
        worst = max(worst, cached)
        ok = "✅" if cached < CACHED_TARGET_S else "❌"
        rows.append([page, f"{cold:.2f}", f"{cached:.2f}", f"{ok} < {CACHED_TARGET_S:.0f} s"])
        print(f"{page}: cold {cold:.2f} s, cached {cached:.2f} s", file=sys.stderr)
    slider, moved = slider_time(args.repeats, args.timeout)
    ok = "✅" if slider < SLIDER_TARGET_S else "❌"
    rows.append(["graphs: pruning slider update", "", f"{slider:.3f}", f"{ok} < {SLIDER_TARGET_S} s"])
    live = live_times()
    ok = "✅" if max(live["cold"], live["warm"]) < LIVE_TARGET_S else "❌"
    rows.append(
        [
            "open checkpoints: 3 snapshots, resnet20 → resnet8, 100-class folder of 32×32 PNGs",
            f"{live['cold']:.1f}",
            f"{live['warm']:.1f}",
            f"{ok} < {LIVE_TARGET_S:.0f} s",
        ]
    )

    command = "python -m bench.app" + (f" --repeats {args.repeats}" if args.repeats != 3 else "")
    md = "\n".join(
        [
            "## App responsiveness (app)",
            "",
            f"Command: `{command}`  ",
            f"Machine: {machine()}  ",
            f"Demo runs (`data/demo`), Streamlit AppTest (server-side script time, no browser drawing). "
            f"Cold: caches cleared; cached: median of {args.repeats} reruns. First script run of the process "
            f"(imports): {startup:.1f} s. Slider: {moved}, median of {args.repeats} moves. "
            f"Load average at start: {load:.1f} (other jobs share the cores).",
            "",
            markdown_table(["page", "cold render (s)", "cached render (s)", "target"], rows),
        ]
    )
    print(md)
    if not args.no_write:
        write_section("app", md)
    return md


if __name__ == "__main__":
    main()
