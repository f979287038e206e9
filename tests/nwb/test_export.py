"""NWB export pieces: the experimental code in words, the cameras in the arena frame, the USV table
merge, the session start time and clear errors on bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from usvflow.io.atomic import InputError
from usvflow.nwb.export import SessionProducts, cameras_in_arena_frame, find_products, usv_table
from usvflow.nwb.metadata import decode_experimental_code, session_start_time


def test_experimental_code_in_words():
    assert decode_experimental_code("E2MF") == "electrophysiology; 2 animals; male; female"
    assert (
        decode_experimental_code("BC2FMSe")
        == "behavior; courtship; 2 animals; female; male; single-housed; estrus"
    )
    assert decode_experimental_code("Q1M") == "alone; 1 animal; male"
    assert decode_experimental_code("") == ""
    with pytest.raises(InputError, match="unknown letter 'Z'"):
        decode_experimental_code("E2Z")


def test_session_start_time():
    t = session_start_time("20250430145035", "America/New_York")
    assert t.isoformat() == "2025-04-30T14:50:35-04:00"
    with pytest.raises(InputError, match="IANA"):
        session_start_time("20250430145035", "Mars/Olympus")
    with pytest.raises(InputError, match="YYYYMMDDhhmmss"):
        session_start_time("2025-04-30", "UTC")


def test_cameras_in_the_arena_frame_project_like_the_calibration(tmp_path):
    """A point projects to the same pixel through the calibration (board frame) and through the
    re-expressed camera (arena frame, metres)."""
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(0)
    rc_vec, t = rng.normal(0, 0.5, 3), np.array([30.0, -50.0, 900.0])  # mm
    K = np.array([[1000.0, 0, 640], [0, 1000.0, 512], [0, 0, 1]])
    (tmp_path / "c.toml").write_text(
        '[cam_0]\nname = "123"\nsize = [1280, 1024]\n'
        f"matrix = {K.tolist()}\ndistortions = [0.0, 0.0, 0.0, 0.0, 0.0]\n"
        f"rotation = {rc_vec.tolist()}\ntranslation = {t.tolist()}\n"
    )
    R = Rotation.from_rotvec(rng.normal(0, 1, 3)).as_matrix()
    T = {"k": 0.001, "mid": np.array([0.01, -0.02, 1.0]), "R": R}
    (cam,) = cameras_in_arena_frame(tmp_path / "c.toml", T)
    x_cal = rng.normal(0, 100, (10, 3))
    x_m = (x_cal * T["k"] - T["mid"]) @ T["R"]  # the metric file's transform (row vectors)
    rc = Rotation.from_rotvec(rc_vec).as_matrix()

    def project(Rm, tv, pts):
        c = pts @ Rm.T + tv
        p = c @ K.T
        return p[:, :2] / p[:, 2:]

    np.testing.assert_allclose(project(cam["R"], cam["t"], x_m), project(rc, t, x_cal), atol=1e-6)
    np.testing.assert_allclose(cam["R"] @ cam["R"].T, np.eye(3), atol=1e-12)  # still a rotation


def test_usv_table_merges_emitters_call_types_and_estimates(tmp_path):
    base = pd.DataFrame(
        {"usv_id": ["0000", "0001"], "start": [0.1, 0.5], "stop": [0.2, 0.6], "emitter": ["", ""]}
    )
    base.assign(call_type=["flat", "trill"], call_type_prob=[0.9, 0.8]).to_csv(
        tmp_path / "ct.csv", index=False
    )
    base.assign(emitter=["a", ""]).to_csv(tmp_path / "as.csv", index=False)
    pd.DataFrame(
        {
            "usv_id": ["0001", "0000"],
            "x_m": [0.2, 0.1],
            "y_m": [0, 0],
            "z_m": [0, 0],
            "coherence": [1, 1],
            "confidence": [0.5, 0.99],
            "emitter": ["", "a"],
            "dist_a_m": [0.3, 0.01],
        }
    ).to_csv(tmp_path / "se.csv", index=False)
    p = SessionProducts(
        "s",
        usv_call_types=tmp_path / "ct.csv",
        usv_assigned=tmp_path / "as.csv",
        source_estimates=tmp_path / "se.csv",
    )
    df = usv_table(p)
    assert df["emitter"].fillna("").tolist() == ["a", ""]
    assert df["call_type"].tolist() == ["flat", "trill"]
    assert df["emitter_confidence"].tolist() == [0.99, 0.5] and df["dist_a_m"].tolist() == [
        0.01,
        0.3,
    ]
    assert usv_table(SessionProducts("s")) is None


def test_bad_inputs_are_named(tmp_path):
    with pytest.raises(InputError, match="not a session folder"):
        find_products(tmp_path / "missing")
    (tmp_path / "s.csv").write_text("usv_id,begin\n0,1\n")
    with pytest.raises(InputError, match="lacks column 'start'"):
        usv_table(SessionProducts("s", usv_summary=tmp_path / "s.csv"))
    (tmp_path / "c.toml").write_text("[cam_0]\nname = 'x'\n")
    with pytest.raises(InputError, match="cam_0 lacks"):
        cameras_in_arena_frame(tmp_path / "c.toml", None)


def test_filtered_audio_is_written_on_request(tmp_path):
    """With include_audio the memmap goes in as a TimeSeries (sample i at i / rate), equal to the memmap."""
    import json

    from pynwb import NWBHDF5IO

    from usvflow.nwb.export import write_session_nwb

    rng = np.random.default_rng(0)
    x = rng.integers(-3000, 3000, (5000, 4), dtype=np.int16)
    mm = tmp_path / "250430145017_concatenated_audio_hpss_filtered_250000_5000_4_int16.mmap"
    x.tofile(mm)
    side = {
        "shape": [5000, 4],
        "dtype": "int16",
        "sample_rate": 250000,
        "channels": ["m_ch01", "m_ch02", "s_ch01", "s_ch02"],
    }
    mm.with_suffix(".json").write_text(json.dumps(side))
    st = _settings(include_audio=True)
    p = SessionProducts(
        "20250430_145017", date_joint="20250430145035", experimental_code="B2MF", memmap=mm
    )
    summary = write_session_nwb(p, tmp_path / "s.nwb", st)
    assert summary["audio_samples"] == 5000
    with NWBHDF5IO(str(tmp_path / "s.nwb"), "r") as io:
        ts = io.read().processing["audio"]["filtered_audio"]
        np.testing.assert_array_equal(ts.data[:], x)
        assert ts.rate == 250000.0 and ts.starting_time == 0.0


def test_export_is_byte_identical_on_rerun(tmp_path):
    """Two exports of the same products give the same bytes (seeded object ids, no wall-clock date)."""
    from usvflow.nwb.export import write_session_nwb

    st = _settings(include_audio=False)
    p = SessionProducts("20250430_145017", date_joint="20250430145035", experimental_code="B2MF")
    write_session_nwb(p, tmp_path / "a.nwb", st)
    write_session_nwb(p, tmp_path / "b.nwb", st)
    assert (tmp_path / "a.nwb").read_bytes() == (tmp_path / "b.nwb").read_bytes()
    q = SessionProducts("20250430_153017", date_joint="20250430153035", experimental_code="B2MF")
    write_session_nwb(q, tmp_path / "c.nwb", st)
    assert (tmp_path / "c.nwb").read_bytes() != (tmp_path / "a.nwb").read_bytes()


def _settings(include_audio: bool):
    from usvflow.nwb.export import NwbSettings

    return NwbSettings(
        include_audio=include_audio,
        timezone="UTC",
        institution="",
        lab="",
        experimenter=[],
        species="Mus musculus",
        subject_age="P90D",
        probe_locations={},
    )
