"""Fixed-length USV spectrograms: geometry against known signals and simulated calls, files, errors."""

import numpy as np
import pytest

from usvflow.io.atomic import InputError
from usvflow.simulate.calls import draw_call, waveform
from usvflow.usv.spectrogram import (
    SpecParams,
    call_spectrogram,
    load_spectrograms,
    save_png,
    save_spectrograms,
    spectrograms_from_memmap,
)

FS = 250_000


def _tone(freq_hz, seconds=0.2, amp=1000.0, seed=0, onset=0.05, dur=0.04):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * FS)) / FS
    x = rng.standard_normal(t.size) * 10
    on = (t >= onset) & (t < onset + dur)
    x[on] += amp * np.sin(2 * np.pi * freq_hz * t[on])
    return x


def test_tone_lands_in_its_band_and_is_masked_after_stop():
    p = SpecParams()
    x = _tone(60e3)
    s = call_spectrogram(x, FS, 0.05, 0.09, p)
    assert s.shape == (64, 64) and s.dtype == np.float32
    assert 0.0 <= s.min() and s.max() == pytest.approx(1.0)
    row = int(np.argmax(s[:, :20].mean(axis=1)))
    f = p.frequencies_hz()
    assert abs(f[row] - 60e3) <= (p.f_hi_hz - p.f_lo_hz) / p.n_freq
    late = p.times_s() > 0.04 + p.stop_margin_s
    assert np.all(s[:, late] == 0.0)
    unmasked = call_spectrogram(x, FS, 0.05, 0.09, SpecParams(mask_after_stop=False))
    assert np.array_equal(unmasked[:, ~late], s[:, ~late])
    assert unmasked[:, late].max() > 0  # noise remains visible without the mask


def test_gain_invariant_and_deterministic():
    x = _tone(45e3)
    a = call_spectrogram(x, FS, 0.05, 0.09)
    b = call_spectrogram(x * 20.0, FS, 0.05, 0.09)
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert np.array_equal(a, call_spectrogram(x, FS, 0.05, 0.09))


@pytest.mark.parametrize("call_type", ["flat", "up_ramp", "down_ramp", "trill"])
def test_ridge_follows_the_simulated_contour(call_type):
    """The loudest band of each frame inside the call is the one holding the true frequency (±1 band)."""
    rng = np.random.default_rng(5)
    p = SpecParams()
    for _ in range(3):
        call = draw_call(rng, call_type)
        call.harmonic = 0.0
        t = np.arange(int(0.2 * FS)) / FS
        x = rng.standard_normal(t.size) * 20 + 3000 * waveform(call, t - 0.03)
        s = call_spectrogram(x, FS, 0.03, 0.03 + call.duration_s, p)
        tt = p.times_s()
        inside = (tt > 0.004) & (tt < call.duration_s - 0.004)
        band = (p.f_hi_hz - p.f_lo_hz) / p.n_freq
        f_true = call.frequency(tt[inside])
        f_est = p.frequencies_hz()[np.argmax(s[:, inside], axis=0)]
        # a trill sweeps up to ~6 kHz within one 2 ms frame: allow two bands there
        tol = band * (2.5 if call_type == "trill" else 1.0)
        assert np.mean(np.abs(f_est - f_true) <= tol) >= 0.9


def test_memmap_equals_signal_and_handles_edges(tmp_path):
    rng = np.random.default_rng(1)
    n, nch = int(0.5 * FS), 3
    path = tmp_path / f"x_concatenated_audio_hpss_filtered_{FS}_{n}_{nch}_int16.mmap"
    mm = np.memmap(path, dtype="<i2", mode="w+", shape=(n, nch))
    mm[:] = rng.integers(-200, 200, size=(n, nch))
    t = np.arange(n) / FS
    mm[:, 2] += (2000 * np.sin(2 * np.pi * 70e3 * t) * ((t > 0.1) & (t < 0.13))).astype(np.int16)
    mm.flush()
    starts, stops, ch = (
        np.array([0.1, 0.47, -0.02]),
        np.array([0.13, 0.49, 0.01]),
        np.array([2, 0, 1]),
    )
    s = spectrograms_from_memmap(mm, FS, starts, stops, ch)
    assert s.shape == (3, 64, 64)
    for i in range(3):
        ref = call_spectrogram(np.asarray(mm[:, ch[i]], float), FS, starts[i], stops[i])
        np.testing.assert_array_equal(s[i], ref)
    with pytest.raises(InputError, match="channel 3 .* outside the 3 channels"):
        spectrograms_from_memmap(mm, FS, [0.1], [0.12], [3], source=path)


def test_files_round_trip_and_errors(tmp_path):
    p = SpecParams(n_freq=16, n_time=8)
    specs = np.random.default_rng(0).random((2, 16, 8)).astype(np.float32)
    out = save_spectrograms(tmp_path / "s.npz", specs, ["0000", "0001"], p, FS, [3, 4])
    d = load_spectrograms(out)
    assert d["usv_id"] == ["0000", "0001"] and d["params"] == p
    np.testing.assert_array_equal(d["spectrograms"], specs)
    assert list(d["channel"]) == [3, 4]
    assert save_png(specs[0], tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    (tmp_path / "bad.npz").write_text("nope")
    with pytest.raises(InputError, match="bad.npz"):
        load_spectrograms(tmp_path / "bad.npz")
    with pytest.raises(InputError, match="not found"):
        load_spectrograms(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="Nyquist"):
        call_spectrogram(np.zeros(1000), 192_000, 0.0, 0.001)
    with pytest.raises(ValueError, match="unknown spectrogram parameter"):
        SpecParams.from_dict({"n_bins": 3})


def test_spectrograms_are_written_as_they_come(tmp_path):
    """An iterable of spectrograms gives the same bytes as the array (one spectrogram in memory at a
    time); the same input gives the same bytes; too few or ill-shaped spectrograms are errors and
    leave no file."""
    p = SpecParams(n_freq=16, n_time=8)
    specs = np.random.default_rng(1).random((3, 16, 8)).astype(np.float32)
    ids = ["0000", "0001", "0002"]
    a = save_spectrograms(tmp_path / "a.npz", specs, ids, p, FS, [0, 1, 2]).read_bytes()
    b = save_spectrograms(tmp_path / "b.npz", iter(specs), ids, p, FS, [0, 1, 2]).read_bytes()
    assert a == b
    assert save_spectrograms(tmp_path / "c.npz", specs, ids, p, FS, [0, 1, 2]).read_bytes() == a
    np.testing.assert_array_equal(load_spectrograms(tmp_path / "b.npz")["spectrograms"], specs)
    with pytest.raises(ValueError, match="2 spectrograms for 3 ids"):
        save_spectrograms(tmp_path / "d.npz", iter(specs[:2]), ids, p, FS)
    with pytest.raises(ValueError, match=r"#0 has shape \(8, 16\)"):
        save_spectrograms(tmp_path / "e.npz", (s.T for s in specs), ids, p, FS)
    assert not (tmp_path / "d.npz").exists() and not (tmp_path / "e.npz").exists()
