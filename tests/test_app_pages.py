"""Every page registered in the router (vrm_app/main.py) renders on the demo runs without an exception or an error.

The pages are read from main.py itself, so a page added to the router is covered without editing this file.
"""

import os
import re

import pytest
from streamlit.testing.v1 import AppTest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN = os.path.join(REPO, "vrm_app", "main.py")


def registered_pages() -> list[str]:
    """The page scripts of every ``st.Page(HERE / "views/...py", ...)`` in vrm_app/main.py, relative to vrm_app/."""
    with open(MAIN, encoding="utf-8") as f:
        return re.findall(r"st\.Page\(\s*HERE\s*/\s*[\"'](views/[^\"']+\.py)[\"']", f.read())


PAGES = registered_pages()


def test_router_registers_the_known_pages():
    names = {os.path.basename(p)[:-3] for p in PAGES}
    assert {
        "runs",
        "graphs",
        "compare",
        "pruned",
        "ablations",
        "embeddings",
        "attributions",
        "learn",
    } <= names
    assert len(PAGES) == len(set(PAGES)), "a page is registered twice"


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_on_demo(page):
    path = os.path.join(REPO, "vrm_app", page)
    assert os.path.isfile(path), f"{page} is registered in vrm_app/main.py but vrm_app/{page} does not exist"
    at = AppTest.from_file(MAIN, default_timeout=90)
    at.switch_page(page)
    at.run()
    assert not at.exception, f"{page} raised: {[e.value for e in at.exception]}"
    assert not at.error, f"{page} shows errors on the demo runs: {[e.value for e in at.error]}"
    assert len(at.title) + len(at.header) >= 1, f"{page} rendered no title"
    assert len(at.main.children) > 3, f"{page} rendered almost nothing"
