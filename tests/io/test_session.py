import numpy as np
import pytest
import soundfile as sf

from usvflow.io.atomic import InputError
from usvflow.io.session import discover

SERIALS = ["21372315", "21372316"]


def wav(path, channels=12, rate=250000, n=100):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros((n, channels), dtype=np.int16), rate, subtype="PCM_16")


def camera(video, name, chunks=2, npz=True, meta=True):
    d = video / name
    d.mkdir(parents=True)
    for i in range(chunks):
        (d / f"{i:06d}.mp4").write_bytes(b"")
        if npz:
            (d / f"{i:06d}.npz").write_bytes(b"")
    if meta:
        (d / "metadata.yaml").write_text("__store: {}\n")
    return d


@pytest.fixture
def session(tmp_path):
    root = tmp_path / "Data" / "20250430_145017"
    mc = root / "audio" / "original_mc"
    for name in [
        "m_250430145017.wav",
        "m_250430145526.wav",
        "s_250430145018.wav",
        "s_250430145527.wav",
    ]:
        wav(mc / name)
    video = root / "video"
    camera(video, "20250430_145035.21372315")
    camera(video, "20250430_145035.21372316")
    camera(video, "20250430_145035.99999999")  # not configured: ignored
    (root / "ephys" / "imec0").mkdir(parents=True)
    (root / "ephys" / "imec0" / "20250430_145017.imec0.ap.bin").write_bytes(b"")
    (root / "ephys" / "imec0" / "20250430_145017.imec0.ap.meta").write_text("nSavedChans=33\n")
    (root / "sync").mkdir()
    (root / "sync" / "CoolTerm Capture (sync.stc) 2025-04-30 14-49-47.txt").write_text(
        "a\nb\nc\n500\n"
    )
    return root


def test_discovers_every_stream(session):
    lay = discover("20250430_145017", session, camera_serials=SERIALS)
    assert lay.audio_stamp == "250430145017"
    assert lay.audio["m"].files == ["m_250430145017.wav", "m_250430145526.wav"]
    assert lay.audio["s"].channels == 12 and lay.audio["s"].sample_rate == 250000
    assert sorted(lay.cameras) == SERIALS
    assert lay.cameras["21372315"].chunks == ["000000.mp4", "000001.mp4"]
    assert lay.date_joint == "20250430145035"
    assert lay.probes["imec0"].bin == "ephys/imec0/20250430_145017.imec0.ap.bin"
    assert lay.coolterm.startswith("sync/CoolTerm Capture")


def test_missing_streams_are_empty_not_errors(tmp_path):
    root = tmp_path / "20250430_145017"
    camera(root / "video", "calibration_20250430_142030.21372315", chunks=1)
    lay = discover("20250430_145017", root, camera_serials=SERIALS)
    assert not lay.has_audio and not lay.has_video and not lay.probes and lay.coolterm is None
    assert list(lay.calibration_cameras) == ["21372315"]
    assert lay.date_joint == "20250430142030"


def test_channel_count_differing_between_files(session):
    bad = session / "audio" / "original_mc" / "s_250430145527.wav"
    wav(bad, channels=8)
    with pytest.raises(InputError) as exc:
        discover("x", session, camera_serials=SERIALS)
    assert "s_250430145527.wav" in str(exc.value) and "8 channels, expected 12" in str(exc.value)


def test_wrong_rate_and_missing_device(session):
    wav(session / "audio" / "original_mc" / "m_250430145526.wav", rate=192000)
    with pytest.raises(InputError, match="192000 Hz, expected 250000"):
        discover("x", session, camera_serials=SERIALS)
    for p in (session / "audio" / "original_mc").glob("s_*"):
        p.unlink()
    wav(session / "audio" / "original_mc" / "m_250430145526.wav")
    with pytest.raises(InputError, match=r"no files of audio device\(s\) \['s'\]"):
        discover("x", session, camera_serials=SERIALS)


def test_camera_without_frame_metadata(tmp_path):
    root = tmp_path / "s"
    camera(root / "video", "20250430_145035.21372315", npz=False)
    with pytest.raises(InputError) as exc:
        discover("x", root, camera_serials=SERIALS)
    assert "000000.mp4" in str(exc.value) and "frame metadata" in str(exc.value)
    root = tmp_path / "t"
    camera(root / "video", "20250430_145035.21372315", meta=False)
    with pytest.raises(InputError, match="no metadata.yaml"):
        discover("x", root, camera_serials=SERIALS)


def test_missing_folder(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        discover("20250430_145017", tmp_path / "nope")
