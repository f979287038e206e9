"""Triangulation throughput (``pose.triangulate.triangulate``: aniposelib ``triangulate_optim`` on chunks
of frames in worker processes) in frames per second of a 5-camera, 2-animal, 15-node session, against
aniposelib's plain DLT triangulation (``CameraGroup.triangulate``, no smoothing/optimisation: the floor)
on the same input; plus the median 3D error of both against the simulated truth and the projected time
of a 20-min (180 000-frame) session.

    python bench/run.py triangulate            # 12 000 frames (80 s of video), 2 workers
    BENCH_TRI_FRAMES=30000 python bench/run.py triangulate   # longer: worker start-up matters less
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from usvflow.pose.slp import read_analysis_h5, slp_to_analysis_h5
from usvflow.pose.triangulate import read_points3d, triangulate
from usvflow.simulate.geometry import simulate_animals
from usvflow.simulate.pose import camera_group, lab_mm_to_arena, write_session_pose

SERIALS = ["21372315", "21372316", "21369048", "22085397", "21241563"]
TRI = dict(smooth_scale=4, weight_weak=4, weight_rigid=1, reprojection_error_threshold=5,
           regularization_function="l2", n_deriv_smooth=1)  # fmt: skip


def run():
    n = int(os.environ.get("BENCH_TRI_FRAMES", 12000))
    workers = int(os.environ.get("BENCH_TRI_WORKERS", 2))
    rng = np.random.default_rng(0)
    cams = camera_group(SERIALS)
    tr = simulate_animals(rng, 0.0, n / 150.057 + 0.1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        truth = write_session_pose(tmp / "s", tmp / "t", cams, tr, np.arange(n) / 150.057, {s: n for s in SERIALS},
                                   "20250101120000", rng)  # fmt: skip
        true3d = np.load(truth["truth_file"])["points3d"]
        h5 = {}
        for s in SERIALS:
            h5[s] = tmp / f"{s}.analysis.h5"
            slp_to_analysis_h5(
                tmp / "s" / "video" / "20250101120000" / s / f"{s}-20250101120000.predictions.slp",
                h5[s],
                n_frames=n,
            )
        toml = tmp / "cal.toml"
        cams.dump(str(toml))
        # warm the JIT caches of this process (workers pay their own start-up inside the timing)
        triangulate(h5, toml, tmp / "warm.h5", TRI, frames=(0, 60), chunk=60)
        chunk = max(100, -(-n // (2 * workers)))
        t = time.perf_counter()
        triangulate(h5, toml, tmp / "p.h5", TRI, threads=workers, chunk=chunk, margin=50)
        dt = time.perf_counter() - t
        est = lab_mm_to_arena(read_points3d(tmp / "p.h5")["tracks"])
        err = np.nanmedian(np.linalg.norm(est - true3d[:n], axis=-1)) * 1000
        p2d = np.stack([read_analysis_h5(h5[s])["points"] for s in SERIALS])  # (C, n, 2, 15, 2)
        t = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            dlt = cams.triangulate(p2d.reshape(len(SERIALS), -1, 2)).reshape(n, 2, 15, 3)
        dt_dlt = time.perf_counter() - t
        err_dlt = np.nanmedian(np.linalg.norm(lab_mm_to_arena(dlt) - true3d[:n], axis=-1)) * 1000
    fps = n / dt
    print(f"  triangulate_optim, {workers} workers: {n} frames in {dt:.1f} s = {fps:.0f} frames/s "
          f"(median error {err:.2f} mm)")  # fmt: skip
    print(f"  plain DLT (reference):     {n} frames in {dt_dlt:.2f} s = {n / dt_dlt:.0f} frames/s "
          f"(median error {err_dlt:.2f} mm)")  # fmt: skip
    print(f"  ratio optim/DLT time: {dt / dt_dlt:.1f}x; projected 180 000-frame session: {180000 / fps / 60:.1f} min "
          f"(goal < 10 min on 2 cores)")  # fmt: skip


if __name__ == "__main__":
    run()
