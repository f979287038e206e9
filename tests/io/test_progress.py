"""Progress bars of the long steps (usvflow.io.progress): one line per update on stderr, switchable off."""

import numpy as np

from usvflow.audio.hpss import hpss_file
from usvflow.audio.wav import read_wav, write_wav
from usvflow.io.progress import progress


def _hpss(tmp_path, name):
    x = np.random.default_rng(0).integers(-3000, 3000, 20_000).astype(np.int16)
    src, dst = tmp_path / "in.wav", tmp_path / name
    write_wav(src, 250_000, x)
    hpss_file(src, dst, block_frames=16)  # ~10 blocks
    return src, dst


def test_long_step_writes_progress_to_stderr(tmp_path, capfd, monkeypatch):
    monkeypatch.delenv("USVFLOW_PROGRESS", raising=False)
    _, dst = _hpss(tmp_path, "on.wav")
    err = capfd.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("HPSS in.wav")]
    assert lines, err
    assert "100%" in lines[-1] and "20.0k/20.0k" in lines[-1]
    assert "\r" not in err  # not a terminal: plain lines (a rule's log), not redraws
    assert len(lines) <= 3  # the 30 s interval: start and end, not one line per block

    monkeypatch.setenv("USVFLOW_PROGRESS", "0")
    _, off = _hpss(tmp_path, "off.wav")
    assert "HPSS" not in capfd.readouterr().err
    assert np.array_equal(read_wav(off)[1], read_wav(dst)[1])  # the bar never changes a result


def test_helper_respects_switches(capsys, monkeypatch):
    monkeypatch.delenv("USVFLOW_PROGRESS", raising=False)
    assert list(progress(range(3), desc="count")) == [0, 1, 2]
    assert "count: 100%" in capsys.readouterr().err
    list(progress(range(3), desc="quiet", enabled=False))
    monkeypatch.setenv("USVFLOW_PROGRESS", "off")
    list(progress(range(3), desc="env-off"))
    assert capsys.readouterr().err == ""
