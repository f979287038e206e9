"""The simulator is used by tests, the demo and `usvflow simulate` only: importing any library module
(every module outside ``usvflow.simulate``) does not import it."""

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def test_library_modules_do_not_import_the_simulator():
    modules = sorted(
        ".".join(p.relative_to(SRC).with_suffix("").parts)
        for p in (SRC / "usvflow").rglob("*.py")
        if "simulate" not in p.parts and p.name != "__main__.py"
    )
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m.removesuffix('.__init__'))\n"
        "print(sorted(m for m in sys.modules if m.startswith('usvflow.simulate')))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(SRC))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout
