"""CoolTerm capture of the Arduino IPIs: simulated log round trip and malformed input."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from usvflow.io.atomic import InputError
from usvflow.io.coolterm import find_coolterm_log, read_ipis
from usvflow.simulate.syncfiles import write_coolterm_log
from usvflow.simulate.timeline import make_timeline


def test_simulated_log_round_trip(tmp_path):
    tl = make_timeline(np.random.default_rng(3), 1.0, ["21372315", "21241563"], ephys_rate=None)
    sync = tmp_path / "sync"
    name = write_coolterm_log(sync, tl, dt.datetime(2025, 4, 30, 14, 50, 12))
    assert name == "CoolTerm Capture (sync_pulses.stc) 2025-04-30 14-50-12.txt"
    (sync / "other.txt").write_text("not the log\n")
    log = find_coolterm_log(sync)
    assert log.name == name
    ipis = read_ipis(log)
    assert ipis.dtype == np.int64
    np.testing.assert_array_equal(ipis, tl.ipi_ms)
    raw = log.read_bytes()
    assert raw.count(b"\r\n") == 3 + len(tl.ipi_ms)
    assert not list(sync.glob(".tmp-*"))


def test_blank_lines_and_line_endings(tmp_path):
    p = tmp_path / "CoolTerm Capture x.txt"
    p.write_bytes(b"h1\r\nh2\nh3 123\r\n\r\n812\r\n  1499 \n\n250\r\n\r\n")
    np.testing.assert_array_equal(read_ipis(p), [812, 1499, 250])


def test_header_is_skipped_even_if_numeric(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("1\n2\n3\n700\n")
    np.testing.assert_array_equal(read_ipis(p), [700])


def test_garbage_names_file_and_line(tmp_path):
    p = tmp_path / "CoolTerm bad.txt"
    p.write_text("a\nb\nc\n812\n9x3\n")
    with pytest.raises(InputError, match=r"CoolTerm bad\.txt.*line 5"):
        read_ipis(p)


def test_empty_log_raises(tmp_path):
    p = tmp_path / "CoolTerm empty.txt"
    p.write_text("a\nb\nc\n\n")
    with pytest.raises(InputError, match="CoolTerm empty.txt"):
        read_ipis(p)


def test_no_log_in_sync_dir(tmp_path):
    (tmp_path / "something.txt").write_text("x")
    with pytest.raises(InputError, match="CoolTerm"):
        find_coolterm_log(tmp_path)
    with pytest.raises(InputError):
        find_coolterm_log(tmp_path / "missing")
