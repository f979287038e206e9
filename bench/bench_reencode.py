"""Video re-encoding at the cameras' real frame size (1280×1024): frames per second per core.

One simulated camera (1,500 frames by default) is re-encoded the way the workflow does it
(``usvflow.video.stage.reencode``: x264, crf 16) with one encoder thread, for the default preset and
faster ones. The CPU time of the ffmpeg process (user + system) gives frames per CPU second, which
does not depend on other work on the machine the way wall time does; the projection is for a
20-minute session (5 cameras × 180,000 frames) spread over 8 cores, against the original's
"< 20 min" for video concatenation and re-encoding.

    python bench/bench_reencode.py [SECONDS] [PRESET ...]
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from usvflow.io.loopbio import camera_dirs, read_store
from usvflow.simulate.timeline import make_timeline
from usvflow.simulate.video import write_loopbio_cameras
from usvflow.video.stage import concatenate_chunks, reencode

SESSION_FRAMES = 5 * 180_000


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run(seconds: float = 10.0, presets=("veryfast", "superfast", "ultrafast")) -> dict:
    res = {}
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        tmp = Path(tmp)
        tl = make_timeline(np.random.default_rng(0), seconds, ["21372315"])
        write_loopbio_cameras(
            tmp,
            tl,
            np.random.default_rng(1),
            video_stamp="20250430_145035",
            led_pixels=None,
            height=1024,
            width=1280,
            chunksize=3000,
        )
        store = read_store(camera_dirs(tmp / "video")[0])
        joined = tmp / "joined.mp4"
        concatenate_chunks(store.mp4_paths, joined)
        n = store.frame_count
        print(f"re-encoding {n} frames of 1280x1024 (x264 crf 16, one thread):")
        for preset in presets:
            out = tmp / f"{preset}.mp4"
            c0, t0 = _children_cpu(), time.perf_counter()
            reencode(joined, out, 150.057, crf=16, preset=preset, threads=1, verify=False)
            cpu, wall = _children_cpu() - c0, time.perf_counter() - t0
            fps = n / cpu
            minutes_8 = SESSION_FRAMES / fps / 60 / 8
            res[preset] = {
                "frames": n,
                "cpu_s": cpu,
                "wall_s": wall,
                "fps_per_core": fps,
                "kb_per_frame": out.stat().st_size / n / 1e3,
                "minutes_20min_session_8_cores": minutes_8,
            }
            print(
                f"  {preset:9s}: {fps:6.0f} frames/s per core ({out.stat().st_size / n / 1e3:.1f} kB/frame); "
                f"5 x 180,000 frames: {SESSION_FRAMES / fps / 60:.0f} CPU min = {minutes_8:.1f} min on 8 cores"
            )
    return res


if __name__ == "__main__":
    run(
        float(sys.argv[1]) if len(sys.argv) > 1 else 10.0,
        tuple(sys.argv[2:]) or ("veryfast", "superfast", "ultrafast"),
    )
