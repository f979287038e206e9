"""30 kHz linear-phase high-pass (usvflow.audio.highpass): response, streaming, SoX semantics."""

import shutil
import subprocess

import numpy as np
import pytest

from usvflow.audio.highpass import (
    design_bandpass,
    design_highpass,
    design_lowpass,
    fir_filter_array,
    freq_bounds_taps,
    freq_response,
    highpass_file,
)
from usvflow.audio.wav import read_wav, write_wav

FS = 250_000
STOP_EDGE = 30_000 - 0.025 * FS / 2  # 26 875 Hz: SoX's default transition = 5 % of Nyquist, centred
PASS_EDGE = 30_000 + 0.025 * FS / 2  # 33 125 Hz


@pytest.fixture(scope="module")
def taps():
    return design_highpass(FS)


def _db_at(h, f_hz):
    f, db = freq_response(h, FS)
    return np.interp(f_hz, f, db)


def test_highpass_response(taps):
    assert len(taps) % 2 == 1
    np.testing.assert_allclose(taps, taps[::-1], atol=1e-15)  # symmetric: linear phase, type I
    f, db = freq_response(taps, FS)
    stop = db[f <= STOP_EDGE].max()
    ripple = np.abs(db[f >= PASS_EDGE]).max()
    assert stop <= -120.8  # >= SoX's measured 120.8 dB (issue: >= 100 dB)
    assert db[f <= 27_000].max() <= -100
    assert ripple < 0.01 and ripple < 1e-4
    assert abs(_db_at(taps, 30_000) + 6.02) < 0.05  # windowed-sinc cut-off = -6 dB point
    # measured transition: last -100 dB point and first point within 0.01 dB of unity gain
    f100 = f[db <= -100].max()
    f001 = f[np.abs(db) > 0.01].max()
    assert STOP_EDGE <= f100 <= 27_200 and 32_000 <= f001 <= PASS_EDGE
    assert f001 - f100 < 5_472  # narrower than SoX's measured 26.98 -> 32.45 kHz


@pytest.mark.parametrize("n", [1, 100, 333, 4_000, 70_001])
@pytest.mark.parametrize("block", [64, 1000, 1 << 16])
def test_streamed_equals_direct_convolution(taps, n, block):
    rng = np.random.default_rng(n)
    x = np.clip(rng.standard_normal(n) * 12_000, -32768, 32767).astype(np.int16)
    y = fir_filter_array(x, taps, block=block)
    d = (len(taps) - 1) // 2
    ref = np.clip(
        np.rint(np.convolve(x.astype(np.float64), taps)[d : d + n]), -32768, 32767
    ).astype(np.int16)
    assert y.shape == x.shape and y.dtype == np.int16
    assert np.abs(y.astype(np.int32) - ref).max() <= 1


def test_delay_compensated_tone(taps):
    """A 60 kHz tone passes unchanged in phase and amplitude; a 10 kHz tone disappears."""
    n = 50_000
    t = np.arange(n) / FS
    hi = np.rint(10_000 * np.sin(2 * np.pi * 60_000 * t)).astype(np.int16)
    lo = np.rint(10_000 * np.sin(2 * np.pi * 10_000 * t)).astype(np.int16)
    core = slice(len(taps), n - len(taps))
    assert np.abs(fir_filter_array(hi, taps)[core].astype(int) - hi[core]).max() <= 1
    assert np.abs(fir_filter_array(lo, taps)[core]).max() == 0


def test_file(tmp_path, taps):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(30_001) * 3000).astype(np.int16)
    src, dst = tmp_path / "a_hpss.wav", tmp_path / "out" / "a_hpss_filtered.wav"
    write_wav(src, FS, x)
    info = highpass_file(src, dst, block=4096)  # default taps: design_highpass(file rate)
    assert info["n_taps"] == len(taps) and info["delay_samples"] == (len(taps) - 1) // 2
    sr, y = read_wav(dst)
    assert sr == FS and len(y) == len(x)
    np.testing.assert_array_equal(y, fir_filter_array(x, taps))


def test_freq_bounds_semantics():
    """``--freq-bounds low high`` -> SoX ``sinc high-low``."""

    def gains(h):
        return [_db_at(h, f) for f in (5_000, 20_000, 50_000, 100_000)]

    hp = gains(freq_bounds_taps(FS, (0, 30_000)))  # the default: high-pass 30 kHz
    assert hp[0] < -120 and hp[1] < -120 and abs(hp[2]) < 1e-3 and abs(hp[3]) < 1e-3
    lp = gains(freq_bounds_taps(FS, (30_000, 0)))  # sinc 0-30000: low-pass
    assert abs(lp[0]) < 1e-3 and abs(lp[1]) < 1e-3 and lp[2] < -120 and lp[3] < -120
    bp = gains(freq_bounds_taps(FS, (70_000, 35_000)))  # sinc 35000-70000: band-pass
    assert bp[0] < -120 and bp[1] < -120 and abs(bp[2]) < 1e-3 and bp[3] < -120
    br = gains(freq_bounds_taps(FS, (10_000, 30_000)))  # sinc 30000-10000: SoX band-reject
    assert abs(br[0]) < 1e-3 and br[1] < -120 and abs(br[2]) < 1e-3 and abs(br[3]) < 1e-3
    np.testing.assert_allclose(
        design_bandpass(FS, 35_000, 70_000), freq_bounds_taps(FS, (70_000, 35_000))
    )
    assert len(design_lowpass(FS, 30_000)) % 2 == 1
    with pytest.raises(ValueError):
        design_highpass(FS, 130_000)


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed")
def test_at_least_as_deep_and_steep_as_sox(tmp_path, taps):
    sf = pytest.importorskip("soundfile")
    imp = np.zeros(8192)
    imp[4096] = 0.5
    sf.write(tmp_path / "imp.wav", imp, FS, subtype="DOUBLE")
    subprocess.run(
        [
            "sox",
            str(tmp_path / "imp.wav"),
            "-b",
            "64",
            "-e",
            "floating-point",
            str(tmp_path / "out.wav"),
            "sinc",
            "30000-0",
        ],
        check=True,
        capture_output=True,
    )
    h_sox = sf.read(tmp_path / "out.wav")[0] / 0.5
    f, db_sox = freq_response(h_sox, FS)
    _, db = freq_response(taps, FS)
    assert db[f <= STOP_EDGE].max() <= db_sox[f <= STOP_EDGE].max()  # deeper
    assert np.abs(db[f >= PASS_EDGE]).max() <= np.abs(db_sox[f >= PASS_EDGE]).max()  # flatter
    width = f[np.abs(db) > 0.01].max() - f[db <= -100].max()
    width_sox = f[np.abs(db_sox) > 0.01].max() - f[db_sox <= -100].max()
    assert width <= width_sox  # steeper
