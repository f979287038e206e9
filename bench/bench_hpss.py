"""HPSS and high-pass throughput on one synthetic 250 kHz channel, against the original's tools.

    python bench/bench_hpss.py                 # 30 s of audio: HPSS vs librosa, high-pass vs SoX
    python bench/bench_hpss.py --seconds 60
    python bench/bench_hpss.py --long 1200     # + peak RSS of a streamed 20-min channel (~0.6 GB WAV)

Everything runs on one core (BLAS/OpenMP/numba threads limited to 1; scipy.fft uses one worker), so
"x real time" is per core. (a) the reference is the original's whole-file pipeline
(``scipy.io.wavfile.read`` -> ``librosa.stft`` -> ``librosa.decompose.hpss`` -> ``librosa.istft`` ->
int16 -> ``wavfile.write``), (b) ours is ``usvflow.audio.hpss.hpss_file`` (WAV to WAV, streamed).
Both are warmed up first (numba compilation is not timed). The high-pass compares
``usvflow.audio.highpass.highpass_file`` with ``sox in.wav out.wav sinc 30000-0`` when SoX is on PATH.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

FS = 250_000


def synth_block(start: int, n: int, seed: int = 0) -> np.ndarray:
    """Noise, USV-like chirps (repeating 30 ms sweeps 40 -> 90 kHz) and clicks, int16."""
    rng = np.random.default_rng(seed + start)
    i = np.arange(start, start + n)
    t = i / FS
    period = 0.1
    tau = np.mod(t, period)
    on = tau < 0.03
    phase = 2 * np.pi * (40e3 * tau + 0.5 * (50e3 / 0.03) * tau**2)
    x = 800 * rng.standard_normal(n) + on * 6000 * np.sin(phase)
    clicks = rng.random(n) < 2e-4
    x[clicks] += rng.choice([-1, 1], clicks.sum()) * 20000
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def write_synth(path: Path, seconds: float, block_s: float = 10.0) -> int:
    from usvflow.audio.wav import WavWriter

    n = int(round(seconds * FS))
    blk = int(block_s * FS)
    with WavWriter(path, FS) as w:
        for a in range(0, n, blk):
            w.write(synth_block(a, min(blk, n - a)))
    return n


def _timed(fn, repeat=1):
    best_wall = best_cpu = np.inf
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        best_wall = min(best_wall, time.perf_counter() - w0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return best_wall, best_cpu


def _reference(in_wav, out_wav):
    import scipy.io.wavfile

    from usvflow.audio.hpss import hpss_array

    sr, x = scipy.io.wavfile.read(in_wav)
    scipy.io.wavfile.write(out_wav, sr, hpss_array(x))


def run(seconds: float = 30.0, long: float | None = None) -> dict:
    from threadpoolctl import threadpool_limits

    from usvflow.audio.highpass import design_highpass, highpass_file
    from usvflow.audio.hpss import hpss_file
    from usvflow.audio.wav import read_wav

    res: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench_hpss_") as tmpd, threadpool_limits(1):
        tmp = Path(tmpd)
        src = tmp / "in.wav"
        n = write_synth(src, seconds)
        dur = n / FS
        warm = tmp / "warm.wav"
        write_synth(warm, 0.2)
        _reference(warm, tmp / "w1.wav")  # warm-up: librosa's and our numba code
        hpss_file(warm, tmp / "w2.wav")
        print(f"input: {dur:.0f} s synthetic 250 kHz int16 (noise, chirps, clicks), 1 thread")

        t_ref, c_ref = _timed(lambda: _reference(src, tmp / "ref.wav"))
        t_our, c_our = _timed(lambda: hpss_file(src, tmp / "ours.wav"), repeat=3)
        d = np.abs(read_wav(tmp / "ref.wav")[1].astype(np.int32) - read_wav(tmp / "ours.wav")[1])
        res.update(
            hpss_ref_xrt=dur / c_ref,
            hpss_xrt=dur / c_our,
            hpss_ratio=c_ref / c_our,
            hpss_maxdiff=int(d.max()),
            hpss_frac_diff=float((d > 0).mean()),
        )
        print(
            f"HPSS  librosa whole-file : {t_ref:7.2f} s wall, {c_ref:7.2f} s CPU = "
            f"{dur / c_ref:7.1f} x real time"
        )
        print(
            f"HPSS  usvflow streamed   : {t_our:7.2f} s wall, {c_our:7.2f} s CPU = "
            f"{dur / c_our:7.1f} x real time  ->  {c_ref / c_our:.1f} x librosa"
        )
        print(
            f"HPSS  max |ours - librosa| = {d.max()} LSB ({(d > 0).mean():.1e} of samples differ)"
        )

        taps = design_highpass(FS)
        t_hp, c_hp = _timed(lambda: highpass_file(src, tmp / "hp.wav", taps=taps), repeat=3)
        res.update(hp_xrt=dur / c_hp, hp_taps=len(taps))
        print(
            f"HP    usvflow FIR ({len(taps)} taps): {t_hp:6.2f} s wall, {c_hp:6.2f} s CPU = "
            f"{dur / c_hp:7.0f} x real time"
        )
        sox = shutil.which("sox")
        if sox:
            t_sox = c_sox = np.inf
            for _ in range(
                3
            ):  # SoX runs single-threaded by default; CPU time from the child's rusage
                r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                w0 = time.perf_counter()
                subprocess.run(
                    [sox, str(src), str(tmp / "sox.wav"), "sinc", "30000-0"],
                    check=True,
                    capture_output=True,
                )
                r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                t_sox = min(t_sox, time.perf_counter() - w0)
                c_sox = min(c_sox, r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime)
            res.update(sox_xrt=dur / c_sox, hp_ratio_vs_sox=c_sox / c_hp)
            print(
                f"HP    sox sinc 30000-0    : {t_sox:6.2f} s wall, {c_sox:6.2f} s CPU = "
                f"{dur / c_sox:7.0f} x real time  ->  usvflow {c_sox / c_hp:.1f} x SoX"
            )
        else:
            print("HP    sox not on PATH: no SoX comparison")
        if long:
            res.update(_long(tmp, long))
    return res


def _child_peak_rss(code: str) -> tuple[float, float]:
    """Run ``code`` in a fresh interpreter; (wall seconds, that interpreter's own peak RSS in MiB).

    The peak is ``VmHWM`` of ``/proc/self/status`` (``ru_maxrss`` would include the parent's size at
    fork time on Linux).
    """
    probe = (
        "\nprint('PEAK_RSS_KIB', [l.split()[1] for l in open('/proc/self/status') "
        "if l.startswith('VmHWM')][0])"
    )
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code + probe], check=True, capture_output=True, text=True
    )
    wall = time.perf_counter() - t0
    kib = int(out.stdout.split("PEAK_RSS_KIB")[-1].split()[0])
    return wall, kib / 1024


def _long(tmp: Path, seconds: float) -> dict:
    src = tmp / "long.wav"
    n = write_synth(src, seconds)
    size_mb = src.stat().st_size / 2**20
    print(f"long: {seconds:.0f} s ({n} samples, {size_mb:.0f} MiB WAV)")
    wall, peak = _child_peak_rss(
        f"from usvflow.audio.hpss import hpss_file; hpss_file({str(src)!r}, {str(tmp / 'long_hpss.wav')!r})"
    )
    print(
        f"HPSS  streamed, {seconds:.0f} s channel: {wall:.1f} s wall ({seconds / wall:.0f} x real time), "
        f"peak RSS {peak:.0f} MiB"
    )
    wall2, peak2 = _child_peak_rss(
        f"from usvflow.audio.highpass import highpass_file; "
        f"highpass_file({str(tmp / 'long_hpss.wav')!r}, {str(tmp / 'long_hp.wav')!r})"
    )
    print(f"HP    streamed, {seconds:.0f} s channel: {wall2:.1f} s wall, peak RSS {peak2:.0f} MiB")
    base = _child_peak_rss("import numpy, scipy.fft, numba")[1]
    print(f"      (a bare interpreter with numpy, scipy.fft and numba imported: {base:.0f} MiB)")
    return {"long_hpss_peak_rss_mib": peak, "long_hpss_wall_s": wall, "long_hp_peak_rss_mib": peak2}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument(
        "--long",
        type=float,
        default=None,
        help="also measure peak RSS on a channel this long (seconds)",
    )
    a = ap.parse_args()
    run(a.seconds, a.long)
