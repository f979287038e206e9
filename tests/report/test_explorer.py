"""The session explorer: a self-contained page; a scripted click on a call in headless Chromium shows its
spectrogram, features, the video frame at its onset and the poses/source on the arena."""

import asyncio
import subprocess

import numpy as np
import pandas as pd
import pytest

from usvflow.report.explorer import explorer_data, video_frames, write_explorer

from .browser import Page, click_call, png_is_not_blank


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    from usvflow.video.ffmpeg import ffmpeg_exe

    d = tmp_path_factory.mktemp("explorer")
    video = d / "cam.mp4"
    # 3 s at 30 fps; the frame number is drawn into every frame (testsrc)
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30:duration=3",
                    "-pix_fmt", "yuv420p", str(video)], check=True)  # fmt: skip
    rng = np.random.default_rng(0)
    n = 6
    usvs = pd.DataFrame({"usv_id": [f"{i:04d}" for i in range(n)], "start": np.linspace(0.2, 2.5, n),
                         "duration": np.full(n, 0.05), "snr_db": rng.uniform(10, 30, n),
                         "peak_freq_hz": rng.uniform(50e3, 90e3, n),
                         "emitter": ["animal_0", "animal_1", "unassigned", "animal_0", "animal_1", "animal_0"],
                         "call_type": ["flat", "up", "flat", "step", "up", "flat"]})  # fmt: skip
    usvs["stop"] = usvs["start"] + usvs["duration"]
    specs = {
        "usv_id": usvs["usv_id"].to_numpy(),
        "spectrograms": rng.random((n, 64, 64)).astype(np.float32),
    }
    est = pd.DataFrame(
        {
            "usv_id": usvs["usv_id"],
            "x_m": rng.uniform(-0.2, 0.2, n),
            "y_m": rng.uniform(-0.2, 0.2, n),
        }
    )
    poses = {"tracks": rng.uniform(-0.25, 0.25, (90, 2, 15, 3)), "track_names": ["animal_0", "animal_1"],
             "node_names": ["Nose"] + [f"n{i}" for i in range(14)], "frame_rate": 30.0}  # fmt: skip
    corners = np.array([[-0.3, 0.3, 0], [0.3, 0.3, 0], [0.3, -0.3, 0], [-0.3, -0.3, 0]])
    data = explorer_data(
        "S1", usvs, specs, est, poses, video, window=(0.0, 3.0), arena_corners=corners
    )
    page = write_explorer(data, d / "S1_explorer.html")
    return page, data, usvs


def test_data_per_call(session):
    _, data, usvs = session
    assert [c["id"] for c in data["calls"]] == list(usvs["usv_id"])
    c = data["calls"][3]
    assert c["frame"] == int(np.floor(usvs["start"][3] * 30)) and c["image"].startswith(
        "data:image/jpeg"
    )
    assert (
        c["spectrogram"].startswith("data:image/png")
        and c["type"] == "step"
        and c["emitter"] == "animal_0"
    )
    assert set(c["poses"]) == {"animal_0", "animal_1"} and len(c["poses"]["animal_0"]) == 15
    assert data["emitters"] == ["animal_0", "animal_1", "unassigned"]


def test_video_frames_are_the_requested_ones(session, tmp_path):
    from usvflow.video.ffmpeg import ffmpeg_exe

    # a video whose frame k is uniformly grey (luma 10 k): the decoded frames must match their index
    v = tmp_path / "grey.mp4"
    src = "geq=lum='10*N':cb=128:cr=128"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "color=black:size=64x48:rate=10:duration=2",
                    "-vf", src, "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv420p", str(v)], check=True)  # fmt: skip
    import base64
    import io

    from PIL import Image

    got = video_frames(v, [3, 11, 17], width=64)
    assert sorted(got) == [3, 11, 17]
    for k, uri in got.items():
        img = np.asarray(
            Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("L"), float
        )
        # limited-range luma 10k -> RGB (10k - 16) * 255 / 219
        assert abs(img.mean() - (10 * k - 16) * 255 / 219) < 4, (k, img.mean())


def test_click_shows_call_in_chromium(session, artifacts):
    page, data, usvs = session

    async def run():
        async with Page(page.as_uri()) as p:
            await p.wait_for("document.querySelectorAll('rect.call').length === 6")
            await p.screenshot(artifacts / "explorer_before.png")
            state = await click_call(p, "0003")  # a real mouse click on call 0003's bar
            shot = await p.screenshot(artifacts / "explorer_click.png")
            return state, shot

    state, shot = asyncio.run(run())
    print(f"explorer screenshot: {shot}")
    assert state["title"] == "USV 0003: step, animal_0"
    assert state["frame"] == f"video frame {int(np.floor(usvs['start'][3] * 30))} at onset"
    assert state["spec"] == 256 and state["img"] == 320
    assert state["nodes"] == 30 and state["source"]
    assert "peak_freq_hz" in state["features"] and "source_x_m" in state["features"]
    assert png_is_not_blank(shot) > 0.05
