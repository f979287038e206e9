"""The tools tier: the workflow's GPU rules run through Snakemake with the real tools (DAS, sleap-nn,
Kilosort4, vocalocator, vocalocator-ssl), each in a venv built from the pip part of its env file
(tests/tools/venvs.py), on simulated sessions, with models trained in the tests.

These tests (marker ``tools``) are collected only with ``USVFLOW_TOOLS=1`` (``make test-tools``): they
install several GB of packages. ``USVFLOW_TOOLS_DEVICE=cuda`` runs training and inference on the GPU
(default ``cpu``). The env-file and model-guard tests beside them run in every test run.
"""

import os

import pytest

from .venvs import venv

DEVICE = os.environ.get("USVFLOW_TOOLS_DEVICE", "cpu")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("USVFLOW_TOOLS") == "1":
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("tools") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def tool_python():
    """tool_python("kilosort") -> the Python of that tool's venv (built on first use)."""

    def get(tool):
        return venv(tool) / "bin" / "python"

    return get


def tool_env(extra=None):
    """Environment of a tool process: CPU-only unless USVFLOW_TOOLS_DEVICE=cuda."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(extra or {}))
    if DEVICE == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env
