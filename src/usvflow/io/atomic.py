"""Atomic file output: write to a temporary name beside the target, rename on success.

A killed or failed step never leaves a partial file at the documented path, so Snakemake (or a rerun)
sees either the complete product or nothing.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path


class InputError(ValueError):
    """Bad input: the message names the file and what is wrong with it."""

    def __init__(self, path: str | os.PathLike | None, problem: str):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it over ``target`` if the block succeeds.

    The temporary file keeps ``target``'s suffix at the end of the name (``.x.mp4.tmp-PID`` would
    confuse tools that pick formats by extension), so it is named ``.tmp-PID.<name>``.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".tmp-{os.getpid()}.{target.name}")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_open(target: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator:
    """Open a temporary file beside ``target`` for writing; rename it over ``target`` on success."""
    with atomic_path(target) as tmp:
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


def _json_safe(obj):
    """Replace NaN/inf floats by None so the file is standard JSON (null, never NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        return _json_safe(obj.item())
    if hasattr(obj, "tolist"):  # numpy array
        return _json_safe(obj.tolist())
    return obj


def write_json(target: str | os.PathLike, data, indent: int = 4) -> None:
    """Write ``data`` as standard JSON (NaN → null, numpy → Python) atomically."""
    with atomic_open(target, "w") as fh:
        json.dump(_json_safe(data), fh, indent=indent, allow_nan=False)
        fh.write("\n")


def read_json(path: str | os.PathLike):
    """Read a JSON file, naming the file in the error if it is not valid JSON."""
    path = Path(path)
    try:
        with open(path) as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON ({exc})") from None


def read_text(path: str | os.PathLike, what: str) -> str:
    """Read a small text file (undecodable bytes replaced), naming the file in the error.

    ``what`` names the expected kind of file in the message for a directory (e.g. "a .meta file").
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except IsADirectoryError:
        raise InputError(path, f"is a directory, not {what}") from None
    return raw.decode("utf-8", errors="replace")
