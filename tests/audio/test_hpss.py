"""Chunked HPSS (usvflow.audio.hpss) == the original's whole-file librosa pipeline within 1 LSB."""

import numpy as np
import pytest

from usvflow.audio.hpss import HPSSParams, hpss_array, hpss_chunked, hpss_file
from usvflow.audio.wav import WavWriter, read_wav, write_wav
from usvflow.io.atomic import InputError

FS = 250_000


def _signal(n, seed=0, amp=3000.0):
    """Noise + a USV-like chirp (40 -> 80 kHz) + clicks, int16."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / FS
    x = amp * rng.standard_normal(n)
    x += (
        4 * amp * np.sin(2 * np.pi * (40e3 * t + 0.5 * 40e3 / max(t[-1], 1e-3) * t**2))
        if n > 1
        else 0
    )
    clicks = rng.integers(0, n, size=max(1, n // 5000))
    x[clicks] += 10 * amp
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def _diff(a, b):
    assert a.shape == b.shape and a.dtype == b.dtype == np.int16
    return np.abs(a.astype(np.int32) - b.astype(np.int32))


@pytest.mark.filterwarnings("ignore:n_fft=.*is too large")
@pytest.mark.parametrize("n", [1, 127, 300, 511, 1280, 5_001, 33_333, 70_000])
def test_chunked_equals_librosa_whole_file(n):
    x = _signal(n, seed=n)
    ref = hpss_array(x)
    assert len(ref) == n
    whole = hpss_chunked(x, block_frames=1 << 20)  # one block
    d = _diff(whole, ref)
    assert d.max() <= 1
    assert d.mean() < 1e-3  # 1-LSB differences are rare float32 rounding at the truncation
    for bf in (1, 3, 16, 250):  # many block borders, also inside the first/last frames' halo
        chunk = hpss_chunked(x, block_frames=bf)
        np.testing.assert_array_equal(chunk, whole)  # bit-identical whatever the block size


def test_edges_and_loud_input_clip():
    """First/last frames (partial window sums) and a signal that clips after separation."""
    n = 25_000 + 77  # not a multiple of the hop
    x = _signal(n, seed=3, amp=9000.0)
    ref = hpss_array(x)
    ours = hpss_chunked(x, block_frames=5)
    assert _diff(ours[:600], ref[:600]).max() <= 1
    assert _diff(ours[-600:], ref[-600:]).max() <= 1
    assert _diff(ours, ref).max() <= 1
    assert (np.abs(ref.astype(int)) >= 32767).any()  # clipping really exercised


def test_silence_and_constant():
    z = np.zeros(4000, np.int16)
    np.testing.assert_array_equal(hpss_chunked(z, block_frames=4), hpss_array(z))
    c = np.full(4000, 1234, np.int16)
    assert _diff(hpss_chunked(c, block_frames=4), hpss_array(c)).max() <= 1


@pytest.mark.parametrize(
    "params",
    [
        HPSSParams((256, 64), (3, 31), 2.0, (1, 1)),  # odd kernels, split_zeros
        HPSSParams((512, 100), (4, 17), 4.0, (2, 3)),  # hop not dividing n_fft, even kernel
        HPSSParams((512, 128), (7, 60), 1.0, (4, 1)),  # generic harmonic median
    ],
)
def test_other_parameters(params):
    x = _signal(20_000, seed=11)
    ref = hpss_array(x, params)
    ours = hpss_chunked(x, params, block_frames=7)
    assert _diff(ours, ref).max() <= 1


def test_file_roundtrip(tmp_path):
    x = _signal(40_000, seed=5)
    src, dst = tmp_path / "m_ts_ch01_cropped_to_video.wav", tmp_path / "hpss" / "m_ts_ch01_hpss.wav"
    write_wav(src, FS, x)
    info = hpss_file(src, dst, block_frames=33)
    assert info == {"n_samples": len(x), "sample_rate": FS, "n_frames": 1 + len(x) // 128}
    sr, y = read_wav(dst)
    assert sr == FS and len(y) == len(x)
    np.testing.assert_array_equal(y, hpss_chunked(x))
    assert _diff(y, hpss_array(x)).max() <= 1
    assert [p.name for p in dst.parent.iterdir()] == [dst.name]  # no temporary left


def test_bad_input_names_file_and_leaves_nothing(tmp_path):
    stereo = tmp_path / "stereo.wav"
    write_wav(stereo, FS, np.zeros((100, 2), np.int16))
    out = tmp_path / "out" / "x_hpss.wav"
    with pytest.raises(InputError, match="stereo.wav.*1 channel"):
        hpss_file(stereo, out)
    trunc = tmp_path / "trunc.wav"
    write_wav(trunc, FS, np.arange(1000, dtype=np.int16))
    trunc.write_bytes(trunc.read_bytes()[:-500])
    with pytest.raises(InputError, match="trunc.wav.*truncated"):
        hpss_file(trunc, out)
    notwav = tmp_path / "notwav.wav"
    notwav.write_bytes(b"hello world, not a wav")
    with pytest.raises(InputError, match="notwav.wav.*RIFF"):
        hpss_file(notwav, out)
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())  # no partial or temporary file


def test_writer_failure_leaves_no_file(tmp_path):
    out = tmp_path / "x.wav"
    with pytest.raises(RuntimeError):
        with WavWriter(out, FS) as w:
            w.write(np.zeros(10, np.int16))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_params_are_the_config_section():
    from usvflow.io.config import schema_defaults

    section = schema_defaults("audio.hpss")
    p = HPSSParams.from_mapping(section)
    assert p == HPSSParams() and (p.n_fft, p.hop) == tuple(section["stft_window_length_hop_size"])
    with pytest.raises(ValueError, match="unknown HPSS setting.*n_fft"):
        HPSSParams.from_mapping({"n_fft": 512})


def test_params_validation():
    with pytest.raises(ValueError):
        HPSSParams(margin=(0.5, 1))
    with pytest.raises(ValueError):
        HPSSParams(stft_window_length_hop_size=(511, 128))
