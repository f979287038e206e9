"""Streamed WAV I/O and step 8a (multichannel -> mono channel files)."""

import datetime as dt

import numpy as np
import pytest
import soundfile as sf

from usvflow.audio.split import split_device, split_name
from usvflow.audio.wav import OutputSet, WavReader, WavWriter, iter_blocks, wav_info
from usvflow.io.atomic import InputError
from usvflow.simulate.audio import write_avisoft
from usvflow.simulate.timeline import make_timeline

START = dt.datetime(2025, 4, 30, 14, 50, 17)
FS = 250_000


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    root = tmp_path_factory.mktemp("split")
    rng = np.random.default_rng(21)
    tl = make_timeline(
        rng, 0.5, ["a", "b"], preroll_s=0.05, break_s=0.15, postroll_frames=5, tail_s=0.05
    )
    truth = write_avisoft(root, tl, rng, START, calls_per_minute=300, file_seconds=1.0)
    return root, truth


def _mc(root, truth, d):
    return [root / "audio" / "original_mc" / n for n in truth["devices"][d]["files"]]


def _write(path, data, rate=FS, subtype="PCM_16"):
    sf.write(str(path), data, rate, subtype=subtype, format="WAV")
    return path


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ------------------------------------------------------------------------------------------ wav


def test_wav_roundtrip_blocks_and_ranges(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.integers(-32768, 32767, size=(1000, 3), dtype=np.int16)
    b = rng.integers(-32768, 32767, size=(777, 3), dtype=np.int16)
    with WavWriter(tmp_path / "a.wav", FS, 3) as w:
        w.write(a[:500])
        w.write(a[500:])
    _write(tmp_path / "b.wav", b)  # written by libsndfile
    info = wav_info(tmp_path / "a.wav")
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (FS, 3, 1000, "PCM_16")
    got, _ = sf.read(str(tmp_path / "a.wav"), dtype="int16")
    np.testing.assert_array_equal(got, a)
    files = [tmp_path / "a.wav", tmp_path / "b.wav"]
    whole = np.concatenate([a, b])
    np.testing.assert_array_equal(np.concatenate(list(iter_blocks(files, block=64))), whole)
    np.testing.assert_array_equal(np.concatenate(list(iter_blocks(files, channels=2, block=100, start=950, stop=1300))),
                                  whole[950:1300, 2])  # fmt: skip
    np.testing.assert_array_equal(
        np.concatenate(list(iter_blocks(files, channels=[2, 0], block=33))), whole[:, [2, 0]]
    )
    with WavReader(tmp_path / "b.wav") as rd:
        r = rd.read(-5, 10)
        assert r.shape == (15, 3) and not r[:5].any()
        np.testing.assert_array_equal(r[5:], b[:10])
        assert not rd.read(770, 790)[7:].any()


def test_wav_writer_atomic(tmp_path):
    with pytest.raises(RuntimeError):
        with WavWriter(tmp_path / "x.wav", FS) as w:
            w.write(np.zeros(10, np.int16))
            raise RuntimeError("boom")
    assert _leftovers(tmp_path) == []
    with pytest.raises(RuntimeError):
        with OutputSet() as out:
            out.wav(tmp_path / "a.wav", FS).write(np.ones(5, np.int16))
            out.json(tmp_path / "a.json", {"k": 1})
            raise RuntimeError("boom")
    assert _leftovers(tmp_path) == []
    with OutputSet() as out:
        out.wav(tmp_path / "a.wav", FS).write(np.arange(5, dtype=np.int16))
        out.text(tmp_path / "a.txt", "1\n")
        assert not (tmp_path / "a.wav").exists()  # nothing visible before the commit
    assert _leftovers(tmp_path) == ["a.txt", "a.wav"]
    np.testing.assert_array_equal(sf.read(str(tmp_path / "a.wav"), dtype="int16")[0], np.arange(5))


def test_truncated_and_garbage_wav(tmp_path):
    p = _write(tmp_path / "t.wav", np.zeros((1000, 2), np.int16))
    size = p.stat().st_size
    with open(p, "r+b") as fh:
        fh.truncate(size - 100)
    with pytest.raises(InputError, match="truncated WAV") as ei:
        wav_info(p)
    assert ei.value.path == str(p) and "1000 frames" in str(ei.value)
    (tmp_path / "g.wav").write_bytes(b"hello world, not a wav file")
    with pytest.raises(InputError, match="not a WAV") as ei:
        wav_info(tmp_path / "g.wav")
    assert "g.wav" in str(ei.value)
    with pytest.raises(InputError, match="not found"):
        wav_info(tmp_path / "missing.wav")


# ---------------------------------------------------------------------------------------- split


def test_split_equals_columns_joined(session, tmp_path):
    root, truth = session
    stamp = truth["devices"]["m"]["files"][0][2:-4]
    for d in ("m", "s"):
        files = _mc(root, truth, d)
        assert len(files) >= 2
        # given in any order, joined in time (name) order
        paths, n = split_device(files[::-1], tmp_path, d, stamp)
        assert n == truth["devices"][d]["n_samples"]
        assert [p.name for p in paths] == [split_name(d, stamp, c) for c in range(1, 13)]
        whole = np.concatenate([sf.read(str(f), dtype="int16")[0] for f in files])
        for c, p in enumerate(paths):
            info = wav_info(p)
            assert (info.samplerate, info.channels, info.subtype) == (FS, 1, "PCM_16")
            got, rate = sf.read(str(p), dtype="int16")
            assert rate == FS
            np.testing.assert_array_equal(got, whole[:, c])
    assert not [n for n in _leftovers(tmp_path) if n.startswith(".")]


@pytest.mark.parametrize("problem", ["rate", "channels", "truncated", "format"])
def test_split_bad_input_names_file_and_writes_nothing(tmp_path, problem):
    rng = np.random.default_rng(1)
    good = [_write(tmp_path / f"m_25043014501{i}.wav", rng.integers(-99, 99, (3000, 12), dtype=np.int16))
            for i in range(3)]  # fmt: skip
    bad = good[1]
    if problem == "rate":
        _write(bad, np.zeros((3000, 12), np.int16), rate=192_000)
        match = "sample rate 192000 Hz"
    elif problem == "channels":
        _write(bad, np.zeros((3000, 8), np.int16))
        match = "8 channels, expected 12"
    elif problem == "format":
        _write(bad, np.zeros((3000, 12), np.float32), subtype="FLOAT")
        match = "sample format FLOAT"
    else:
        with open(bad, "r+b") as fh:
            fh.truncate(bad.stat().st_size - 2400)
        match = "truncated WAV"
    out = tmp_path / "original"
    with pytest.raises(InputError, match=match) as ei:
        split_device(good, out, "m", "250430145010")
    assert ei.value.path == str(bad)
    assert _leftovers(out) == []


def test_split_failure_midway_leaves_nothing(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    files = [_write(tmp_path / f"m_25043014501{i}.wav", rng.integers(-99, 99, (5000, 12), dtype=np.int16))
             for i in range(2)]  # fmt: skip
    import usvflow.audio.split as split_mod

    real = split_mod.iter_blocks

    def failing(*a, **k):
        for i, blk in enumerate(real(*a, **k)):
            if i == 1:
                raise OSError("disk full")
            yield blk

    monkeypatch.setattr(split_mod, "iter_blocks", failing)
    out = tmp_path / "original"
    with pytest.raises(OSError):
        split_device(files, out, "m", "250430145010", block=1000)
    assert _leftovers(out) == []
