"""Shared helpers for the benchmark scripts: machine description and docs/benchmarks.md sections.

Each benchmark owns one section of ``docs/benchmarks.md`` delimited by HTML comments
``<!-- section:NAME -->`` ... ``<!-- /section:NAME -->``; rerunning a benchmark replaces only its section.
"""

from __future__ import annotations

import os
import platform
import re
from datetime import date

import torch

from vrm_train.fileio import atomic_write_text

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "benchmarks.md")
HEADER = (
    "# Benchmarks\n\nEvery table below is written by the script named in its section; do not edit by hand.\n"
)


def machine() -> str:
    """One line naming the hardware and software a table was measured on."""
    if torch.cuda.is_available():
        dev = f"GPU {torch.cuda.get_device_name(0)}"
    else:
        dev = f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    return f"{dev}; torch {torch.__version__}; python {platform.python_version()}; {date.today().isoformat()}"


README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def write_section(name: str, markdown: str, path: str | None = None) -> None:
    """Replace (or append) the section ``name`` of the benchmarks page (``path``, default :data:`DOC`, read
    at call time so that tests can point it elsewhere) with ``markdown``.

    When the README holds the same section markers, its copy is replaced too (the README's results
    section shows the latest tables without anyone retyping them)."""
    path = DOC if path is None else path
    begin, end = f"<!-- section:{name} -->", f"<!-- /section:{name} -->"
    block = f"{begin}\n{markdown.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    text = HEADER
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            text = f.read()
    text = (
        pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    )
    atomic_write_text(path, text)
    if path == DOC and os.path.exists(README):
        with open(README, encoding="utf-8") as f:
            readme = f.read()
        if pattern.search(readme):
            atomic_write_text(README, pattern.sub(lambda _: block, readme))


def markdown_table(headers: list[str], rows: list[list[object]]) -> str:
    """A GitHub markdown table; numbers are formatted by the caller."""
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)
