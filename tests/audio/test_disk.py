"""The audio chain's disk estimate and check (usvflow.audio.disk)."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from usvflow.audio.disk import (
    DiskSpaceError,
    SessionAudio,
    audio_disk_need,
    check_audio_disk,
    copy_bytes,
    missing_stages,
)
from usvflow.audio.wav import write_wav

FS = 250_000


@pytest.fixture
def session(tmp_path):
    raw = []
    for d, n in (("m", 3000), ("s", 2000)):
        raw.append(tmp_path / "audio" / "original_mc" / f"{d}_250430145017.wav")
        write_wav(raw[-1], FS, np.zeros((n, 12), np.int16))
    products = {
        "split": [str(tmp_path / "audio" / "original" / f"{d}_ch01.wav") for d in "ms"],
        "cropped": [str(tmp_path / "audio" / "cropped_to_video" / f"{d}_ch01.wav") for d in "ms"],
        "hpss": [str(tmp_path / "audio" / "hpss" / f"{d}_ch01.wav") for d in "ms"],
        "filtered": [str(tmp_path / "audio" / "hpss_filtered" / f"{d}_ch01.wav") for d in "ms"],
        "memmap": [str(tmp_path / "audio" / "hpss_filtered" / "2504_concatenated_*_int16.mmap")],
    }
    return SessionAudio("s1", str(tmp_path), [str(p) for p in raw], products)


def _touch(paths):
    for p in paths:
        p = Path(p.replace("*", "24_100_2"))
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")


def test_one_copy_is_the_raw_data(session):
    assert copy_bytes(session.raw_files) == (3000 + 2000) * 12 * 2


def test_need_per_setting(session):
    one = 5000 * 24
    keep_all = {"split": True, "cropped": True, "hpss": True}
    temp_all = {"split": False, "cropped": False, "hpss": False}
    assert audio_disk_need(session, keep_all) == 5 * one
    # filtered + memmap kept, the three temporary stages at most two at a time
    assert audio_disk_need(session, temp_all) == 4 * one
    assert audio_disk_need(session, {"split": False, "cropped": True, "hpss": True}) == 5 * one
    assert audio_disk_need(session, {"split": True, "cropped": True, "hpss": False}) == 5 * one
    # stages already on disk are not counted again
    _touch(session.products["split"] + session.products["cropped"])
    assert missing_stages(session.products) == ["hpss", "filtered", "memmap"]
    assert audio_disk_need(session, keep_all) == 3 * one
    # a finished chain (filtered + memmap) needs nothing, even with its temporary stages deleted
    _touch(session.products["filtered"] + session.products["memmap"])
    for p in session.products["split"]:
        os.remove(p)
    assert missing_stages(session.products) == []
    assert audio_disk_need(session, keep_all) == 0


def test_check_names_needed_and_free_bytes(session):
    keep = {"split": True, "cropped": True, "hpss": True}
    free = shutil.disk_usage(session.root).free
    plan = check_audio_disk([session], keep)
    assert list(plan.per_session.values()) == [5 * 5000 * 24]
    with pytest.raises(DiskSpaceError) as ei:
        check_audio_disk([session], keep, reserve=free)
    msg = str(ei.value)
    assert "nothing was written" in msg and f"needs {5 * 5000 * 24:,} bytes" in msg
    assert "bytes" in msg and "are free" in msg and "audio.disk.keep_split: false" in msg
