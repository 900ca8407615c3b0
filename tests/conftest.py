import os

import pytest
import torch

# Two workers share two cores: one intra-op thread each avoids oversubscription.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

REFERENCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "reference")


@pytest.fixture(autouse=True)
def _benchmark_pages_stay_untouched(tmp_path_factory, monkeypatch):
    """A benchmark script run by a test writes its tables into a scratch copy of the pages, never into the
    repository's docs/benchmarks.md or README.md."""
    from bench import report

    scratch = tmp_path_factory.mktemp("pages")
    monkeypatch.setattr(report, "DOC", str(scratch / "benchmarks.md"))
    monkeypatch.setattr(report, "README", str(scratch / "README.md"))


@pytest.fixture(scope="session")
def reference_dir():
    """tests/data/reference: the peer implementations' reference data the tests compare with (see its README)."""
    if not os.path.isfile(os.path.join(REFERENCE, "README.md")):
        pytest.fail(
            f"reference data not found at {REFERENCE}: it is part of the repository; restore it with git"
        )
    return REFERENCE
