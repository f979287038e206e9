"""Calibration helpers: the board from the config, bad footage, and the comparison used against truth.
(Calibration accuracy from rendered ChArUco footage is tested end to end in
tests/workflow/test_pose_workflow.py, which calibrates the simulated calibration session.)"""

import numpy as np
import pytest

from usvflow.io.atomic import InputError
from usvflow.pose.calibrate import calibrate, compare_calibrations, make_board
from usvflow.simulate.pose import board_poses, camera_group, charuco_board, render_charuco_frames
from usvflow.simulate.video import H264Writer

SERIALS = ["21372315", "21372316"]


def test_board_from_config():
    b = make_board([8, 11], 24, [18.75, 4], 1000)
    assert b.board.getChessboardSize() == (8, 11) and b.square_length == 24
    with pytest.raises(ValueError, match="smaller"):
        make_board([8, 11], 24, [30, 4], 1000)


def test_rendered_board_is_detected_where_visible():
    cams = camera_group(SERIALS)
    rng = np.random.default_rng(0)
    frames = render_charuco_frames(cams, charuco_board(), board_poses(rng, 3), rng)
    board = make_board()
    n = [len(board.detect_image(f)[0]) for f in frames[0]]
    assert max(n) >= 40  # of 70 inner corners


def test_footage_without_board(tmp_path):
    videos = {}
    for s in SERIALS:
        videos[s] = tmp_path / f"{s}.mp4"
        with H264Writer(videos[s], 64, 48, 10) as w:
            for _ in range(3):
                w.write(np.full((48, 64), 128, np.uint8))
    with pytest.raises(InputError, match="detected in only 0 frame"):
        calibrate(videos, {}, tmp_path / "c.toml", tmp_path / "c.h5", tmp_path / "c.svg")


def test_compare_calibrations_is_frame_invariant():
    import cv2

    cams = camera_group(SERIALS + ["21369048"])
    moved = camera_group(SERIALS + ["21369048"])
    R = cv2.Rodrigues(np.array([0.3, -0.2, 0.5]))[0]
    t = np.array([100.0, -50.0, 30.0])
    for c in moved.cameras:  # same cameras in another world frame: X' = R X + t
        Rc = cv2.Rodrigues(np.asarray(c.get_rotation(), float))[0]
        c.set_rotation(cv2.Rodrigues(Rc @ R.T)[0].ravel())
        c.set_translation(np.asarray(c.get_translation(), float) - Rc @ R.T @ t)
    cmp = compare_calibrations(moved, cams)
    assert max(cmp["position"].values()) < 1e-6 and max(cmp["orientation_deg"].values()) < 1e-5
    moved.cameras[0].set_translation(np.asarray(moved.cameras[0].get_translation()) + [3.0, 0, 0])
    assert max(compare_calibrations(moved, cams)["position"].values()) > 1.0
