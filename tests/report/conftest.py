import os
import shutil
from pathlib import Path

import pytest


@pytest.fixture
def artifacts(tmp_path, request):
    """Where a test's screenshots go: tmp_path, copied to $USVFLOW_TEST_ARTIFACTS/<test> when set."""
    yield tmp_path
    dest = os.environ.get("USVFLOW_TEST_ARTIFACTS")
    if dest:
        d = Path(dest) / request.node.name
        d.mkdir(parents=True, exist_ok=True)
        for p in tmp_path.glob("*.png"):
            shutil.copy(p, d / p.name)
