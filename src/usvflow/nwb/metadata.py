"""Session metadata for the NWB file: the experimental code in words, the session's metadata YAML and
its start time.

The experimental code (sessions sheet column ``experimental_code``, or ``Session.
session_experiment_code`` of ``<session>_metadata.yaml``) is a string of one-letter flags and digit
groups; the letters are case-sensitive (``E`` e-phys, ``e`` estrus). See ``docs/nwb.md``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from usvflow.io.atomic import InputError

__all__ = ["CODE_LETTERS", "decode_experimental_code", "read_metadata_yaml", "session_start_time"]

CODE_LETTERS = {
    "A": "ablation",
    "E": "electrophysiology",
    "H": "chemogenetics",
    "O": "optogenetics",
    "P": "playback",
    "B": "behavior",
    "V": "devocalization",
    "U": "urine/bedding",
    "Q": "alone",
    "C": "courtship",
    "X": "females",
    "Y": "males",
    "L": "light",
    "D": "dark",
    "F": "female",
    "M": "male",
    "S": "single-housed",
    "G": "group-housed",
    "p": "proestrus",
    "e": "estrus",
    "m": "metestrus",
    "d": "diestrus",
}


def decode_experimental_code(code: str) -> str:
    """``"E2MF"`` → ``"electrophysiology; 2 animals; male; female"`` (empty code → ``""``).

    A letter outside the alphabet raises :class:`InputError` naming the code and the letter.
    """
    code = (code or "").strip()
    words = []
    for tok in re.findall(r"\d+|\D", code):
        if tok.isdigit():
            words.append(f"{int(tok)} animal{'s' if int(tok) != 1 else ''}")
        elif tok in CODE_LETTERS:
            words.append(CODE_LETTERS[tok])
        else:
            raise InputError(
                None,
                f"experimental code {code!r}: unknown letter {tok!r} (known: {''.join(CODE_LETTERS)})",
            )
    return "; ".join(words)


def read_metadata_yaml(path: str | os.PathLike | None) -> dict:
    """The session's ``*_metadata.yaml`` as a dict (``{}`` for None); a clear error when malformed."""
    if path is None:
        return {}
    try:
        with open(path) as fh:
            data = yaml.safe_load(fh) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(path, f"cannot be read as YAML ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(path, "is not a mapping of sections (Session, Subjects, ...)")
    return data


def session_start_time(date_joint: str, timezone: str) -> dt.datetime:
    """The video recording's start (``YYYYMMDDhhmmss`` of the session's video folder) in ``timezone``."""
    try:
        tz = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            None, f"nwb.timezone {timezone!r} is not an IANA time zone name (e.g. America/New_York)"
        ) from None
    try:
        return dt.datetime.strptime(date_joint, "%Y%m%d%H%M%S").replace(tzinfo=tz)
    except ValueError:
        raise InputError(None, f"video time stamp {date_joint!r} is not YYYYMMDDhhmmss") from None


def find_metadata_yaml(session_dir: str | os.PathLike) -> Path | None:
    found = sorted(Path(session_dir).glob("*_metadata.yaml"))
    return found[0] if found else None
