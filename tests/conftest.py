"""Shared pytest fixtures.

``slurm_cluster``: one real single-node SLURM cluster (tests/slurm_cluster.py) for the whole
session, started by the first test that asks for it and stopped at the end of the session. Where
SLURM cannot run (binaries missing, not root) the tests that use it are skipped - unless
``USVFLOW_REQUIRE_SLURM=1`` (set by CI), where they fail instead. No command-line option is
needed: ``pytest -m slurm`` selects, ``pytest -m "not slurm"`` deselects them.
"""

import os

import pytest

try:
    from slurm_cluster import ENABLE_HINT, SlurmCluster, SlurmUnavailable, unavailable_reason
except ImportError:  # tests/ imported as a package (rootdir on sys.path)
    from tests.slurm_cluster import (
        ENABLE_HINT,
        SlurmCluster,
        SlurmUnavailable,
        unavailable_reason,
    )


def _skip_or_fail(reason: str):
    if os.environ.get("USVFLOW_REQUIRE_SLURM") == "1":
        pytest.fail(f"USVFLOW_REQUIRE_SLURM=1 but no SLURM cluster: {reason}", pytrace=False)
    pytest.skip(f"SLURM tests skipped ({reason}); {ENABLE_HINT}")


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A running single-node SLURM cluster; ``SLURM_CONF`` points at it while it runs."""
    reason = unavailable_reason()
    if reason:
        _skip_or_fail(reason)
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
    except SlurmUnavailable as exc:
        _skip_or_fail(str(exc))
    try:
        yield cluster
    finally:
        cluster.stop()
