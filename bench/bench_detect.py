"""Built-in USV detector throughput (x real time per core) on a synthetic 250 kHz recording.

The channel: white (20 LSB rms) + low-frequency rumble noise, a weak stationary 40 kHz tone, two
USV-like sweeps per second (30-120 ms, 40-100 kHz, 100-3000 LSB) and broadband clicks, int16.
Times, best of ``repeat``, on one core (the detector is single-threaded):

(a) ``detect_array`` on the samples in memory (the detector alone);
(b) ``detect_file`` on a mono WAV (read + detect, what the workflow runs per channel);
(c) ``detect_file`` on a 12-channel WAV of the same length (channel-seconds per second);
(d) a plain block read of the mono WAV, as a reference;

and the traced peak memory of (b), which does not grow with the file length.

    python bench/bench_detect.py [seconds]
"""

from __future__ import annotations

import sys
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import soundfile as sf
from _timing import best_time
from scipy.signal import lfilter

from usvflow.usv.detect import detect_array, detect_file

FS = 250_000


def synth(seconds: float, seed: int = 0) -> tuple[np.ndarray, int]:
    """A synthetic int16 channel and the number of calls in it."""
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    x = rng.standard_normal(n) * 20.0
    x += lfilter([0.01], [1, -0.99], rng.standard_normal(n)) * 300.0
    t = np.arange(n) / FS
    x += 3.0 * np.sin(2 * np.pi * 40e3 * t)
    n_calls = 0
    for tc in np.arange(0.2, seconds - 0.2, 0.5):
        d = rng.uniform(0.03, 0.12)
        m = int(d * FS)
        tt = np.arange(m) / FS
        f0, f1 = rng.uniform(40e3, 100e3, 2)
        a = int(tc * FS)
        chirp = np.sin(2 * np.pi * (f0 * tt + 0.5 * (f1 - f0) / d * tt**2)) * np.hanning(m)
        x[a : a + m] += rng.uniform(100, 3000) * chirp
        n_calls += 1
    for tc in rng.uniform(0, seconds - 0.01, int(seconds / 6)):
        m = int(rng.uniform(1e-4, 1e-3) * FS) + 2
        a = int(tc * FS)
        x[a : a + m] += rng.uniform(2000, 20000) * rng.standard_normal(m) * np.hanning(m)
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16), n_calls


def run(seconds: float = 60.0, repeat: int = 3) -> dict:
    y, n_calls = synth(seconds)
    xf = y.astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        mono = Path(tmp) / "mono.wav"
        multi = Path(tmp) / "multi.wav"
        sf.write(mono, y, FS, subtype="PCM_16")
        sf.write(multi, np.repeat(y[:, None], 12, axis=1), FS, subtype="PCM_16")
        t_arr, segs = best_time(lambda: detect_array(xf, FS)[0], repeat, keep=True)
        t_file, df = best_time(lambda: detect_file(mono), repeat, keep=True)
        t_multi, dfm = best_time(lambda: detect_file(multi), 1, keep=True)

        def plain():
            with sf.SoundFile(mono) as fh:
                while fh.read(2 * FS, dtype="float32").size:
                    pass

        t_read, _ = best_time(plain, repeat, keep=True)
        tracemalloc.start()
        detect_file(mono)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    res = {
        "seconds": seconds,
        "calls": n_calls,
        "detections": len(segs),
        "x_realtime_array": seconds / t_arr,
        "x_realtime_file": seconds / t_file,
        "x_realtime_12ch_channel_seconds": 12 * seconds / t_multi,
        "x_realtime_plain_read": seconds / t_read,
        "peak_traced_mb": peak / 2**20,
    }
    print(f"synthetic {seconds:.0f} s at 250 kHz, {n_calls} calls -> {len(segs)} detections "
          f"({len(df)} from the file, {len(dfm)} over 12 channels)")  # fmt: skip
    print(f"  detector on samples in memory : {res['x_realtime_array']:8.1f} x real time (1 core)")
    print(f"  detect_file, mono WAV         : {res['x_realtime_file']:8.1f} x real time")
    print(
        f"  detect_file, 12-channel WAV   : {res['x_realtime_12ch_channel_seconds']:8.1f} x real time per channel"
    )
    print(
        f"  plain read of the mono WAV    : {res['x_realtime_plain_read']:8.1f} x real time (reference)"
    )
    print(f"  peak traced memory (mono)     : {res['peak_traced_mb']:8.1f} MiB")
    return res


if __name__ == "__main__":
    run(float(sys.argv[1]) if len(sys.argv) > 1 else 60.0)
