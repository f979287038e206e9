"""Progress bars of the long steps: tqdm on stderr (a rule's log in the workflow), a few lines per step.

In a terminal the bar redraws at most every ``TTY_INTERVAL_S`` seconds. When stderr is not a terminal
(a rule's log file) each update is one plain line, written at most every ``LOG_INTERVAL_S`` seconds, so
a step that runs 10 minutes adds about 20 lines to its log. ``USVFLOW_PROGRESS=0`` (or ``false``,
``no``, ``off``) switches every bar off. Bars only count what a loop already does: they never change
a result.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

from tqdm import tqdm

ENV = "USVFLOW_PROGRESS"
TTY_INTERVAL_S = 0.5
LOG_INTERVAL_S = 30.0
_OFF = {"0", "false", "no", "off"}


def progress_enabled() -> bool:
    """False when the environment variable ``USVFLOW_PROGRESS`` says 0/false/no/off."""
    return os.environ.get(ENV, "1").strip().lower() not in _OFF


class _Lines:
    """A file for tqdm that turns its carriage-return redraws into one line per update (log files)."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, s: str) -> None:
        s = s.replace("\r", "").rstrip()
        if s:
            self.stream.write(s + "\n")

    def flush(self) -> None:
        self.stream.flush()


def progress(
    iterable: Iterable | None = None,
    *,
    total: float | None = None,
    desc: str = "",
    unit: str = "it",
    unit_scale: bool = False,
    enabled: bool = True,
) -> tqdm:
    """A tqdm bar on the current ``sys.stderr`` (use as an iterator wrapper or with ``update``).

    Off when ``enabled`` is False or ``USVFLOW_PROGRESS=0``.
    """
    stream = sys.stderr
    tty = bool(getattr(stream, "isatty", lambda: False)())
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=unit_scale,
        file=stream if tty else _Lines(stream),
        disable=not (enabled and progress_enabled()),
        mininterval=TTY_INTERVAL_S if tty else LOG_INTERVAL_S,
        maxinterval=max(LOG_INTERVAL_S, 10.0),
        dynamic_ncols=tty,
        ncols=None if tty else 100,
        leave=True,
    )
