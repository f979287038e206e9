"""Atomic file output: write to a temporary name beside the target, rename on success.

A killed or failed step never leaves a partial file at the documented path, so Snakemake (or a rerun)
sees either the complete product or nothing.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path


class InputError(ValueError):
    """Bad input: the message names the file and what is wrong with it."""

    def __init__(self, path: str | os.PathLike | None, problem: str):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


def _stale_pattern(name: str) -> re.Pattern:
    # .tmp-PID.<name>, .old-PID.<name>, and temporaries of temporaries (.tmp-PID..tmp-PID.<name>)
    return re.compile(r"\.(?:tmp|old)-\d+\.(?:\.tmp-\d+\.)*" + re.escape(name))


def remove_stale_temporaries(target: str | os.PathLike) -> list[Path]:
    """Remove the temporaries of ``target`` that a killed run left beside it; return them.

    Only one job writes a given product at a time (Snakemake's lock and its one-producer-per-file
    rule), so every ``.tmp-PID.<name>`` / ``.old-PID.<name>`` found when a new write of ``<name>``
    starts belongs to an earlier, interrupted write.
    """
    target = Path(target)
    pat = _stale_pattern(target.name)
    removed = []
    try:
        entries = list(os.scandir(target.parent))
    except FileNotFoundError:
        return removed
    for e in entries:
        if pat.fullmatch(e.name):
            p = Path(e.path)
            if e.is_dir(follow_symlinks=False):
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def temporary_name(target: str | os.PathLike, kind: str = "tmp") -> Path:
    """``.tmp-PID.<name>`` beside ``target``, after removing the temporaries of earlier killed writes.

    The temporary keeps ``target``'s suffix at the end of the name (``.x.mp4.tmp-PID`` would
    confuse tools that pick formats by extension).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if kind == "tmp":
        remove_stale_temporaries(target)
    return target.with_name(f".{kind}-{os.getpid()}.{target.name}")


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it over ``target`` if the block succeeds.

    The temporary is named by :func:`temporary_name` (``.tmp-PID.<name>``); a temporary left by a
    killed earlier write of the same target is removed first, so none outlives the next run.
    """
    target = Path(target)
    tmp = temporary_name(target)
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


def save_figure(fig, target: str | os.PathLike, fmt: str | None = None, **kwargs) -> Path:
    """Save a matplotlib figure atomically, with the same bytes on every run.

    matplotlib writes the creation date into SVG metadata and salts the SVG element ids with a
    random UUID unless ``svg.hashsalt`` is set; both are fixed here. ``fmt`` (SVG or PNG) defaults
    to the suffix.
    """
    import matplotlib

    target = Path(target)
    fmt = (fmt or target.suffix.lstrip(".") or "svg").lower()
    metadata = {"svg": {"Date": None}, "png": {"Software": None}}.get(fmt, {})
    with matplotlib.rc_context({"svg.hashsalt": "usvflow"}), atomic_path(target) as tmp:
        fig.savefig(tmp, format=fmt, metadata=metadata, **kwargs)
    return target
