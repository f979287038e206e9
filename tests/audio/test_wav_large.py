"""WAV files past 4 GiB: RF64 written and read, and RIFF files whose 32-bit sizes overflowed.

The > 4 GiB files are sparse (a hole in the middle that reads back as zeros), so they take a few
kilobytes of disk and no time to write.
"""

import struct

import numpy as np
import pytest
import soundfile as sf

from usvflow.audio import wav as wavmod
from usvflow.audio.split import split_device
from usvflow.audio.wav import WavReader, WavWriter, iter_blocks, read_wav, wav_info

FS = 250_000
GIB4 = 1 << 32


def _head(path, n=4):
    with open(path, "rb") as fh:
        return fh.read(n)


def _noise(rng, n, ch=1):
    x = rng.integers(-32768, 32768, size=(n, ch) if ch > 1 else n)
    return x.astype(np.int16)


def test_mono_rf64_past_4gib(tmp_path):
    """A mono channel of 2.4 h (> 4 GiB of samples): RF64 header, every sample where it belongs,
    libsndfile agrees with our reader."""
    rng = np.random.default_rng(0)
    head, tail = _noise(rng, 5000), _noise(rng, 7000)
    gap = GIB4 // 2 + 123_457  # frames of silence: the data passes 4 GiB inside the hole
    n = len(head) + gap + len(tail)
    p = tmp_path / "long.wav"
    with WavWriter(p, FS, frames_hint=n) as w:
        w.write(head)
        w.write_zeros(gap)
        w.write(tail)
    assert p.stat().st_size == 80 + 2 * n > GIB4
    raw = _head(p, 80)
    assert raw[:4] == b"RF64" and raw[12:16] == b"ds64" and raw[72:76] == b"data"
    riff, data, frames = struct.unpack("<QQQ", raw[20:44])
    assert (riff, data, frames) == (p.stat().st_size - 8, 2 * n, n)

    info = wav_info(p)
    assert (info.frames, info.channels, info.samplerate, info.data_offset) == (n, 1, FS, 80)
    sfi = sf.info(str(p))
    assert (sfi.frames, sfi.format) == (n, "RF64")
    with WavReader(p) as r:
        assert r.n_samples == n
        np.testing.assert_array_equal(r.read(0, len(head)), head)
        np.testing.assert_array_equal(r.read(n - len(tail), n), tail)
        across = r.read(n - len(tail) - 10, n - len(tail) + 10)  # hole -> tail, past 4 GiB
        np.testing.assert_array_equal(across[:10], 0)
        np.testing.assert_array_equal(across[10:], tail[:10])
        np.testing.assert_array_equal(r.read(n - 5, n + 5)[5:], 0)  # zero-filled beyond the end
    got = np.concatenate(list(iter_blocks(p, start=n - len(tail) - 3, block=4096)))
    np.testing.assert_array_equal(got[:, 0], np.concatenate([[0, 0, 0], tail]))
    with sf.SoundFile(str(p)) as fh:
        fh.seek(n - len(tail))
        np.testing.assert_array_equal(fh.read(dtype="int16"), tail)


def test_multichannel_avisoft_rf64_input(tmp_path):
    """A 12-channel Avisoft file longer than 11.9 min (> 4 GiB) reads frame-exact past 4 GiB."""
    rng = np.random.default_rng(1)
    head, tail = _noise(rng, 300, 12), _noise(rng, 500, 12)
    gap = GIB4 // 24 + 1001
    n = len(head) + gap + len(tail)
    p = tmp_path / "m_250430145017.wav"
    with WavWriter(p, FS, 12, frames_hint=n) as w:
        w.write(head)
        w.write_zeros(gap)
        w.write(tail)
    assert p.stat().st_size > GIB4
    info = wav_info(p)
    assert (info.frames, info.channels) == (n, 12)
    assert sf.info(str(p)).frames == n
    blocks = list(iter_blocks(p, channels=[3, 11], start=n - len(tail), block=128))
    np.testing.assert_array_equal(np.concatenate(blocks), tail[:, [3, 11]])


def test_riff_with_overflowed_sizes(tmp_path):
    """A recorder that cannot count past 4 GiB leaves 0xFFFFFFFF in the size fields: the samples run
    to the end of the file."""
    rng = np.random.default_rng(2)
    tail = _noise(rng, 1000)
    p = tmp_path / "overflow.wav"
    n = GIB4 // 2 + 10_000
    hdr = (
        b"RIFF"
        + b"\xff\xff\xff\xff"
        + b"WAVE"
        + b"fmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, FS, 2 * FS, 2, 16)
        + b"data"
        + b"\xff\xff\xff\xff"
    )
    with open(p, "wb") as fh:
        fh.write(hdr)
        fh.seek(44 + 2 * (n - len(tail)))
        fh.write(tail.tobytes())
    info = wav_info(p)
    assert info.frames == n
    with WavReader(p) as r:
        np.testing.assert_array_equal(r.read(n - len(tail), n), tail)


def test_riff_becomes_rf64_when_length_unknown(tmp_path, monkeypatch):
    """Without ``frames_hint`` a file that outgrows RIFF is rewritten as RF64 when finished (the
    4 GiB limit lowered so that the move of the samples is tested on a small file)."""
    monkeypatch.setattr(WavWriter, "MAX_DATA", 10_000)
    monkeypatch.setattr(wavmod, "_MOVE_BLOCK", 999)  # several blocks, not aligned to the data
    rng = np.random.default_rng(3)
    x = _noise(rng, 6001, 2)
    p = tmp_path / "grown.wav"
    with WavWriter(p, FS, 2) as w:
        for a in range(0, len(x), 777):
            w.write(x[a : a + 777])
    assert _head(p, 4) == b"RF64"
    _, got = read_wav(p)
    np.testing.assert_array_equal(got, x)
    back, _ = sf.read(str(p), dtype="int16")
    np.testing.assert_array_equal(back, x)
    # a file that fits keeps the classic 44-byte header
    small = tmp_path / "small.wav"
    with WavWriter(small, FS, 2) as w:
        w.write(x[:100])
    assert _head(small, 4) == b"RIFF" and wav_info(small).data_offset == 44


def test_split_writes_rf64_outputs(tmp_path, monkeypatch):
    """The split step asks for RF64 when its mono outputs cannot fit RIFF (limit lowered), and the
    channels come out bit for bit."""
    monkeypatch.setattr(WavWriter, "MAX_DATA", 4000)
    rng = np.random.default_rng(4)
    parts = [_noise(rng, 1500, 3), _noise(rng, 1200, 3)]
    files = []
    for i, x in enumerate(parts):
        files.append(tmp_path / f"m_2504301450{17 + i}.wav")
        with WavWriter(files[-1], FS, 3) as w:
            w.write(x)
    outs, n = split_device(files, tmp_path / "out", "m", "250430145017", channels=3)
    assert n == 2700
    whole = np.concatenate(parts)
    for c, o in enumerate(outs):
        assert _head(o, 4) == b"RF64"
        np.testing.assert_array_equal(read_wav(o)[1], whole[:, c])


def test_write_zeros_rejects_negative(tmp_path):
    with WavWriter(tmp_path / "z.wav", FS) as w:
        with pytest.raises(ValueError, match="negative"):
            w.write_zeros(-1)
        w.write_zeros(10)
    assert read_wav(tmp_path / "z.wav")[1].tolist() == [0] * 10
