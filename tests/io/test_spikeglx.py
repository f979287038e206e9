"""SpikeGLX .meta/.bin reading on real meta files (probeinterface fixtures, MIT) and synthesised .bin files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from usvflow.io.atomic import InputError
from usvflow.io.spikeglx import (
    calibrated_rate,
    n_samples,
    open_bin,
    parse_channel_subset,
    parse_meta,
    read_meta,
    write_meta,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "spikeglx"
NP1_FULL = DATA / "Noise_g0_t0.imec0.ap.meta"
NP1_SUBSET = DATA / "NP1_saved_only_subset_of_channels.meta"
NP2 = DATA / "p2_g0_t0.imec0.ap.meta"


def test_read_meta_keeps_tables_and_strips_crlf():
    m = read_meta(NP1_FULL)
    assert list(m)[0] == "acqApLfSy"
    assert m["imSampRate"] == "30000"
    assert m["userNotes"] == ""
    assert m["~imroTbl"].startswith("(0,384)(0 0 0 500 125 1)")
    assert m["~snsChanMap"].endswith("(SY0;768:768)")
    assert not any("\r" in v for v in m.values())


def test_np1_full():
    m = parse_meta(NP1_FULL)
    assert m.type_this == "imec"
    assert m.n_saved_chans == 385
    assert (m.n_ap, m.n_lf, m.n_sy) == (384, 0, 1)
    assert (m.acq_ap, m.acq_lf, m.acq_sy) == (384, 384, 1)
    assert m.n_acquired == 769 and m.total_channels_original == 385
    assert m.saved_channels == tuple(range(384)) + (768,)
    assert m.sync_channel_index == 384
    assert m.sample_rate == 30000.0
    assert m.probe_type == 0 and m.probe_pn == "PRB_1_4_0480_1" and m.probe_sn == "18194809281"
    assert m.headstage_sn == "1116"
    assert m.file_size_bytes == 121625350
    assert m.file_time_secs == pytest.approx(5.2651666666666666)
    assert m.first_sample == 177385
    # fileTimeSecs = fileSizeBytes / (2 * nSavedChans * rate)
    assert m.file_size_bytes / (2 * 385 * m.sample_rate) == pytest.approx(m.file_time_secs)


def test_np1_saved_subset():
    m = parse_meta(NP1_SUBSET)
    assert m.n_saved_chans == 152
    assert (m.n_ap, m.n_lf, m.n_sy) == (151, 0, 1)
    assert m.saved_channels == tuple(range(151)) + (768,)
    assert m.sync_channel_index == 151
    assert m.sample_rate == 30000.0
    assert m.probe_type == 0 and m.probe_pn == "PRB_1_4_0480_1_C" and m.probe_sn == "19398105682"
    assert m.headstage_sn == "411"
    assert m.file_size_bytes == 98746460736 and m.first_sample == 53573280
    assert m.file_size_bytes % (2 * 152) == 0


def test_np2():
    m = parse_meta(NP2)
    assert m.n_saved_chans == 385
    assert (m.n_ap, m.n_lf, m.n_sy) == (384, 0, 1)
    assert (m.acq_ap, m.acq_lf, m.acq_sy) == (384, 0, 1)  # NP2.0: no LF band
    assert m.saved_channels == tuple(range(385))  # '0:384': SY is acquisition channel 384
    assert m.sync_channel_index == 384
    assert m.sample_rate == 30000.0
    assert m.probe_type == 21 and m.probe_pn == "PRB2_1_2_0640_0" and m.probe_sn == "19011116954"
    assert m.headstage_sn == "1540"
    assert m.file_size_bytes == 45205648180
    assert m.file_time_secs == pytest.approx(1956.9544666666666)
    assert m.first_sample == 1416311
    assert m.raw["imMaxInt"] == "8192" and m.raw["imAiRangeMax"] == "0.5"


def test_channel_subset_parsing():
    assert parse_channel_subset("all", 4) == (0, 1, 2, 3)
    assert parse_channel_subset("0:2,5,7:8", 0) == (0, 1, 2, 5, 7, 8)
    with pytest.raises(ValueError):
        parse_channel_subset("3:1", 10)


def test_bin_of_the_right_size(tmp_path):
    m = parse_meta(NP1_FULL)
    b = tmp_path / "Noise_g0_t0.imec0.ap.bin"
    with open(b, "wb") as fh:  # sparse: no disk space used
        fh.truncate(m.file_size_bytes)
    assert n_samples(b, m) == 121625350 // 770 == 157955
    assert n_samples(b, NP1_FULL) == 157955  # meta given as a path
    assert n_samples(b, read_meta(NP1_FULL)) == 157955  # or as a read_meta dict
    mm = open_bin(b, m)
    assert mm.shape == (157955, 385) and mm.dtype == np.int16


def test_truncated_bin_raises(tmp_path):
    m = parse_meta(NP1_FULL)
    b = tmp_path / "truncated.imec0.ap.bin"
    with open(b, "wb") as fh:
        fh.truncate(m.file_size_bytes - 1)
    with pytest.raises(InputError, match="truncated.imec0.ap.bin") as exc:
        n_samples(b, m)
    assert "truncated" in exc.value.problem


def test_bin_disagreeing_with_file_size_raises(tmp_path):
    m = parse_meta(NP1_FULL)
    b = tmp_path / "short.imec0.ap.bin"
    with open(b, "wb") as fh:
        fh.truncate(m.file_size_bytes - 770)  # whole samples, but fewer than the meta says
    with pytest.raises(InputError, match="short.imec0.ap.bin") as exc:
        n_samples(b, m)
    assert "fileSizeBytes" in exc.value.problem


def test_missing_bin_raises(tmp_path):
    with pytest.raises(InputError, match="nothere.bin"):
        n_samples(tmp_path / "nothere.bin", parse_meta(NP1_FULL))


def test_small_synthesised_bin_with_subset_meta(tmp_path):
    raw = read_meta(NP1_SUBSET)
    n = 1000
    raw["fileSizeBytes"] = str(n * 152 * 2)
    meta_path = tmp_path / "x.imec1.ap.meta"
    write_meta(meta_path, raw)
    data = np.arange(n * 152, dtype=np.int16).reshape(n, 152)
    data.tofile(tmp_path / "x.imec1.ap.bin")
    m = parse_meta(meta_path)
    assert n_samples(tmp_path / "x.imec1.ap.bin", m) == n
    mm = open_bin(tmp_path / "x.imec1.ap.bin", m)
    np.testing.assert_array_equal(mm[:, m.sync_channel_index], data[:, -1])


def test_calibrated_rate():
    m = parse_meta(NP1_FULL)
    assert calibrated_rate(m, {"1116": 30000.261002785515}) == 30000.261002785515
    assert calibrated_rate(m, {1116: 30000.1}) == 30000.1  # integer keys from a YAML table
    assert calibrated_rate(m, {"23280196": 30000.3}) == 30000.0  # not in the table: imSampRate
    assert calibrated_rate(m, {}) == 30000.0


def test_write_meta_round_trip_preserves_order(tmp_path):
    src = read_meta(NP2)
    src["fileSizeBytes"] = "123"
    out = tmp_path / "copy.meta"
    write_meta(out, src, newline="\r\n")
    back = read_meta(out)
    assert back == src and list(back) == list(src)
    assert out.read_bytes().count(b"\r\n") == len(src)
    assert not list(tmp_path.glob(".tmp-*"))


def test_bad_meta_lines_name_file_and_line(tmp_path):
    p = tmp_path / "bad.meta"
    p.write_text("nSavedChans=3\nthis line has no equals sign\n")
    with pytest.raises(InputError, match=r"bad\.meta.*line 2"):
        read_meta(p)


def test_inconsistent_meta_raises(tmp_path):
    raw = read_meta(NP1_FULL)
    raw["nSavedChans"] = "384"
    p = tmp_path / "inconsistent.meta"
    write_meta(p, raw)
    with pytest.raises(InputError, match="inconsistent.meta"):
        parse_meta(p)
    raw = read_meta(NP1_FULL)
    del raw["imSampRate"]
    write_meta(p, raw)
    with pytest.raises(InputError, match="imSampRate"):
        parse_meta(p)


def test_missing_meta_raises(tmp_path):
    with pytest.raises(InputError, match="absent.meta"):
        parse_meta(tmp_path / "absent.meta")
