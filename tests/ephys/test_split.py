"""Sorted clusters split back into sessions: exact against the simulator's truth."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from usvflow.ephys.concat import changepoints
from usvflow.ephys.split import dedup_keep_first, load_labels, peak_channels, split_session
from usvflow.io.atomic import InputError

from .test_concat import _with_ev

CENSOR = round(0.3e-3 * 30000.261002785515)


def _naive_dedup(t, censor):
    keep, last = [], None
    for x in t:
        ok = last is None or x - last > censor
        keep.append(ok)
        last = x if ok else last
    return np.array(keep, dtype=bool)


def test_dedup_matches_the_iterative_rule():
    rng = np.random.default_rng(0)
    for _ in range(200):
        t = np.sort(rng.integers(0, 400, size=rng.integers(0, 60)))
        np.testing.assert_array_equal(dedup_keep_first(t, 9), _naive_dedup(t, 9))
    np.testing.assert_array_equal(
        dedup_keep_first(np.array([0, 5, 10, 14, 30]), 9), [1, 0, 1, 0, 1]
    )


def _frames_truth(s, n_frames):
    """Frame onsets (probe samples) of the simulated session: the truth of the frame index."""
    tl = s["timeline"]
    on = tl.triggerbox_on_s[tl.first_frame_pulse : tl.first_frame_pulse + n_frames + 1]
    return tl.ephys.first_sample_at_or_after(on)


def _split_all(group, tmp_path, min_spike_num=5, with_onsets=True):
    cp = changepoints(_with_ev(group), {"23280196": group["sessions"][0]["truth"]["rate_true"]})
    out = []
    for s in group["sessions"]:
        e = cp[f"{s['session_id']}.imec0"]
        n = s["timeline"].n_frames_least
        onsets = _frames_truth(s, n) + e["session_start_end"][0] if with_onsets else None
        man = split_session(group["ks"], tmp_path / s["session_id"] / "cluster_data", "imec0",
                            e["tracking_start_end"], e["sample_rate"], s["timeline"].fps, n,
                            min_spike_num=min_spike_num, censor_samples=CENSOR, frame_onsets=onsets)  # fmt: skip
        out.append((s, e, man))
    return out


def test_split_equals_truth_for_every_session(group, tmp_path):
    sorter = group["sorter"]
    noise = set(sorter["noise_cluster_ids"])
    for i, (s, _e, man) in enumerate(_split_all(group, tmp_path)):
        t0, t1 = s["truth"]["tracking_start_end"]
        rate = s["truth"]["rate_true"]
        n = s["timeline"].n_frames_least
        on = _frames_truth(s, n)
        written = {f["cluster_id"]: f for f in man["files"]}
        assert not noise & set(written) and set(man["noise_cluster_ids"]) == noise
        expected_ids = set()
        for u in sorter["sessions"][i]["units"]:
            x = np.asarray(u["spike_samples"])
            x = x[(x >= t0) & (x < t1)]
            if len(x) <= 5:
                assert u["cluster_id"] not in written
                continue
            expected_ids.add(u["cluster_id"])
            f = (
                tmp_path
                / s["session_id"]
                / "cluster_data"
                / f"imec0_cl{u['cluster_id']:04d}_ch{u['peak_channel']:03d}_{u['label']}.npy"
            )
            arr = np.load(f)
            assert arr.dtype == np.float64 and arr.shape == (2, len(x))
            np.testing.assert_array_equal(
                arr[0], (x - t0) / rate
            )  # exact seconds from tracking start
            nearest = np.argmin(
                np.abs(x[:, None] - on[None, :n]), axis=1
            )  # nearest frame onset, ties earlier
            np.testing.assert_array_equal(arr[1], nearest)
            assert arr[1].max() <= n - 1
            assert written[u["cluster_id"]]["n_spikes"] == len(x)
        assert set(written) == expected_ids
        assert man["duplicates_removed"] >= 1 and man["labels_from"] == "cluster_info.tsv"


def test_rate_based_frames_without_onsets(group, tmp_path):
    for s, _e, man in _split_all(group, tmp_path, with_onsets=False):
        assert man["frame_index"].startswith("round")
        n = s["timeline"].n_frames_least
        for f in man["files"]:
            arr = np.load(tmp_path / s["session_id"] / "cluster_data" / f["file"])
            fr = np.round(arr[0] * s["timeline"].fps)
            fr[fr >= n] = n - 1
            np.testing.assert_array_equal(arr[1], fr)


def test_min_spike_num_is_strict(group, tmp_path):
    s, e, man = _split_all(group, tmp_path, min_spike_num=0)[0]
    counts = {f["cluster_id"]: f["n_spikes"] for f in man["files"]}
    k = max(counts.values())
    _, _, man2 = [r for r in _split_all(group, tmp_path / "b", min_spike_num=k)][0]
    assert all(f["n_spikes"] > k for f in man2["files"]) and not man2["files"]
    assert {b["cluster_id"] for b in man2["below_min_spike_num"]} == set(counts)


def test_labels_without_phy(group, tmp_path):
    ks = tmp_path / "ks"
    shutil.copytree(group["ks"], ks)
    (ks / "cluster_info.tsv").unlink()
    labels, src = load_labels(ks)
    assert src == "cluster_group.tsv"
    by_cluster = {c["cluster_id"]: c for c in group["sorter"]["clusters"]}
    for cid, (label, ch) in labels.items():
        assert label == by_cluster[cid]["ks_label"]
        if by_cluster[cid]["unit_id"] is not None:
            assert ch == by_cluster[cid]["peak_channel"]
    (ks / "cluster_group.tsv").unlink()
    assert load_labels(ks)[1] == "cluster_KSLabel.tsv"
    np.testing.assert_array_equal(peak_channels(ks)[[c for c in by_cluster if by_cluster[c]["unit_id"] is not None]],
                                  [by_cluster[c]["peak_channel"] for c in by_cluster if by_cluster[c]["unit_id"] is not None])  # fmt: skip
    (ks / "cluster_KSLabel.tsv").unlink()
    with pytest.raises(InputError, match="no cluster labels"):
        load_labels(ks)


def test_missing_or_bad_sorter_output_writes_nothing(group, tmp_path):
    ks = tmp_path / "ks"
    shutil.copytree(group["ks"], ks)
    (ks / "spike_times.npy").unlink()
    out = tmp_path / "cluster_data"
    with pytest.raises(InputError, match="spike_times.npy"):
        split_session(ks, out, "imec0", (100, 20000), 30000.0, 150.0, 100)
    shutil.copy(group["ks"] / "spike_times.npy", ks / "spike_times.npy")
    np.save(ks / "spike_clusters.npy", np.load(ks / "spike_clusters.npy")[:-1])
    with pytest.raises(InputError, match="entries but spike_times.npy has"):
        split_session(ks, out, "imec0", (100, 20000), 30000.0, 150.0, 100)
    shutil.copy(group["ks"] / "spike_clusters.npy", ks / "spike_clusters.npy")
    t = np.load(ks / "spike_times.npy")
    np.save(ks / "spike_times.npy", t[::-1].copy())
    with pytest.raises(InputError, match="ascending"):
        split_session(ks, out, "imec0", (100, 20000), 30000.0, 150.0, 100)
    assert not out.exists()


def test_rerun_replaces_the_folder(group, tmp_path):
    out = tmp_path / "cd"
    out.mkdir()
    (out / "imec0_cl9999_ch000_good.npy").write_bytes(b"stale")
    s, e, man = _split_all(group, tmp_path)[0]
    man = split_session(group["ks"], out, "imec0", e["tracking_start_end"], e["sample_rate"], 150.0,
                        s["timeline"].n_frames_least, min_spike_num=5)  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == sorted(f["file"] for f in man["files"])
