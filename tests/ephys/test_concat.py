"""Concatenation of a group's recordings and the day's changepoints JSON."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from usvflow.ephys import concat as concat_mod
from usvflow.ephys.concat import changepoints, concatenate_recordings, recording_key
from usvflow.io.atomic import InputError, write_json
from usvflow.io.spikeglx import n_samples, parse_meta, read_meta, write_meta
from usvflow.sync.ev import ev_sync_check

from .conftest import HS


def _recs(group):
    return [(s["truth"]["bin"], s["truth"]["meta"]) for s in group["sessions"]]


def test_concatenation_is_the_inputs_joined(group, tmp_path):
    out_bin, out_meta = (
        tmp_path / "concatenated_20250430_imec0.ap.bin",
        tmp_path / "concatenated_20250430_imec0.ap.meta",
    )
    res = concatenate_recordings(_recs(group), out_bin, out_meta)
    joined = b"".join(open(b, "rb").read() for b, _ in _recs(group))
    assert out_bin.read_bytes() == joined
    ns = [s["truth"]["n_samples"] for s in group["sessions"]]
    assert res["n_samples"] == sum(ns) and res["session_samples"] == ns
    m = parse_meta(out_meta)
    assert m.file_size_bytes == len(joined) and n_samples(out_bin, m) == sum(ns)
    assert m.file_time_secs == pytest.approx(sum(ns) / 30000.0)
    raw, first = read_meta(out_meta), read_meta(group["sessions"][0]["truth"]["meta"])
    assert "fileSHA1" not in raw
    assert {k: v for k, v in raw.items() if k not in ("fileSizeBytes", "fileTimeSecs")} == {
        k: v for k, v in first.items() if k not in ("fileSizeBytes", "fileTimeSecs", "fileSHA1")
    }
    assert out_meta.read_bytes().count(b"\r\n") == len(raw)  # SpikeGLX line endings kept
    assert not list(tmp_path.glob(".tmp-*"))


def test_plain_copy_fallback(group, tmp_path, monkeypatch):
    def broken(*a, **k):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", broken, raising=False)
    out = tmp_path / "c.ap.bin"
    concatenate_recordings(_recs(group), out, tmp_path / "c.ap.meta", fsync=False)
    assert out.read_bytes() == b"".join(open(b, "rb").read() for b, _ in _recs(group))
    monkeypatch.setattr(concat_mod, "_BLOCK", 1000)  # many small blocks
    concatenate_recordings(_recs(group), out, tmp_path / "c.ap.meta", fsync=False)
    assert out.read_bytes() == b"".join(open(b, "rb").read() for b, _ in _recs(group))


def _with_ev(group):
    recs = []
    for s in group["sessions"]:
        tl, t = s["timeline"], s["truth"]
        word = np.asarray(
            np.memmap(t["bin"], dtype=np.int16, mode="r").reshape(-1, t["n_saved_chans"])[:, -1]
        )
        counts = {
            "total_frame_number_least": tl.n_frames_least,
            "total_video_time_least": tl.n_frames_least / tl.fps,
        }
        ev = ev_sync_check(word, t["meta"], counts, session_id=s["session_id"], probe="imec0",
                           calibrated_rates={HS: t["rate_true"]}).to_dict()  # fmt: skip
        recs.append({"session_id": s["session_id"], "root_directory": s["root_directory"], "bin": t["bin"],
                     "meta": t["meta"], "ev": ev})  # fmt: skip
    return recs


def test_changepoints_offsets_and_idempotence(group, tmp_path):
    recs = _with_ev(group)
    cp = changepoints(recs, {HS: group["sessions"][0]["truth"]["rate_true"]})
    cum = 0
    for s in group["sessions"]:
        t = s["truth"]
        e = cp[f"{s['session_id']}.imec0"]
        assert e["session_start_end"] == [cum, cum + t["n_samples"]]
        assert e["file_duration_samples"] == t["n_samples"]
        assert e["tracking_start_end_in_file"] == t["tracking_start_end"]
        assert e["tracking_start_end"] == [
            cum + t["tracking_start_end"][0],
            cum + t["tracking_start_end"][1],
        ]
        assert e["largest_camera_break_duration"] == t["largest_camera_break_duration"]
        assert e["ev_sync_passed"] is True and e["total_num_channels"] == t["n_saved_chans"]
        assert e["headstage_sn"] == HS and e["sample_rate"] == t["rate_true"]
        cum += t["n_samples"]
    # Rebuilding (as a re-run of the rule does) gives the same file, byte for byte.
    p1, p2 = tmp_path / "a.json", tmp_path / "b.json"
    write_json(p1, cp)
    write_json(p2, changepoints(_with_ev(group), {HS: group["sessions"][0]["truth"]["rate_true"]}))
    assert p1.read_bytes() == p2.read_bytes()
    assert "NaN" not in p1.read_text()


def test_changepoints_without_video_or_failed_check(group):
    recs = _with_ev(group)
    recs[0]["ev"] = None
    recs[1]["ev"] = dict(recs[1]["ev"], passed=False, problem="too far apart")
    cp = changepoints(recs)
    e0, e1 = cp[f"{recs[0]['session_id']}.imec0"], cp[f"{recs[1]['session_id']}.imec0"]
    assert e0["tracking_start_end"] is None and "no video" in e0["ev_sync_problem"]
    assert e1["tracking_start_end"] is None and e1["ev_sync_problem"] == "too far apart"
    assert e0["sample_rate"] == 30000.0  # no calibration table: imSampRate
    json.dumps(cp, allow_nan=False)
    recs[2]["ev"] = dict(recs[2]["ev"], n_samples=5)
    with pytest.raises(InputError, match="stale"):
        changepoints(recs)


def test_recording_key():
    assert recording_key("/x/20250430_145017.imec0.ap.bin") == "20250430_145017.imec0"
    assert recording_key("a.imec1.lf.bin") == "a.imec1"


def test_bad_inputs_write_nothing(group, tmp_path):
    recs = _recs(group)
    out_bin, out_meta = tmp_path / "c.ap.bin", tmp_path / "c.ap.meta"
    # A .bin truncated mid-sample.
    data = open(recs[1][0], "rb").read()
    bad = tmp_path / "t.imec0.ap.bin"
    bad.write_bytes(data[:-1])
    with pytest.raises(InputError, match="t.imec0.ap.bin") as exc:
        concatenate_recordings([recs[0], (bad, recs[1][1]), recs[2]], out_bin, out_meta)
    assert "truncated" in exc.value.problem
    # Different channel counts in one group.
    raw = read_meta(recs[2][1])
    n = 1000
    raw.update(
        nSavedChans="4", snsApLfSy="3,0,1", snsSaveChanSubset="0:2,768", fileSizeBytes=str(n * 8)
    )
    other_meta = tmp_path / "o.imec0.ap.meta"
    write_meta(other_meta, raw)
    np.zeros((n, 4), np.int16).tofile(tmp_path / "o.imec0.ap.bin")
    with pytest.raises(InputError, match="same channels"):
        concatenate_recordings(
            [recs[0], (tmp_path / "o.imec0.ap.bin", other_meta)], out_bin, out_meta
        )
    # A missing .bin.
    with pytest.raises(InputError, match="nothere"):
        concatenate_recordings(
            [recs[0], (tmp_path / "nothere.ap.bin", recs[1][1])], out_bin, out_meta
        )
    assert not out_bin.exists() and not out_meta.exists() and not list(tmp_path.glob(".tmp-*"))
