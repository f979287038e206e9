"""Simulated SpikeGLX recordings and Kilosort4/Phy output against their ground truth."""

from __future__ import annotations

import hashlib
import runpy

import numpy as np
import pandas as pd
import pytest

from usvflow.io.spikeglx import calibrated_rate, n_samples, open_bin, parse_meta, read_meta
from usvflow.simulate.ephys import NT, NT0MIN, draw_units, write_sorter_output, write_spikeglx
from usvflow.simulate.timeline import make_timeline

CAMS = ["21372315", "21241563"]
N_AP = 12


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    rng = np.random.default_rng(11)
    tl = make_timeline(rng, 1.0, CAMS)
    root = tmp_path_factory.mktemp("ephys") / "20250430_145017"
    units = draw_units(rng, N_AP, 4, rate_range=(8.0, 15.0))
    truth = write_spikeglx(root, "20250430_145017", tl, rng, n_ap=N_AP, units=units)
    return tl, units, truth


def _lsb_tracking(sync: np.ndarray, n_frames: int):
    """usv-playpen's find_lsb_changes on a 0/1 (or raw word) trace."""
    edges = np.where(sync[1:].astype(np.int64) - sync[:-1] > 0)[0]
    gaps = np.diff(edges)
    hop = int(np.argmax(gaps)) + 1
    return [int(edges[hop] + 1), int(edges[hop + n_frames] + 1)], int(gaps.max())


def test_files_and_meta_round_trip(session):
    tl, _, truth = session
    assert truth["bin"].endswith("ephys/imec0/20250430_145017.imec0.ap.bin")
    assert truth["meta"].endswith("ephys/imec0/20250430_145017.imec0.ap.meta")
    m = parse_meta(truth["meta"])
    assert m.n_saved_chans == N_AP + 1 == truth["n_saved_chans"]
    assert m.sync_channel_index == N_AP == truth["sync_channel_index"]
    assert m.saved_channels == tuple(range(N_AP)) + (768,)
    assert m.sample_rate == 30000.0
    assert m.probe_type == 0 and m.probe_pn == "PRB_1_4_0480_1"
    assert m.headstage_sn == "23280196" and m.probe_sn == "22420015064"
    assert m.first_sample == truth["first_sample"]
    assert n_samples(truth["bin"], m) == truth["n_samples"]
    assert truth["n_samples"] == int(np.floor(tl.ephys_duration_s * tl.ephys.rate))
    assert m.file_time_secs == pytest.approx(truth["n_samples"] / 30000.0)
    raw = read_meta(truth["meta"])
    assert raw["fileSHA1"] == hashlib.sha1(open(truth["bin"], "rb").read()).hexdigest().upper()
    assert raw["~snsChanMap"].endswith(f"(AP{N_AP - 1};{N_AP - 1}:{N_AP - 1})(SY0;768:768)")
    assert calibrated_rate(m, {truth["headstage_sn"]: truth["rate_true"]}) == tl.ephys.rate


def test_sync_word_matches_truth(session):
    tl, _, truth = session
    data = open_bin(truth["bin"], truth["meta"])
    word = np.asarray(data[:, -1]).view(np.uint16)
    bit = (word >> truth["sync_bit"]) & 1
    assert set(np.unique(word)) == {0, 1 << truth["sync_bit"]}  # only the triggerbox bit moves
    on = tl.triggerbox_on_s
    expected = tl.ephys.pulse_mask(len(bit), on, on + tl.pulse_high_s)
    np.testing.assert_array_equal(bit.astype(bool), expected)
    n = tl.n_frames_least
    assert _lsb_tracking(bit, n) == (
        truth["tracking_start_end"],
        truth["largest_camera_break_duration"],
    )
    # The original works on the raw word (any rising step): same answer.
    assert _lsb_tracking(np.asarray(data[:, -1]), n)[0] == truth["tracking_start_end"]
    # The window spans n frame periods on the probe clock.
    s, e = truth["tracking_start_end"]
    assert (e - s) / truth["rate_true"] == pytest.approx(n / tl.fps, abs=1 / 30000)
    assert truth["largest_camera_break_duration"] / truth["rate_true"] > 2.29


def test_spikes_at_truth_times(session):
    _, units, truth = session
    data = np.asarray(open_bin(truth["bin"], truth["meta"])[:, :N_AP], dtype=np.float64)
    assert 8 < data[:, units[0].peak_channel].std() < 40
    for u, ut in zip(units, truth["units"]):
        assert ut["id"] == u.id and ut["peak_channel"] == u.peak_channel
        st = np.asarray(ut["spike_samples"])
        assert len(st) > 20
        assert np.all(np.diff(st) >= 60)  # 2 ms refractory period
        snips = np.stack([data[s - NT0MIN : s - NT0MIN + NT, u.peak_channel] for s in st])
        mean = snips.mean(axis=0)
        tpl = u.template[:, u.peak_channel]
        assert -200 <= tpl[NT0MIN] <= -60
        assert np.corrcoef(mean, tpl)[0, 1] > 0.95
        assert abs(mean[NT0MIN] - tpl[NT0MIN]) < 6 * 15 / np.sqrt(len(st)) + 10
        # Off by a few samples the trough is gone: the times are exact.
        shifted = np.stack(
            [data[s - NT0MIN + 8 : s - NT0MIN + 8 + NT, u.peak_channel] for s in st[:-1]]
        )
        assert shifted.mean(axis=0)[NT0MIN] > tpl[NT0MIN] / 2
        # Far channels carry no template.
        far = [c for c in range(N_AP) if abs(c - u.peak_channel) > 3]
        assert np.all(u.template[:, far] == 0)


def _dedup(t: np.ndarray, censor: int) -> np.ndarray:
    keep, last = [], None
    for x in t:
        if last is None or x - last > censor:
            keep.append(x)
            last = x
    return np.asarray(keep, dtype=np.int64)


def test_sorter_output_three_sessions(tmp_path):
    rng = np.random.default_rng(5)
    n_ap = 8
    units = draw_units(rng, n_ap, 5)
    sessions, truths = [], []
    for i in range(3):
        tl = make_timeline(rng, 0.3, CAMS)
        t = write_spikeglx(
            tmp_path / f"s{i}", f"2025043{i}_120000", tl, rng, n_ap=n_ap, units=units, chunk_s=0.5
        )
        truths.append(t)
        sessions.append((t["n_samples"], t["units"]))
    ks = tmp_path / "kilosort4"
    st = write_sorter_output(ks, sessions, n_ap + 1, units, 30000.261002785515, rng=rng)

    offs = [0, truths[0]["n_samples"], truths[0]["n_samples"] + truths[1]["n_samples"]]
    assert st["session_offsets"] == offs
    assert st["total_samples"] == sum(t["n_samples"] for t in truths)

    times = np.load(ks / "spike_times.npy")
    clus = np.load(ks / "spike_clusters.npy")
    assert times.ndim == 1 and times.dtype == np.int64 and clus.dtype == np.int32
    assert len(times) == len(clus) == st["n_spikes_total"]
    assert np.all(np.diff(times) >= 0)
    tpl = np.load(ks / "templates.npy")
    assert tpl.dtype == np.float32 and tpl.shape == (len(units) + 1, NT, n_ap)
    np.testing.assert_array_equal(np.load(ks / "channel_map.npy"), np.arange(n_ap, dtype=np.int32))
    assert np.load(ks / "channel_positions.npy").shape == (n_ap, 2)
    assert len(np.load(ks / "amplitudes.npy")) == len(times)

    params = runpy.run_path(str(ks / "params.py"))
    assert (
        params["n_channels_dat"] == n_ap + 1
        and params["dtype"] == "int16"
        and params["offset"] == 0
    )
    assert params["sample_rate"] == 30000.261002785515 and params["hp_filtered"] is False
    assert isinstance(params["dat_path"], list)

    assert (ks / "cluster_group.tsv").read_bytes() == (ks / "cluster_KSLabel.tsv").read_bytes()
    assert (ks / "cluster_KSLabel.tsv").read_text().splitlines()[0] == "cluster_id\tKSLabel"
    info = pd.read_csv(ks / "cluster_info.tsv", sep="\t")
    assert list(info.columns) == [
        "cluster_id",
        "Amplitude",
        "ContamPct",
        "KSLabel",
        "amp",
        "ch",
        "depth",
        "fr",
        "group",
        "n_spikes",
        "sh",
    ]
    groups = dict(zip(info.cluster_id, info.group))
    assert [c for c, g in groups.items() if g == "noise"] == st["noise_cluster_ids"]
    low = st["low_count_cluster_id"]
    assert groups[low] == "mua"
    assert info.set_index("cluster_id").loc[low, "n_spikes"] < 100
    assert set(info.KSLabel) <= {"good", "mua"}

    # Duplicates: present, 1-3 samples after a spike of the same cluster.
    assert st["duplicate_cluster_ids"] == sorted(
        c["cluster_id"] for c in st["clusters"] if c["unit_id"] is not None
    )
    for cid in st["duplicate_cluster_ids"]:
        t = times[clus == cid]
        d = np.diff(t)
        assert np.count_nonzero((d >= 1) & (d <= 3)) == len(st["duplicate_spike_samples"][cid]) >= 1

    censor = round(0.3e-3 * 30000.261002785515)
    by_unit = {c["unit_id"]: c for c in st["clusters"]}
    for i, (sess, tr) in enumerate(zip(st["sessions"], truths)):
        assert sess["offset"] == offs[i] and sess["n_samples"] == tr["n_samples"]
        for su, tu in zip(sess["units"], tr["units"]):
            assert su["unit_id"] == tu["id"] and su["peak_channel"] == tu["peak_channel"]
            assert by_unit[su["unit_id"]]["cluster_id"] == su["cluster_id"]
            t = _dedup(times[clus == su["cluster_id"]], censor)
            t = t[(t >= offs[i]) & (t < offs[i] + tr["n_samples"])] - offs[i]
            np.testing.assert_array_equal(t, su["spike_samples"])
            if su["cluster_id"] != low:
                np.testing.assert_array_equal(
                    t, tu["spike_samples"]
                )  # the sorter found every spike
                assert su["label"] == "good"
            else:
                assert set(t) <= set(tu["spike_samples"])
            np.testing.assert_array_equal(tpl[su["cluster_id"]], units[su["unit_id"]].template)
    for cid in st["noise_cluster_ids"]:
        assert np.count_nonzero(clus == cid) >= 100


def test_square_wave_bit_and_spikes_npz(tmp_path):
    rng = np.random.default_rng(2)
    tl = make_timeline(rng, 0.2, CAMS)
    units = draw_units(rng, 4, 2)
    npz = tmp_path / "truth" / "spikes.npz"
    t = write_spikeglx(
        tmp_path, "s", tl, rng, n_ap=4, units=units, square_wave_bit=0, spikes_npz=npz
    )
    word = np.asarray(open_bin(t["bin"], t["meta"])[:, -1]).view(np.uint16)
    sq = word & 1
    assert sq[0] == 1 and sq[14999] == 1 and sq[15000] == 0 and sq[30000] == 1
    on = tl.triggerbox_on_s
    np.testing.assert_array_equal(
        (word >> 6) & 1, tl.ephys.pulse_mask(len(word), on, on + tl.pulse_high_s)
    )
    with np.load(npz) as z:
        for ut in t["units"]:
            np.testing.assert_array_equal(z[f"unit_{ut['id']}"], ut["spike_samples"])
    assert t["spikes_npz"] == str(npz)


def test_sorter_rejects_mismatched_units(tmp_path):
    rng = np.random.default_rng(4)
    units = draw_units(rng, 8, 3)
    other = draw_units(np.random.default_rng(99), 8, 3)
    truth_units = [
        {"id": u.id, "peak_channel": u.peak_channel, "spike_samples": [100, 500]} for u in other
    ]
    if all(a.peak_channel == b.peak_channel for a, b in zip(units, other)):
        pytest.skip("same peak channels drawn")
    with pytest.raises(ValueError, match="peak channel"):
        write_sorter_output(tmp_path / "ks", [(10_000, truth_units)], 9, units, 30000.0, rng=rng)


def test_timeline_without_probe_is_rejected(tmp_path):
    tl = make_timeline(np.random.default_rng(0), 0.2, CAMS, ephys_rate=None)
    with pytest.raises(ValueError, match="e-phys"):
        write_spikeglx(tmp_path, "s", tl, np.random.default_rng(0), n_ap=4)
