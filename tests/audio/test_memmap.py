"""Concatenated-audio memmap (usvflow.audio.memmap): round trip, sidecar, bad input."""

import json

import numpy as np
import pytest

from usvflow.audio.memmap import (
    channel_name,
    documented_path,
    fixed_memmap_name,
    open_memmap,
    open_memmap_reader,
    parse_memmap_name,
    write_memmap,
)
from usvflow.audio.wav import write_wav
from usvflow.io.atomic import InputError

FS = 250_000
TS = "250430145009"


def _inputs(tmp_path, n=10_007, nch=(2, 2), rate=FS):
    rng = np.random.default_rng(0)
    paths, data = [], []
    for dev, k in zip("ms", nch):
        for ch in range(1, k + 1):
            p = tmp_path / "in" / f"{dev}_{TS}_ch{ch:02d}_cropped_to_video_hpss_filtered.wav"
            p.parent.mkdir(exist_ok=True)
            x = rng.integers(-32768, 32768, n, dtype=np.int16)
            write_wav(p, rate, x)
            paths.append(p)
            data.append(x)
    return paths, data


@pytest.mark.parametrize("order", ["rows", "channels"])
def test_round_trip(tmp_path, order):
    paths, data = _inputs(tmp_path)
    out = write_memmap(paths, tmp_path / "out", TS, block=999, order=order)
    n, nch = len(data[0]), len(data)
    assert out.name == f"{TS}_concatenated_audio_hpss_filtered_{FS}_{n}_{nch}_int16.mmap"
    assert out.stat().st_size == n * nch * 2
    assert parse_memmap_name(out) == {
        "sample_rate": FS,
        "n_samples": n,
        "n_channels": nch,
        "dtype": "int16",
    }
    mm = open_memmap(out, require_sidecar=True)
    assert mm.shape == (n, nch) and mm.dtype == np.dtype("<i2")
    for j, x in enumerate(data):
        np.testing.assert_array_equal(mm[:, j], x)  # [i, j] = sample i of input j
    raw = np.fromfile(out, dtype="<i2").reshape(n, nch)  # raw C-order bytes, no header
    np.testing.assert_array_equal(raw, np.stack(data, axis=1))
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["shape"] == [n, nch] and side["dtype"] == "int16" and side["byte_order"] == "little"
    assert side["sample_rate"] == FS
    assert side["channels"] == ["m_ch01", "m_ch02", "s_ch01", "s_ch02"]
    assert side["source_files"] == [p.name for p in paths]
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(
        [out.name, out.with_suffix(".json").name]
    )


def test_reader_matches_the_memmap(tmp_path):
    """open_memmap_reader reads the same rows and columns as np.memmap, with numpy's slice clipping."""
    paths, _ = _inputs(tmp_path, n=5000, nch=(3, 2))
    out = write_memmap(paths, tmp_path / "out", TS)
    mm = open_memmap(out)
    with open_memmap_reader(out, require_sidecar=True) as r:
        assert r.shape == mm.shape and r.dtype == mm.dtype and len(r) == len(mm)
        for key in [slice(0, 10), slice(4990, 6000), slice(-7, None), slice(100, 50), slice(None)]:
            np.testing.assert_array_equal(r[key], mm[key])
        for cols in (0, 4, [1, 3], slice(1, None)):
            np.testing.assert_array_equal(r[17:1234, cols], mm[17:1234, cols])
        with pytest.raises(IndexError, match="step"):
            r[::2]
        with pytest.raises(IndexError, match="outside"):
            r.read(4990, 5001)
    out.with_suffix(".json").unlink()
    with pytest.raises(InputError, match="sidecar not found"):
        open_memmap_reader(out, require_sidecar=True)


def test_fixed_names_with_the_documented_names_linked(tmp_path):
    """fixed=True (the workflow): data and sidecar under fixed names, the documented names are links
    to the same files, readers accept either name, and a rewrite with another length leaves one
    documented name."""
    paths, data = _inputs(tmp_path, n=3000, nch=(2, 1))
    out_dir = tmp_path / "out"
    doc = write_memmap(paths, out_dir, TS, fixed=True)
    fixed = out_dir / fixed_memmap_name(TS, "hpss_filtered")
    assert fixed.name == f"{TS}_concatenated_audio_hpss_filtered.dat"
    assert doc.name == f"{TS}_concatenated_audio_hpss_filtered_{FS}_3000_3_int16.mmap"
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(
        [fixed.name, fixed.with_suffix(".json").name, doc.name, doc.with_suffix(".json").name]
    )
    assert doc.samefile(fixed) and doc.with_suffix(".json").samefile(fixed.with_suffix(".json"))
    assert [p.name for p in out_dir.glob("*.mmap")] == [doc.name]
    assert documented_path(fixed) == doc and documented_path(doc) == doc
    assert parse_memmap_name(fixed) == parse_memmap_name(doc)
    for path in (fixed, doc):
        mm = open_memmap(path, require_sidecar=True)
        np.testing.assert_array_equal(mm, np.stack(data, axis=1))
        with open_memmap_reader(path, require_sidecar=True) as r:
            np.testing.assert_array_equal(r[10:20], mm[10:20])
    side = json.loads(fixed.with_suffix(".json").read_text())
    assert side["file"] == doc.name and side["fixed_name"] == fixed.name
    # a rerun on other inputs (another crop): the earlier documented names go
    (tmp_path / "b").mkdir()
    shorter, _ = _inputs(tmp_path / "b", n=2000, nch=(2, 1))
    doc2 = write_memmap(shorter, out_dir, TS, fixed=True)
    assert doc2.name.endswith("_2000_3_int16.mmap")
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(
        [fixed.name, fixed.with_suffix(".json").name, doc2.name, doc2.with_suffix(".json").name]
    )
    assert open_memmap(fixed).shape == (2000, 3) and doc2.samefile(fixed)
    fixed.with_suffix(".json").unlink()
    with pytest.raises(InputError, match="sidecar not found"):
        open_memmap(fixed)


def test_orders_write_identical_bytes(tmp_path):
    paths, _ = _inputs(tmp_path, n=3000, nch=(3, 1))
    a = write_memmap(paths, tmp_path / "a", TS, block=128, order="rows")
    b = write_memmap(paths, tmp_path / "b", TS, block=1000, order="channels")
    assert a.read_bytes() == b.read_bytes()


def test_channel_names():
    assert channel_name("m_250430145009_ch01_cropped_to_video_hpss_filtered.wav") == "m_ch01"
    assert channel_name("/x/s_250430145009_ch12.wav") == "s_ch12"
    assert channel_name("other.wav") == "other"


def test_wrong_length_rate_channels(tmp_path):
    paths, _ = _inputs(tmp_path, n=500)
    out_dir = tmp_path / "out"
    short = tmp_path / "in" / f"s_{TS}_ch03_x.wav"
    write_wav(short, FS, np.zeros(499, np.int16))
    with pytest.raises(InputError, match=r"s_250430145009_ch03_x\.wav.*499 samples"):
        write_memmap(paths + [short], out_dir, TS)
    rate = tmp_path / "in" / f"s_{TS}_ch04_x.wav"
    write_wav(rate, 200_000, np.zeros(500, np.int16))
    with pytest.raises(InputError, match=r"ch04_x\.wav.*200000 Hz"):
        write_memmap(paths + [rate], out_dir, TS)
    stereo = tmp_path / "in" / f"s_{TS}_ch05_x.wav"
    write_wav(stereo, FS, np.zeros((500, 2), np.int16))
    with pytest.raises(InputError, match=r"ch05_x\.wav.*mono"):
        write_memmap(paths + [stereo], out_dir, TS)
    assert not out_dir.exists() or not any(out_dir.iterdir())  # nothing partial left


def test_open_checks(tmp_path):
    paths, _ = _inputs(tmp_path, n=100, nch=(1, 1))
    out = write_memmap(paths, tmp_path / "out", TS)
    side = out.with_suffix(".json")
    meta = json.loads(side.read_text())
    meta["sample_rate"] = 1
    side.write_text(json.dumps(meta))
    with pytest.raises(InputError, match="sample_rate"):
        open_memmap(out)
    side.unlink()
    assert open_memmap(out).shape == (100, 2)  # sidecar optional unless required
    with pytest.raises(InputError, match="sidecar"):
        open_memmap(out, require_sidecar=True)
    with open(out, "ab") as fh:
        fh.write(b"\0\0")
    with pytest.raises(InputError, match="size"):
        open_memmap(out)
    bad = tmp_path / "x_int16.mmap"
    bad.write_bytes(b"")
    with pytest.raises(InputError, match="name"):
        open_memmap(bad)
