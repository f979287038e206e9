"""Audio split / crop-to-video throughput against a plain read of the same multichannel files.

Writes a synthetic session (two 12-channel 250 kHz int16 devices ``m`` and ``s`` of ``seconds`` each,
cut into Avisoft-like files: noise with random LSBs, the triggerbox pulse train in the LSB of ch04
and the LED train in ch02; ``s`` starts later and runs ``S_PPM`` fast), then times, each in a fresh
(forked) process:

(a) a plain sequential read of all multichannel files (``readinto`` of 1 Mi-frame blocks);
(b) split of both devices into 24 mono files (step 8a);
(c) crop to video in NO SYNC mode (step 8b: pulses, sync info, 12 channels copied, 12 channels
    resampled to the other device's time base with LSB re-embedding), and in SYNC mode (copy only);

(b) and (c) with outputs fsync'ed before their rename (the default, ``usvflow.audio.wav.FSYNC``);
(b) also without (page cache only). References: a plain copy of the files (read + write: the I/O
floor of any step that writes what it reads) and, when SoX is installed, the original's commands:
split by ``sox remix`` + concatenation, and ``sox trim ... tempo -s`` on one channel of the longer
device against our resampled crop of the same channel.

Prints throughput in x real time (session seconds per wall second, both devices) and the ratio
against the plain read (goal >= 0.5 x), plus each stage's peak RSS. Files are read from the page
cache (they were just written), so the plain read is a memory-bandwidth reference.

    python bench/bench_crop.py [seconds]
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from usvflow.audio import wav
from usvflow.audio.crop import crop_file, crop_session
from usvflow.audio.split import split_device
from usvflow.audio.wav import WavWriter
from usvflow.simulate.timeline import make_timeline

FS = 250_000
NCH = 12
S_PPM = 41.7
FILE_SECONDS = 30.0
DEVICES = ("m", "s")
STAMP = "250430145017"


def _write_session(root: Path, seconds: float, seed: int = 0) -> tuple[dict, int, float]:
    """Multichannel files of both devices; returns ({dev: [files]}, n_frames, video_time)."""
    rng = np.random.default_rng(seed)
    video_s = max(1.0, seconds - 3.6)  # pre-roll 0.5 s + break 2.3 s + tail
    tl = make_timeline(
        rng, video_s, ["a", "b"], s_ppm=S_PPM, s_delay_s=0.12, preroll_s=0.3, tail_s=0.2
    )
    files = {}
    start = dt.datetime(2025, 4, 30, 14, 50, 17)
    for d in DEVICES:
        clk = tl.audio[d]
        n = int(seconds * FS)
        per_file = int(FILE_SECONDS * FS)
        files[d] = []
        for f0 in range(0, n, per_file):
            f1 = min(n, f0 + per_file)
            stamp = (start + dt.timedelta(seconds=clk.start_s + f0 / FS)).strftime("%y%m%d%H%M%S")
            path = root / "original_mc" / f"{d}_{stamp}.wav"
            with WavWriter(path, FS, NCH) as w:
                for b0 in range(f0, f1, 1 << 18):
                    b1 = min(f1, b0 + (1 << 18))
                    x = rng.integers(-1200, 1200, size=(b1 - b0, NCH), dtype=np.int16)
                    tb = clk.pulse_mask(
                        b1 - b0, tl.triggerbox_on_s, tl.triggerbox_on_s + tl.pulse_high_s, offset=b0
                    )
                    led = clk.pulse_mask(b1 - b0, tl.led_on_s, tl.led_off_s, offset=b0)
                    x[:, 3] = (x[:, 3] & ~np.int16(1)) | tb
                    x[:, 1] = (x[:, 1] & ~np.int16(1)) | led
                    w.write(x)
            files[d].append(path)
    return files, tl.n_frames_least, tl.n_frames_least / tl.fps


def _evict(paths) -> None:
    """Flush and drop these files from the page cache (only these), so the next stage reads the disk."""
    os.sync()
    for f in paths:
        fd = os.open(f, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _mc_files(files: dict) -> list:
    return [f for d in DEVICES for f in files[d]]


def _plain_read(files: dict) -> int:
    buf = np.empty((1 << 20) * NCH, dtype=np.int16)
    total = 0
    for f in _mc_files(files):
        with open(f, "rb") as fh:
            while True:
                got = fh.readinto(memoryview(buf).cast("B"))
                if not got:
                    break
                total += got
    return total


def _plain_copy(files: dict, root: Path) -> None:
    """Read every multichannel file and write the same bytes to a new file (fsync'ed): the I/O floor
    of a step that reads and writes the session once."""
    buf = np.empty((1 << 20) * NCH, dtype=np.int16)
    (root / "copy").mkdir()
    for f in _mc_files(files):
        with open(f, "rb") as fi, open(root / "copy" / f.name, "wb") as fo:
            while True:
                got = fi.readinto(memoryview(buf).cast("B"))
                if not got:
                    break
                fo.write(memoryview(buf).cast("B")[:got])
            fo.flush()
            os.fsync(fo.fileno())


def _split(files: dict, root: Path, fsync: bool) -> None:
    wav.FSYNC = fsync
    for d in DEVICES:
        split_device(files[d], root / f"original_{fsync}", d, STAMP)


def _crop(root: Path, n_frames: int, video_time: float, mode: str, fsync: bool) -> dict:
    wav.FSYNC = fsync
    tag = f"{mode}_{fsync}"
    res = crop_session(root / "original_True", root / f"cropped_{tag}", root / f"sync_{tag}",
                       root / f"info_{tag}.json", list(DEVICES), STAMP, n_frames, video_time,
                       trigger_device=mode)  # fmt: skip
    return res["plans"]


def _sox_split(files: dict, root: Path) -> None:
    """The original's split: ``sox <mc> <tmp_chNN> remix N`` per file and channel, then per channel
    ``sox <tmp files...> <out>`` (run one after the other here)."""
    tmp, out = root / "sox_temp", root / "sox_original"
    tmp.mkdir()
    out.mkdir()
    for d in DEVICES:
        for c in range(1, NCH + 1):
            parts = []
            for f in files[d]:
                part = tmp / f"{f.stem}_ch{c:02d}.wav"
                subprocess.run(["sox", str(f), str(part), "remix", str(c)], check=True)
                parts.append(str(part))
            subprocess.run(
                ["sox", *parts, "-q", str(out / f"{d}_{STAMP}_ch{c:02d}.wav")], check=True
            )


def _sox_tempo(src: Path, dst: Path, plan) -> None:
    """The original's NO SYNC crop of one channel of the longer device (WSOLA, no LSB restoration)."""
    subprocess.run(["sox", str(src), str(dst), "trim", f"{plan.start}s", f"{plan.n_in}s", "tempo", "-s",
                    f"{plan.n_in / plan.n_out}"], check=True)  # fmt: skip


def _ours_one(src: Path, dst: Path, plan) -> None:
    crop_file(src, dst, plan)


def _child(conn, fn, args):
    t = time.perf_counter()
    out = fn(*args)
    sec = time.perf_counter() - t
    ru = resource.getrusage(resource.RUSAGE_SELF)
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)  # sox subprocesses
    cpu = ru.ru_utime + ru.ru_stime + ch.ru_utime + ch.ru_stime
    conn.send((sec, cpu, max(ru.ru_maxrss, ch.ru_maxrss) / 1024.0, out))
    conn.close()


def _timed(fn, *args):
    """Run ``fn(*args)`` in a forked process: (wall s, CPU s, peak RSS MiB of that process, result)."""
    ctx = mp.get_context("fork")
    a, b = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_child, args=(b, fn, args))
    p.start()
    res = a.recv()
    p.join()
    if p.exitcode:
        raise RuntimeError(f"{fn.__name__} failed (exit {p.exitcode})")
    return res


def run(seconds: float = 60.0) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench_crop_") as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        files, n_frames, video_time = _write_session(root, seconds)
        gen = time.perf_counter() - t
        nbytes = sum(f.stat().st_size for d in DEVICES for f in files[d])
        print(f"input: 2 devices x {seconds:g} s x {NCH} ch @ {FS} Hz, {sum(len(v) for v in files.values())} files, "
              f"{nbytes / 2**20:.0f} MiB (written in {gen:.1f} s); {n_frames} video frames")  # fmt: skip
        results = {}
        _evict(_mc_files(files))
        read_s, cpu, rss, _ = _timed(_plain_read, files)
        results["plain read (a)"] = (read_s, cpu, rss, "")
        _evict(_mc_files(files))
        copy_s, cpu, rss, _ = _timed(_plain_copy, files, root)
        results["plain copy (read+write)"] = (copy_s, cpu, rss, "")
        _evict(_mc_files(files))
        s, cpu, rss, _ = _timed(_split, files, root, True)
        results["split (8a)"] = (s, cpu, rss, "")
        split_out = sorted((root / "original_True").glob("*.wav"))
        for mode, name in (("both", "crop NO SYNC (8b)"), ("m", "crop SYNC m (8b)")):
            _evict(split_out)
            s, cpu, rss, plans = _timed(_crop, root, n_frames, video_time, mode, True)
            results[name] = (
                s,
                cpu,
                rss,
                f"mapping {dict((d, p.mapping) for d, p in plans.items())}",
            )
            if mode == "both":
                nosync = plans
        _evict(_mc_files(files))
        s, cpu, rss, _ = _timed(_split, files, root, False)
        results["split (8a, no fsync)"] = (s, cpu, rss, "")
        refs = {}
        if shutil.which("sox"):
            _evict(_mc_files(files))
            s, cpu, rss, _ = _timed(_sox_split, files, root)
            results["split (original, sox)"] = (s, cpu, rss, "remix per file+channel, then concat")
            refs["split (original, sox)"] = "split (8a)"
            dev = max(nosync, key=lambda d: nosync[d].n_in)
            src = root / "original_True" / f"{dev}_{STAMP}_ch01.wav"
            for name, fn in (
                ("1 ch resampled (ours)", _ours_one),
                ("1 ch tempo (original)", _sox_tempo),
            ):
                _evict([src])
                s, cpu, rss, _ = _timed(fn, src, root / f"one_{fn.__name__}.wav", nosync[dev])
                results[name] = (s, cpu, rss, f"device {dev}, ch01")
            refs["1 ch tempo (original)"] = "1 ch resampled (ours)"
        else:
            print("(sox not found: no comparison with the original's sox commands)")
        print(f"{'stage':26s} {'wall s':>7s} {'x real time':>11s} {'vs read':>8s} {'vs copy':>8s} {'CPU s':>6s} "
              f"{'x rt/CPU':>8s} {'peak RSS MiB':>12s}")  # fmt: skip
        for name, (s, cpu, rss, note) in results.items():
            print(f"{name:26s} {s:7.2f} {seconds / s:11.1f} {read_s / s:8.2f} {copy_s / s:8.2f} {cpu:6.2f} "
                  f"{seconds / cpu:8.1f} {rss:12.0f}  {note}")  # fmt: skip
        for ref, ours in refs.items():
            print(
                f"speed-up of {ours!r} over {ref!r}: {results[ref][0] / results[ours][0]:.1f} x (wall)"
            )
        print(
            "(x real time: recording seconds per wall second (both devices; '1 ch' rows: one channel);\n"
            " x rt/CPU: per CPU second (incl. sox subprocesses); peak RSS: largest process of the stage;\n"
            " inputs dropped from the page cache before each stage; outputs fsync'ed except 'no fsync')"
        )
        return {k: {"seconds": v[0], "cpu_seconds": v[1], "x_real_time": seconds / v[0],
                    "ratio_vs_read": read_s / v[0], "ratio_vs_copy": copy_s / v[0], "peak_rss_mib": v[2]}
                for k, v in results.items()}  # fmt: skip


if __name__ == "__main__":
    run(float(sys.argv[1]) if len(sys.argv) > 1 else 60.0)
