"""SLP -> analysis HDF5: real SLEAP files, sleap-io agreement, padding, bad input."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from usvflow.io.atomic import InputError
from usvflow.pose.slp import read_analysis_h5, slp_to_analysis_h5

# real SLEAP files (tests/data/sleap/, BSD-3 licence of SLEAP beside them)
REAL = Path(__file__).resolve().parents[1] / "data" / "sleap"


@pytest.mark.parametrize("name", ["clip.predictions.slp", "minimal_instance.slp"])
def test_real_slp_matches_sleap_io(name, tmp_path):
    import sleap_io as sio

    src = REAL / name
    out = tmp_path / "x.analysis.h5"
    slp_to_analysis_h5(src, out)
    labels = sio.load_slp(str(src), open_videos=False)
    want = labels.numpy(untracked=not labels.tracks, return_confidence=True)
    got = read_analysis_h5(out)
    np.testing.assert_array_equal(got["points"], want[..., :2])
    np.testing.assert_array_equal(np.isnan(got["scores"]), np.isnan(want[..., 2]))
    assert got["node_names"] == labels.skeletons[0].node_names
    if labels.tracks:
        assert got["track_names"] == [t.name for t in labels.tracks]
    # sleap-io reads our file back to the same points
    back = sio.load_analysis_h5(str(out)).numpy(untracked=not labels.tracks)
    np.testing.assert_array_equal(back, want[..., :2])
    with h5py.File(out) as h:  # SLEAP's (matlab-order) layout
        n_tracks, n_nodes, n_frames = want.shape[1], want.shape[2], want.shape[0]
        assert h["tracks"].shape == (n_tracks, 2, n_nodes, n_frames)
        assert h["track_occupancy"].shape == (n_frames, n_tracks)
        assert h["point_scores"].shape == (n_tracks, n_nodes, n_frames)


def test_real_sleap_analysis_file_reads():
    import sleap_io as sio

    f = REAL / "small_robot.000_small_robot_3_frame.analysis.h5"
    r = read_analysis_h5(f)
    np.testing.assert_allclose(
        r["points"], sio.load_analysis_h5(str(f)).numpy(untracked=True), rtol=1e-6
    )  # sio: float32
    assert r["points"].shape == (3, 1, 3, 2)
    assert r["node_names"] == ["top", "front", "rear"]
    assert np.isfinite(r["points"]).any()


def test_padding_to_the_video_frame_count(tmp_path):
    out = tmp_path / "p.analysis.h5"
    s = slp_to_analysis_h5(REAL / "clip.predictions.slp", out, n_frames=1600)
    r = read_analysis_h5(out)
    assert r["points"].shape[0] == 1600 == s["frames"]
    assert np.isnan(r["points"][1500:]).all() and np.isfinite(r["points"][:1500]).any()
    with pytest.raises(InputError, match="beyond the video"):
        slp_to_analysis_h5(REAL / "clip.predictions.slp", tmp_path / "q.analysis.h5", n_frames=100)


def test_simulated_predictions(pose_session, tmp_path):
    from .conftest import DJ, SERIALS

    s = SERIALS[1]
    slp = pose_session["root"] / "exp" / "video" / DJ / s / f"{s}-{DJ}.predictions.slp"
    out = tmp_path / "sim.analysis.h5"
    summary = slp_to_analysis_h5(slp, out, n_frames=250)
    r = read_analysis_h5(out)
    assert r["points"].shape == (250, 2, 15, 2) and r["track_names"] == ["animal_0", "animal_1"]
    assert 0.85 < summary["visible_fraction"] < 0.99
    part = read_analysis_h5(out, frames=slice(100, 140))
    np.testing.assert_array_equal(part["points"], r["points"][100:140])


def test_bad_files(tmp_path):
    bad = tmp_path / "bad.slp"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(InputError, match="bad.slp"):
        slp_to_analysis_h5(bad, tmp_path / "o.h5")
    with pytest.raises(InputError, match="not an HDF5"):
        read_analysis_h5(bad)
    with h5py.File(tmp_path / "e.h5", "w") as h:
        h["x"] = 1
    with pytest.raises(InputError, match="not a SLEAP analysis"):
        read_analysis_h5(tmp_path / "e.h5")


def test_cli(tmp_path):
    from usvflow.cli import main

    out = tmp_path / "c.analysis.h5"
    assert (
        main(["slp-to-h5", str(REAL / "clip.predictions.slp"), "-o", str(out), "--frames", "1510"])
        == 0
    )
    assert read_analysis_h5(out)["n_frames"] == 1510
    assert main(["slp-to-h5", str(tmp_path / "missing.slp"), "-o", str(out)]) == 2


@pytest.mark.parametrize("tracks", [["a", "b"], []], ids=["tracked", "untracked"])
def test_first_labelled_frame_after_zero(tmp_path, tracks):
    """Frames before the first labelled one stay NaN and every frame keeps its index (sleap-io's lazy
    arrays start at the first labelled frame; the eager ones at frame 0)."""
    import sleap_io as sio

    from usvflow.simulate.pose import mouse_skeleton, noisy_detections, write_slp

    rng = np.random.default_rng(5)
    det = noisy_detections(rng, rng.uniform(100, 900, size=(60, 2, 15, 2)))
    det[:17] = np.nan  # nothing labelled before frame 17
    slp = tmp_path / "late.predictions.slp"
    write_slp(slp, det, mouse_skeleton(), tracks, "late.mp4")
    out = tmp_path / "late.analysis.h5"
    s = slp_to_analysis_h5(slp, out, n_frames=70)
    r = read_analysis_h5(out)
    labels = sio.load_slp(str(slp), open_videos=False)
    want = labels.numpy(untracked=not tracks, return_confidence=True)
    assert want.shape[0] == 60 and r["points"].shape == (70, 2, 15, 2)
    np.testing.assert_array_equal(r["points"][:60], want[..., :2])
    np.testing.assert_array_equal(r["scores"][:60], want[..., 2])
    assert np.isnan(r["points"][:17]).all() and np.isnan(r["points"][60:]).all()
    assert s["labelled_frames"] == 60 - 17
    with h5py.File(out) as h:
        assert h["tracks"].chunks[-1] == 70  # chunked along the frame axis
        inst = h["instance_scores"][()]
        assert np.isnan(inst[:, :17]).all() and np.isfinite(inst[:, 17:60]).any(axis=0).all()


def test_user_instances_replace_predictions_of_their_track(tmp_path):
    """A proofread file: user instances replace the prediction of their track (points, score 1, no
    instance score), on the streamed path; sleap-io's eager arrays agree."""
    import sleap_io as sio

    from usvflow.simulate.pose import mouse_skeleton

    rng = np.random.default_rng(6)
    skel = mouse_skeleton()
    tracks = [sio.Track(name="a"), sio.Track(name="b")]
    video = sio.Video(filename="v.mp4", open_backend=False)
    lfs = []
    for f in range(0, 30, 3):
        insts = []
        for t in tracks:
            xy = rng.uniform(100, 900, size=(15, 2))
            scores = rng.uniform(0.5, 1, 15)
            insts.append(
                sio.PredictedInstance.from_numpy(
                    points_data=xy,
                    point_scores=scores,
                    score=0.9,
                    skeleton=skel,
                    track=t,
                    tracking_score=0.7,
                )
            )
        if f % 2 == 0:  # a user instance of track a
            xy = rng.uniform(100, 900, size=(15, 2))
            xy[3] = np.nan
            insts.insert(f % 4 // 2, sio.Instance.from_numpy(xy, skeleton=skel, track=tracks[0]))
        lfs.append(sio.LabeledFrame(video=video, frame_idx=f, instances=insts))
    slp = tmp_path / "proofread.slp"
    sio.save_slp(
        sio.Labels(labeled_frames=lfs, videos=[video], skeletons=[skel], tracks=tracks), str(slp)
    )
    from usvflow.pose.slp import _StreamedSlp

    assert _StreamedSlp.open(slp) is not None
    out = tmp_path / "p.analysis.h5"
    slp_to_analysis_h5(slp, out, n_frames=30)
    r = read_analysis_h5(out)
    want = sio.load_slp(str(slp), open_videos=False).numpy(return_confidence=True)
    np.testing.assert_array_equal(r["points"][: len(want)], want[..., :2])
    np.testing.assert_array_equal(r["scores"][: len(want)], want[..., 2])
    with h5py.File(out) as h:
        inst = h["instance_scores"][()]
    assert np.isnan(inst[0, ::6]).all() and (inst[0, 3::6] == np.float32(0.9)).all()
    assert (inst[1, ::3] == np.float32(0.9)).all()
