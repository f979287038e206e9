"""Reading Loopbio image stores (usvflow.io.loopbio) from simulated camera folders."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import yaml

from usvflow.io.atomic import InputError
from usvflow.io.loopbio import camera_dirs, date_joint, parse_camera_dir_name, read_store
from usvflow.simulate.timeline import make_timeline
from usvflow.simulate.video import write_calibration_cameras, write_loopbio_cameras

SERIALS = ["21372315", "21372316", "21369048", "22085397", "21241563"]
STAMP = "20250430_145035"
CAL_STAMP = "20250430_144012"
EPOCH0 = 1_746_024_635.0
LEDS = {"21372315": {"LED_top": [20, 74], "LED_middle": [32, 74], "LED_bottom": [44, 74]}}


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    root = tmp_path_factory.mktemp("loopbio") / "20250430_145017"
    tl = make_timeline(np.random.default_rng(1), 1.5, SERIALS)
    truth = write_loopbio_cameras(
        root,
        tl,
        np.random.default_rng(7),
        STAMP,
        LEDS,
        height=64,
        width=80,
        chunksize=100,
        epoch0=EPOCH0,
        dropped_frames={"22085397": [3, 150]},
    )
    cal = write_calibration_cameras(
        root, np.random.default_rng(8), CAL_STAMP, SERIALS[:2], n_frames=12, height=64, width=80
    )
    return root, tl, truth, cal


def test_round_trip(session):
    root, tl, truth, _ = session
    for serial in SERIALS:
        st = read_store(root / "video" / f"{STAMP}.{serial}")
        n = tl.camera_frames[serial]
        dropped = truth["cameras"][serial]["dropped"]
        assert st.serial == serial and st.stamp == STAMP and not st.is_calibration
        assert st.date_joint == "20250430145035"
        assert [p.name for p in st.mp4_paths] == [f"{i:06d}.mp4" for i in range(len(st.mp4_paths))]
        assert len(st.mp4_paths) == -(-(n - len(dropped)) // 100) >= 2
        assert [p.stem for p in st.npz_paths] == [p.stem for p in st.mp4_paths]
        want = np.setdiff1d(np.arange(n), dropped)
        assert st.frame_number.dtype == np.int64
        np.testing.assert_array_equal(st.frame_number, want)
        np.testing.assert_allclose(st.frame_time - EPOCH0, tl.frame_times_s[want], atol=6e-4)
        assert st.frame_count == len(want) and st.n_dropped == len(dropped)
        assert st.has_dropped_frames == bool(dropped)
        assert st.metadata["__store"]["class"] == "VideoImgStore"
        assert st.metadata["__store"]["imgshape"] == [64, 80]
        assert st.metadata["__store"]["chunksize"] == 100
        assert str(st.metadata["user"]["camera_serial"]) == serial


def test_calibration_store(session):
    root, _, _, cal = session
    st = read_store(root / "video" / f"calibration_{CAL_STAMP}.21372316")
    assert st.is_calibration and st.serial == "21372316" and st.stamp == CAL_STAMP
    assert len(st.mp4_paths) == 1 and st.frame_count == 12 == cal["cameras"]["21372316"]["frames"]
    np.testing.assert_allclose(np.diff(st.frame_time), 0.1, atol=1e-6)


def test_camera_dirs_and_date_joint(session, tmp_path):
    root = session[0]
    names = [p.name for p in camera_dirs(root / "video")]
    assert names == sorted(
        [f"{STAMP}.{s}" for s in SERIALS] + [f"calibration_{CAL_STAMP}.{s}" for s in SERIALS[:2]]
    )
    assert date_joint(root / "video", SERIALS) == "20250430145035"
    # calibration folders count: a calibration-only session takes its stamp from them
    v = tmp_path / "video"
    (v / f"calibration_{CAL_STAMP}.21372315").mkdir(parents=True)
    (v / "20250430144012").mkdir()  # a product folder, not a camera
    (v / "concatenated_temp_21372315.mp4").write_bytes(b"")
    assert [p.name for p in camera_dirs(v)] == [f"calibration_{CAL_STAMP}.21372315"]
    assert date_joint(v, ["21372315"]) == "20250430144012"
    with pytest.raises(InputError, match="no camera folder"):
        date_joint(v, ["99999999"])
    assert parse_camera_dir_name("20250430_145035.21372315") == (
        "20250430_145035",
        "21372315",
        False,
    )
    assert parse_camera_dir_name("20250430145035") is None


def _copy_camera(session, tmp_path, serial="21372316"):
    src = session[0] / "video" / f"{STAMP}.{serial}"
    dst = tmp_path / "video" / src.name
    shutil.copytree(src, dst)
    return dst


def test_missing_npz(session, tmp_path):
    d = _copy_camera(session, tmp_path)
    (d / "000001.npz").unlink()
    with pytest.raises(InputError, match="without npz") as ei:
        read_store(d)
    assert str(d) in str(ei.value)


def test_missing_mp4_for_npz(session, tmp_path):
    d = _copy_camera(session, tmp_path)
    (d / "000000.mp4").unlink()
    with pytest.raises(InputError, match="without mp4") as ei:
        read_store(d)
    assert str(d) in str(ei.value)


def test_missing_metadata(session, tmp_path):
    d = _copy_camera(session, tmp_path)
    (d / "metadata.yaml").unlink()
    with pytest.raises(InputError, match="metadata.yaml") as ei:
        read_store(d)
    assert str(d) in str(ei.value)


def test_no_mp4(tmp_path):
    d = tmp_path / f"{STAMP}.21372315"
    d.mkdir()
    (d / "metadata.yaml").write_text(yaml.safe_dump({"__store": {"class": "VideoImgStore"}}))
    with pytest.raises(InputError, match="no mp4") as ei:
        read_store(d)
    assert str(d) in str(ei.value)


def test_bad_npz_contents(session, tmp_path):
    d = _copy_camera(session, tmp_path)
    np.savez(d / "000001.npz", frame_number=np.arange(100))
    with pytest.raises(InputError, match="lacks frame_time"):
        read_store(d)
    np.savez(d / "000001.npz", frame_number=np.arange(100, 200), frame_time=np.arange(99.0))
    with pytest.raises(InputError, match="differ in length"):
        read_store(d)


def test_frame_time_not_increasing(session, tmp_path):
    d = _copy_camera(session, tmp_path)
    with np.load(d / "000001.npz") as z:
        fn, ft = z["frame_number"], z["frame_time"].copy()
    ft[10] = ft[9]
    np.savez(d / "000001.npz", frame_number=fn, frame_time=ft)
    with pytest.raises(InputError, match="frame_time is not increasing") as ei:
        read_store(d)
    assert str(d) in str(ei.value)


def test_metadata_with_python_tags(session, tmp_path):
    """Real imgstore metadata may carry Python-specific YAML tags: they are read as plain data."""
    d = _copy_camera(session, tmp_path)
    (d / "metadata.yaml").write_text(
        "__store: {class: VideoImgStore, chunksize: 100, imgshape: !!python/tuple [64, 80]}\nuser: {}\n"
    )
    assert read_store(d).metadata["__store"]["imgshape"] == [64, 80]
