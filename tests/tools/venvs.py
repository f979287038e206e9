"""Tool venvs of the tools tier, built from the pip part of ``workflow/envs/<tool>.yaml``.

The env file stays the one source of truth: a venv is built with the Python version its conda part
names and ``pip install`` of its pip part, and cached under ``$USVFLOW_TOOL_VENVS`` (default
``~/.cache/usvflow/tool-venvs``) in a folder keyed by the file's SHA-256, so that editing the file
builds a new venv and stale ones are removed. Large files identical to those of another cached venv
(torch and its CUDA libraries) are hard-linked to them. A requirement installed from a git repository is taken from a
source snapshot of the same commit in ``$USVFLOW_VENDOR_DIR`` (default ``tests/tools/data/vendor``, with its
licence in the README there) when one is there, for machines that reach only the package registries.

``python -m tests.tools.venvs kilosort das ...`` builds (or finds) the venvs and prints their folders.
"""

from __future__ import annotations

import filecmp
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
ENVS = ROOT / "workflow" / "envs"
MARKER = ".usvflow-complete"


def cache_dir() -> Path:
    d = os.environ.get("USVFLOW_TOOL_VENVS") or "~/.cache/usvflow/tool-venvs"
    return Path(d).expanduser()


def vendor_dir() -> Path:
    d = os.environ.get("USVFLOW_VENDOR_DIR")
    return Path(d) if d else Path(__file__).parent / "data" / "vendor"


def env_spec(tool: str) -> dict:
    """python version and pip requirements of workflow/envs/<tool>.yaml."""
    path = ENVS / f"{tool}.yaml"
    doc = yaml.safe_load(path.read_text())
    python, pip = None, []
    for dep in doc["dependencies"]:
        if isinstance(dep, dict) and "pip" in dep:
            pip = [str(p) for p in dep["pip"]]
        elif isinstance(dep, str) and re.fullmatch(r"python=\d+\.\d+(\.\d+)?", dep):
            python = dep.split("=", 1)[1]
    if python is None or not pip:
        raise ValueError(f"{path}: needs a python=X.Y dependency and a pip part")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return {"python": python, "pip": pip, "hash": digest, "path": path}


def _vendored(req: str) -> str:
    """A `name @ git+URL@commit` requirement -> the vendored snapshot of that commit, if present."""
    m = re.fullmatch(
        r"\s*([\w.-]+)\s*@\s*git\+https://\S+/([\w.-]+?)(?:\.git)?@([0-9a-f]{7,40})\s*", req
    )
    if not m:
        return req
    repo, commit = m.group(2), m.group(3)
    for tar in sorted(vendor_dir().glob(f"{repo}-*.tar.gz")):
        short = tar.name[len(repo) + 1 : -len(".tar.gz")]
        if commit.startswith(short):
            return str(tar)
    return req


def _python(version: str) -> str:
    major_minor = ".".join(version.split(".")[:2])
    exe = shutil.which(f"python{major_minor}")
    if exe is None:
        raise RuntimeError(f"no python{major_minor} on PATH for the tool venv")
    return exe


def _dedupe(target: Path, min_size: int = 1 << 20) -> int:
    """Hard-link large files of ``target`` that are identical (same relative path, same bytes) to one in
    another complete venv of the cache (torch and its CUDA libraries). Returns the bytes saved."""
    others = [d for d in target.parent.iterdir() if d != target and (d / MARKER).is_file()]
    saved = 0
    for p in target.rglob("*"):
        if p.is_symlink() or not p.is_file() or p.stat().st_size < min_size:
            continue
        rel = p.relative_to(target)
        for o in others:
            q = o / rel
            if q.is_file() and not q.is_symlink() and q.stat().st_size == p.stat().st_size:
                if q.stat().st_ino != p.stat().st_ino and filecmp.cmp(p, q, shallow=False):
                    tmp = p.with_name(p.name + ".usvflow-link")
                    os.link(q, tmp)
                    os.replace(tmp, p)
                    saved += p.stat().st_size
                break
    return saved


def venv(tool: str, log=sys.stderr) -> Path:
    """The cached venv of workflow/envs/<tool>.yaml, built if missing. Returns its folder."""
    spec = env_spec(tool)
    base = cache_dir()
    target = base / f"{tool}-{spec['hash']}"
    if (target / MARKER).is_file():
        return target
    base.mkdir(parents=True, exist_ok=True)
    for old in base.iterdir():  # stale builds of older versions of the env file
        if re.fullmatch(re.escape(tool) + r"-[0-9a-f]{16}", old.name) and old != target:
            shutil.rmtree(old, ignore_errors=True)
    t0 = time.monotonic()
    # console scripts carry the venv's absolute path: build in place, mark complete at the end
    subprocess.run([_python(spec["python"]), "-m", "venv", str(target)], check=True)
    pip = [str(target / "bin" / "python"), "-m", "pip"]
    reqs = [_vendored(r) for r in spec["pip"]]
    subprocess.run([*pip, "install", *reqs], check=True, stdout=log, stderr=log)
    took = time.monotonic() - t0
    saved = _dedupe(target)
    (target / MARKER).write_text(
        f"{spec['path'].name}: built in {took:.0f} s, {saved >> 20} MiB hard-linked\n"
    )
    return target


if __name__ == "__main__":
    for name in sys.argv[1:]:
        folder = venv(name)
        print(folder, (folder / MARKER).read_text().strip(), flush=True)
