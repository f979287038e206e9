"""Disk space of the audio chain: how much a session's audio needs, checked before the chain starts.

Each stage of the chain (split → crop → HPSS → high-pass → memmap) writes a full copy of a session's
audio: 24 channels × 250 kHz × 2 bytes = 12 MB per second of recording, 14.4 GB for 20 minutes. The
raw multichannel files are the size of one copy, and cropping only trims the seconds before the first
and after the last video frame, so one copy is bounded by the raw files' data bytes.

Which copies stay on disk depends on the settings: the split (``audio/original``), cropped and HPSS
channels can be temporary (deleted by Snakemake once every job that reads them is done); the filtered
channels and the memmap are always kept. :func:`audio_disk_need` estimates the peak a session adds:

* every kept stage whose files are missing adds one copy;
* temporary stages whose files are missing add at most two copies at any time (a stage and the
  stage that reads it coexist until the reader is done; Snakemake may run the readers of one stage
  while the stage before it is still on disk), so ``min(2, missing temporary stages)`` copies.

:func:`check_audio_disk` adds this up over the sessions of each file system and raises
:class:`DiskSpaceError` naming the bytes needed and free, before any output is written.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..io.atomic import InputError
from .wav import wav_info

#: the audio chain's stages in order (what each writes); the last two are always kept
STAGES = ("split", "cropped", "hpss", "filtered", "memmap")
TEMPORARY_STAGES = ("split", "cropped", "hpss")


class DiskSpaceError(InputError):
    """Not enough free disk space for what a run will write."""


@dataclass
class SessionAudio:
    """One session's audio chain: its raw multichannel files and the files each stage writes."""

    session: str
    root: str  # folder the products go to (its file system receives them)
    raw_files: Sequence[str]
    products: dict[str, Sequence[str]] = field(
        default_factory=dict
    )  # stage -> files (globs allowed)


def copy_bytes(raw_files: Iterable[str | os.PathLike]) -> int:
    """Bytes of one copy of the session's audio: the data bytes of its raw multichannel files."""
    infos = [wav_info(f) for f in raw_files]
    return sum(i.frames * i.block_align for i in infos)


def _present(paths: Sequence[str]) -> bool:
    """All of ``paths`` exist (a path with ``*`` must match at least one file)."""
    if not paths:
        return False
    for p in paths:
        if "*" in p:
            if not any(Path(p).parent.glob(Path(p).name)):
                return False
        elif not os.path.exists(p):
            return False
    return True


def missing_stages(products: dict[str, Sequence[str]]) -> list[str]:
    """Stages that will be written: none if the filtered channels and the memmap exist, else every
    stage whose files are not all present."""
    if _present(products.get("filtered", ())) and _present(products.get("memmap", ())):
        return []
    return [s for s in STAGES if not _present(products.get(s, ()))]


def audio_disk_need(session: SessionAudio, keep: dict[str, bool]) -> int:
    """Peak bytes the session's audio chain adds to its file system (see the module docstring).

    ``keep[stage]``: whether the stage's files are kept (``split``, ``cropped``, ``hpss``; the
    others always are).
    """
    missing = missing_stages(session.products)
    if not missing:
        return 0
    one = copy_bytes(session.raw_files)
    kept = sum(1 for s in missing if s not in TEMPORARY_STAGES or keep.get(s, True))
    temporary = sum(1 for s in missing if s in TEMPORARY_STAGES and not keep.get(s, True))
    return one * (kept + min(2, temporary))


@dataclass
class DiskPlan:
    """Needed and free bytes per file system (keyed by a folder on it)."""

    needed: dict[str, int]
    free: dict[str, int]
    per_session: dict[str, int]

    def short(self, reserve: int = 0) -> list[str]:
        """Folders whose file system lacks room for what is needed plus ``reserve``."""
        return [k for k, n in self.needed.items() if n > 0 and n + reserve > self.free[k]]


def _existing_parent(path: str) -> str:
    p = Path(path).resolve()
    while not p.exists():
        p = p.parent
    return str(p)


def plan_audio_disk(sessions: Iterable[SessionAudio], keep: dict[str, bool]) -> DiskPlan:
    """Needed bytes per file system (sessions on one device add up) and the free bytes there."""
    needed: dict[str, int] = {}
    free: dict[str, int] = {}
    per_session: dict[str, int] = {}
    folder_of_dev: dict[int, str] = {}
    for s in sessions:
        n = audio_disk_need(s, keep)
        per_session[s.session] = n
        folder = _existing_parent(s.root)
        dev = os.stat(folder).st_dev
        key = folder_of_dev.setdefault(dev, folder)
        needed[key] = needed.get(key, 0) + n
        if key not in free:
            free[key] = shutil.disk_usage(key).free
    return DiskPlan(needed, free, per_session)


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB"


def check_audio_disk(
    sessions: Iterable[SessionAudio], keep: dict[str, bool], reserve: int = 0
) -> DiskPlan:
    """Raise :class:`DiskSpaceError` if a file system lacks room for the audio chain plus ``reserve``
    bytes; returns the plan otherwise."""
    sessions = list(sessions)
    plan = plan_audio_disk(sessions, keep)
    short = plan.short(reserve)
    if short:
        lines = []
        for key in short:
            on_it = [
                s
                for s in sessions
                if plan.per_session[s.session]
                and os.stat(_existing_parent(s.root)).st_dev == os.stat(key).st_dev
            ]
            parts = ", ".join(f"{s.session} {_gb(plan.per_session[s.session])}" for s in on_it)
            lines.append(
                f"{key}: the audio chain needs {plan.needed[key]:,} bytes ({_gb(plan.needed[key])}: {parts})"
                f" plus a reserve of {reserve:,} bytes, and {plan.free[key]:,} bytes"
                f" ({_gb(plan.free[key])}) are free"
            )
        temp = [s for s in TEMPORARY_STAGES if keep.get(s, True)]
        settings = ", ".join(f"audio.disk.keep_{s}: false" for s in temp)
        hint = f", make the intermediate audio temporary ({settings})" if temp else ""
        raise DiskSpaceError(
            None,
            "not enough free disk space; nothing was written. "
            + "; ".join(lines)
            + f". Free some space{hint}, or switch the check off (audio.disk.check_free_space: false).",
        )
    return plan
