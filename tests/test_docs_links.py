"""Every relative link of the README and docs/*.md names a file of the repository, and every #anchor names a
heading of that file (GitHub's rule: lower case, punctuation dropped, spaces to hyphens)."""

import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ["README.md", *(os.path.join("docs", f) for f in sorted(os.listdir(os.path.join(ROOT, "docs"))))]
PAGES = [p for p in PAGES if p.endswith(".md")]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchor(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: str) -> set[str]:
    with open(path, encoding="utf-8") as f:
        return {anchor(line.lstrip("#")) for line in f if re.match(r"#{1,6} ", line)}


def test_anchor_rule_by_hand():
    assert (
        anchor("The evidence study of issue 11 (2026-12-03)") == "the-evidence-study-of-issue-11-2026-12-03"
    )
    assert (
        anchor("Reading the numbers (written by hand; the tables below are the evidence)")
        == "reading-the-numbers-written-by-hand-the-tables-below-are-the-evidence"
    )


@pytest.mark.parametrize("page", PAGES)
def test_relative_links_resolve(page):
    with open(os.path.join(ROOT, page), encoding="utf-8") as f:
        text = f.read()
    bad = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # http(s), mailto: not checked offline
            continue
        file, _, frag = target.partition("#")
        path = (
            os.path.normpath(os.path.join(ROOT, os.path.dirname(page), file))
            if file
            else os.path.join(ROOT, page)
        )
        if not os.path.exists(path):
            bad.append(f"{target}: no file {os.path.relpath(path, ROOT)}")
        elif frag and path.endswith(".md") and frag not in anchors(path):
            bad.append(f"{target}: no heading with anchor #{frag} in {os.path.relpath(path, ROOT)}")
    assert not bad, f"{page}: broken links:\n" + "\n".join(bad)
