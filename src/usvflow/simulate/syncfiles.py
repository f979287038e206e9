"""Simulated files of the ``sync/`` folder: the CoolTerm capture of the Arduino IPIs."""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

from usvflow.io.atomic import atomic_open
from usvflow.simulate.timeline import Timeline

__all__ = ["coolterm_log_name", "write_coolterm_log"]


def coolterm_log_name(capture_datetime: _dt.datetime) -> str:
    """``CoolTerm Capture (sync_pulses.stc) YYYY-MM-DD HH-MM-SS.txt``."""
    return f"CoolTerm Capture (sync_pulses.stc) {capture_datetime:%Y-%m-%d %H-%M-%S}.txt"


def write_coolterm_log(
    sync_dir: str | os.PathLike, timeline: Timeline, capture_datetime: _dt.datetime
) -> str:
    """Write the Arduino's serial output as CoolTerm captures it; return the file name.

    Three header lines (what the sketch prints in ``setup()`` after the capture starts), then every
    ``timeline.ipi_ms`` value, one per line, with the CRLF that ``Serial.println`` sends.
    """
    if isinstance(capture_datetime, str):
        capture_datetime = _dt.datetime.fromisoformat(capture_datetime)
    name = coolterm_log_name(capture_datetime)
    lines = [
        f"Sync pulse generator started {capture_datetime:%Y-%m-%d %H:%M:%S}",
        f"PULSE_LEN={int(round(timeline.led_high_s * 1000))} ms, IPI=random(250, 1500) ms",
        "Inter-pulse intervals (ms):",
    ]
    lines += [str(int(v)) for v in timeline.ipi_ms]
    with atomic_open(Path(sync_dir) / name, "w", newline="", encoding="ascii") as fh:
        fh.write("\r\n".join(lines) + "\r\n")
    return name
