"""The e-phys subcommands of ``usvflow``: ev-sync, concat-ephys, split-spikes."""

from __future__ import annotations

import json

import numpy as np

from usvflow.cli import main
from usvflow.ephys.concat import changepoints
from usvflow.io.atomic import write_json

from .test_concat import _recs, _with_ev


def test_ev_sync_concat_and_split(group, tmp_path, capsys):
    s = group["sessions"][0]
    tl, t = s["timeline"], s["truth"]
    counts = tmp_path / "counts.json"
    write_json(counts, {"total_frame_number_least": tl.n_frames_least, "total_video_time_least": tl.n_frames_least / tl.fps,
                        "median_empirical_camera_sr": tl.fps})  # fmt: skip
    out = tmp_path / "ev"
    rc = main(["ev-sync", t["bin"], "--frame-counts", str(counts), "-o", str(out), "--calibrated-rate",
               f"{t['headstage_sn']}={t['rate_true']}"])  # fmt: skip
    assert rc == 0
    ev = json.loads((out / f"{s['session_id']}_imec0_ev_sync.json").read_text())
    assert ev["passed"] and ev["tracking_start_end"] == t["tracking_start_end"]
    assert (
        main(
            [
                "ev-sync",
                t["bin"],
                "--frame-counts",
                str(counts),
                "-o",
                str(out),
                "--min-largest-break-s",
                "9",
            ]
        )
        == 2
    )
    assert "E/V sync failed" in capsys.readouterr().err

    cbin = tmp_path / "concatenated_20250430_imec0.ap.bin"
    assert main(["concat-ephys", *[b for b, _ in _recs(group)], "-o", str(cbin)]) == 0
    assert cbin.read_bytes() == b"".join(open(b, "rb").read() for b, _ in _recs(group))

    cp = tmp_path / "changepoints.json"
    write_json(cp, changepoints(_with_ev(group), {t["headstage_sn"]: t["rate_true"]}))
    rc = main(["split-spikes", str(group["ks"]), "--changepoints", str(cp), "--recording", f"{s['session_id']}.imec0",
               "--frame-counts", str(counts), "--onsets", str(out / f"{s['session_id']}_imec0_frame_onsets.npy"),
               "-o", str(tmp_path / "cd" / "cluster_data"), "--min-spikes", "5"])  # fmt: skip
    assert rc == 0
    man = json.loads((tmp_path / "cd" / "imec0_cluster_data_manifest.json").read_text())
    assert man["files"] and man["frame_index"].startswith("nearest")
    arr = np.load(tmp_path / "cd" / "cluster_data" / man["files"][0]["file"])
    assert arr.shape == (2, man["files"][0]["n_spikes"])


def test_truncated_bin_exit_code(group, tmp_path, capsys):
    b, _ = _recs(group)[0]
    bad = tmp_path / "x.imec0.ap.bin"
    bad.write_bytes(open(b, "rb").read()[:-1])
    (tmp_path / "x.imec0.ap.meta").write_bytes(open(_recs(group)[0][1], "rb").read())
    assert main(["concat-ephys", str(bad), "-o", str(tmp_path / "c.ap.bin")]) == 2
    assert "truncated" in capsys.readouterr().err
    assert not (tmp_path / "c.ap.bin").exists()
