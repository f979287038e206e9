"""Real audio through the workflow: a simulated session (no simulated calls) whose device-m channels
carry amvoc's labelled recording 2 instead of simulated noise (the sync bits of every sample kept),
through split, crop, HPSS, high-pass, detection on all 24 channels and curation. The USV summary holds
the labelled calls: measured 44 of 44 in the 6-s session, F1 and IoU>0.5 F1 1.000, median
onset/offset error +0.3 / +2.9 ms (edges followed along the contour). With detection on the HPSS'd channels, as before, the same session
gave one 5.8-s "USV" (F1 0.04): HPSS leaves real background noise as spikes over digital silence."""

import numpy as np
import pytest
import soundfile as sf
import yaml

from ..usv.test_realdata import AMVOC
from .conftest import snakemake

pytestmark = pytest.mark.slow


def test_real_recording_through_the_workflow(tmp_path):
    import json

    from usvflow.simulate.cohort import simulate_cohort
    from usvflow.usv.curate import read_summary
    from usvflow.usv.score import read_intervals, score_intervals

    simulate_cohort(
        tmp_path, sessions=1, seconds=6.0, seed=3, calibration=False, calls_per_minute=0
    )
    sid = (tmp_path / "sessions.tsv").read_text().splitlines()[1].split("\t")[0]
    truth = json.loads((tmp_path / "truth" / sid / "ground_truth.json").read_text())["audio"]
    rec, fs = sf.read(AMVOC / "2" / "rec_2.wav", dtype="int16")
    lab = read_intervals(AMVOC / "2" / "gt_2.csv")
    # device m's files, in order, get rec_2 tiled from their first sample on every channel; the
    # least significant bit of each sample (the LED and triggerbox codes) is kept
    folder = tmp_path / "Data" / sid / "audio" / "original_mc"
    pos = 0
    for name in truth["devices"]["m"]["files"]:
        path = folder / name
        x, rate = sf.read(path, dtype="int16", always_2d=True)
        assert rate == fs
        idx = (pos + np.arange(len(x))) % len(rec)
        real = rec[idx].astype(np.int32)[:, None]
        y = (real & ~1) | (x.astype(np.int32) & 1)
        path.chmod(0o644)
        sf.write(path, np.clip(y, -32768, 32767).astype(np.int16), fs, subtype="PCM_16")
        pos += len(x)
    cfg = yaml.safe_load((tmp_path / "config.yaml").read_text())
    cfg["stages"] = ["video", "audio", "usv"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    snakemake(tmp_path, config=tmp_path / "config.yaml")

    # the labels in video time: device m's samples from its crop start (the ~26 ppm by which NO SYNC
    # mode resamples one device onto the other is < 0.2 ms here)
    crop = truth["crop"]["m"]
    t0 = crop["start_first_recorded_frame"] / fs
    dur = crop["duration_samples"] / fs
    reps = int(np.ceil((t0 + dur) * fs / len(rec))) + 1
    tiled = np.concatenate([lab + k * len(rec) / fs for k in range(reps)]) - t0
    inside = tiled[(tiled[:, 0] > 0.05) & (tiled[:, 1] < dur - 0.05)]
    assert len(inside) >= 20
    summ = read_summary(tmp_path / "Data" / sid / "audio" / f"{sid}_usv_summary.csv")
    det = summ[["start", "stop"]].to_numpy()
    det = det[(det[:, 1] > 0.05) & (det[:, 0] < dur - 0.05)]
    s = score_intervals(det, inside)
    assert s.f1 >= 0.95 and s.f1_iou >= 0.85, s
    assert (
        summ["stop"] - summ["start"]
    ).max() < 0.25  # no merged calls (the longest label: 0.11 s)
