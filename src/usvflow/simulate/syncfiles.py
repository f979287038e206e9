"""Simulated files of the ``sync/`` folder: the CoolTerm capture of the Arduino IPIs and an optional
NI-DAQ (SpikeGLX ``.nidq.bin``/``.meta``) recording of the triggerbox and LED pulses."""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

import numpy as np

from usvflow.io.atomic import atomic_open
from usvflow.simulate.timeline import SampleClock, Timeline

__all__ = ["coolterm_log_name", "write_coolterm_log", "write_nidq"]

#: calibrated NI-DAQ rate of the original's BNC-2110 (``calibrated_sample_rates_nidq.ini``)
NIDQ_RATE = 62500.72887


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


def write_nidq(
    sync_dir: str | os.PathLike,
    timeline: Timeline,
    name: str,
    rng: np.random.Generator,
    *,
    rate: float = NIDQ_RATE,
    start_s: float = 0.2,
    n_analog: int = 8,
    triggerbox_bit: int = 5,
    sync_bit: int = 7,
    block: int = 65536,
) -> dict:
    """Write ``sync/<name>.nidq.bin`` + ``.nidq.meta``: ``n_analog`` noise channels and a digital word.

    The NI-DAQ starts at true time ``start_s`` (its clock runs at exactly ``rate``, the calibrated rate
    written as ``niSampRate``) and records until the triggerbox post-roll has ended. In the last saved
    column (the digital word) bit ``triggerbox_bit`` carries the triggerbox pulses and bit ``sync_bit``
    the Arduino LED train (as the LED sees it: no audio delay). Returns the truth: ``file``, ``rate``,
    ``start_s``, ``n_samples``, ``n_channels``, bits, ``frame0_sample`` (first high sample of the frame-0
    pulse) and ``end_sample`` (of the pulse after the last common frame).
    """
    from usvflow.io.atomic import atomic_path
    from usvflow.io.spikeglx import write_meta

    clk = SampleClock(float(start_s), float(rate))
    end_s = float(timeline.triggerbox_on_s[-1]) + 0.3
    n = int(np.floor((end_s - start_s) * rate))
    n_ch = n_analog + 1
    on = timeline.triggerbox_on_s
    path = Path(sync_dir) / f"{name}.nidq.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        for b0 in range(0, n, block):
            m = min(block, n - b0)
            x = np.rint(rng.normal(0.0, 200.0, size=(m, n_ch))).astype(np.int16)
            tb = clk.pulse_mask(m, on, on + timeline.pulse_high_s, offset=b0)
            led = clk.pulse_mask(m, timeline.led_on_s, timeline.led_off_s, offset=b0)
            x[:, -1] = (tb.astype(np.int16) << triggerbox_bit) | (led.astype(np.int16) << sync_bit)
            fh.write(x.tobytes())
    write_meta(
        path.with_suffix(".meta"),
        {
            "typeThis": "nidq",
            "nSavedChans": n_ch,
            "niSampRate": repr(float(rate)),
            "snsMnMaXaDw": f"0,0,{n_analog},1",
            "snsSaveChanSubset": "all",
            "fileSizeBytes": n * n_ch * 2,
            "fileTimeSecs": n / rate,
            "firstSample": 0,
        },
        newline="\r\n",
    )
    k = clk.first_sample_at_or_after(on)
    return {
        "file": path.name,
        "rate": float(rate),
        "start_s": float(start_s),
        "n_samples": int(n),
        "n_channels": int(n_ch),
        "triggerbox_bit": int(triggerbox_bit),
        "sync_bit": int(sync_bit),
        "frame0_sample": int(k[timeline.first_frame_pulse]),
        "end_sample": int(k[timeline.first_frame_pulse + timeline.n_frames_least]),
    }
