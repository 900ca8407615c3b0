import os

import pytest
import torch

# Two workers share two cores: one intra-op thread each avoids oversubscription.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(REPO), "shared")


@pytest.fixture(scope="session")
def shared_dir():
    """../shared beside the checkout (reference data from peer implementations)."""
    if not os.path.isdir(os.path.join(SHARED, "reference")):
        pytest.fail(f"reference data not found at {SHARED}/reference: clone the project beside shared/")
    return SHARED
