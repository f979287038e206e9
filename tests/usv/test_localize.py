"""Built-in sound-source localization (SRP-PHAT) and assignment against simulated geometry."""

import h5py
import numpy as np
import pandas as pd
import pytest

from usvflow.simulate.calls import draw_call, waveform
from usvflow.simulate.geometry import ARENA_SIDE_M, microphone_positions
from usvflow.usv.localize import LocalizeParams, assign, localize, localize_usvs, write_dset

SR = 250_000
C = 343.0
MICS = microphone_positions()
HALF = ARENA_SIDE_M / 2
BOUNDS = ((-HALF, HALF), (-HALF, HALF))


def render(call, src, rng, noise=10.0, amp=3000.0, pad=0.01):
    """24 channels of one call emitted at ``src`` (delays |src - mic| / c, 1/r attenuation) + noise."""
    n = int((call.duration_s + 2 * pad) * SR)
    t = np.arange(n) / SR
    d = np.linalg.norm(MICS - src, axis=1)
    x = np.empty((n, len(MICS)), np.float32)
    for j in range(len(MICS)):
        tt = t - pad - d[j] / C
        x[:, j] = amp * 0.3 / d[j] * waveform(call, tt) + rng.normal(0, noise, n)
    return x


def random_position(rng, margin=0.03):
    return np.array([*rng.uniform(-HALF + margin, HALF - margin, 2), rng.uniform(0.015, 0.05)])


def test_localization_error_is_millimetres_for_every_call_type():
    rng = np.random.default_rng(1)
    errs = {}
    for call_type in ("flat", "up_ramp", "down_ramp", "step", "trill", "complex"):
        for _ in range(3):
            src = random_position(rng)
            call = draw_call(rng, call_type)
            xyz, coherence = localize(render(call, src, rng), SR, MICS, BOUNDS)
            errs.setdefault(call_type, []).append(np.linalg.norm(xyz[:2] - src[:2]))
            assert coherence > 0
    all_errs = np.concatenate(list(errs.values()))
    assert np.median(all_errs) < 0.002, errs
    assert np.mean(all_errs < 0.01) >= 0.9, errs


def test_estimate_holds_no_reference_to_the_search_grid():
    """The returned position owns its 3 numbers: a row view kept the whole fine grid (~0.5 MB) alive
    with each USV's result, and localize_usvs' memory grew with the number of USVs."""
    rng = np.random.default_rng(2)
    xyz, _ = localize(render(draw_call(rng, "flat"), random_position(rng), rng), SR, MICS, BOUNDS)
    assert xyz.shape == (3,) and xyz.base is None


def test_assignment_is_confident_only_when_one_animal_is_clearly_closer():
    p = LocalizeParams()
    k, conf, d = assign(np.array([0.10, 0.0]), np.array([[0.105, 0.0], [-0.1, 0.05]]), p)
    assert k == 0 and conf > 0.99 and d[0] == pytest.approx(0.005)
    # two animals 1 cm apart: a coin toss, unassigned
    k, conf, _ = assign(np.array([0.10, 0.0]), np.array([[0.105, 0.0], [0.095, 0.0]]), p)
    assert k == -1 and conf < 0.6
    # the closest animal is far from the estimate: unassigned
    k, _, _ = assign(np.array([0.10, 0.0]), np.array([[0.25, 0.0], [-0.25, 0.0]]), p)
    assert k == -1
    # an untracked animal (NaN) is not a candidate
    k, conf, _ = assign(np.array([0.10, 0.0]), np.array([[np.nan, np.nan], [0.11, 0.0]]), p)
    assert k == 1 and conf == 1.0
    k, _, _ = assign(np.array([0.10, 0.0]), np.full((2, 2), np.nan), p)
    assert k == -1


def test_assignment_accuracy_and_rate_on_two_animals():
    """Two animals 2-30 cm apart, one of them calling: >= 95 % of the assigned are right, and >= 80 %
    are assigned when the animals are more than 10 cm apart."""
    rng = np.random.default_rng(7)
    n = 60
    rows, truth, animals = [], [], []
    clips = []
    for i in range(n):
        a = random_position(rng, margin=0.05)
        sep = rng.uniform(0.02, 0.30)
        ang = rng.uniform(0, 2 * np.pi)
        b = a + np.array([sep * np.cos(ang), sep * np.sin(ang), 0.0])
        b[:2] = np.clip(b[:2], -HALF + 0.01, HALF - 0.01)
        who = int(rng.integers(0, 2))
        call = draw_call(rng)
        clips.append(render(call, (a, b)[who], rng, noise=rng.uniform(5, 40)))
        rows.append({"usv_id": f"{i:04d}", "start": 0.0, "stop": 0.0})
        truth.append(who)
        animals.append(np.stack([a, b]))
    # one memmap-like array with the clips one after another
    starts = np.cumsum([0] + [len(c) for c in clips])
    mm = np.concatenate(clips).astype(np.float32)
    summ = pd.DataFrame(rows)
    summ["start"] = starts[:-1] / SR
    summ["stop"] = starts[1:] / SR
    lookup = {round(s, 9): k for k, s in enumerate(summ["start"])}
    est, emitters = localize_usvs(mm, SR, summ, MICS, BOUNDS, lambda t: animals[lookup[round(t, 9)]],
                                  ["animal_0", "animal_1"])  # fmt: skip
    truth = np.array(truth)
    got = np.array([-1 if e is None else int(e[-1]) for e in emitters])
    sep = np.array([np.linalg.norm(x[0, :2] - x[1, :2]) for x in animals])
    assigned = got >= 0
    assert assigned.sum() >= 10
    assert np.mean(got[assigned] == truth[assigned]) >= 0.95
    assert np.mean(assigned[sep > 0.10]) >= 0.8
    assert list(est.columns[:7]) == [
        "usv_id",
        "x_m",
        "y_m",
        "z_m",
        "coherence",
        "confidence",
        "emitter",
    ]
    err = np.linalg.norm(
        est[["x_m", "y_m"]].to_numpy() - np.array([x[w, :2] for x, w in zip(animals, truth)]),
        axis=1,
    )
    assert np.median(err) < 0.002


def test_dset_layout_is_what_vocalocator_reads(tmp_path):
    """vocalocator's reader: /audio (samples, channels) float, /length_idx (n+1,) from 0, event i =
    audio[length_idx[i]:length_idx[i+1]]; /locations (n, animals, nodes, 3) in mm; /node_names bytes."""
    rng = np.random.default_rng(0)
    mm = rng.integers(-3000, 3000, (SR, 24)).astype(np.int16)
    summ = pd.DataFrame({"usv_id": ["0000", "0001"], "start": [0.1, 0.5], "stop": [0.12, 0.53]})
    tracks = rng.normal(0, 0.1, (200, 2, 3, 3))  # frames, animals, nodes, xyz (m)
    out = write_dset(tmp_path / "dset.h5", mm, SR, summ, lambda f: tracks[f], ["Nose", "Head", "Tail"], 150.0,
                     (0.6, 0.62), 2)  # fmt: skip
    with h5py.File(out) as h:
        li = h["length_idx"][:]
        assert li.dtype == np.int64 and li[0] == 0 and list(np.diff(li)) == [5000, 7500]
        audio = h["audio"]
        assert audio.dtype == np.float16 and audio.shape == (12500, 24)
        np.testing.assert_allclose(audio[li[1] : li[2]], mm[125000:132500] / 32767.0, atol=2e-3)
        loc = h["locations"][:]
        assert loc.shape == (2, 2, 3, 3)
        np.testing.assert_allclose(loc[1], tracks[75] * 1000)  # frame int(0.5 * 150)
        assert [s.decode() for s in h["node_names"][:]] == ["Nose", "Head", "Tail"]
        assert h["animal_id"].shape == (2, 2)
        assert h.attrs["arena_dims_units"] == "mm"
        np.testing.assert_allclose(h.attrs["arena_dims"], [600.0, 620.0])
        assert h.attrs["audio_sr"] == SR and h.attrs["video_fps"] == 150.0


def _metric_h5(path, tracks, node_names, track_names):
    with h5py.File(path, "w") as h:
        h.create_dataset("tracks", data=tracks)
        h.create_dataset("node_names", data=np.array([s.encode() for s in node_names]))
        h.create_dataset("track_names", data=np.array([s.encode() for s in track_names]))


def test_assign_session_writes_estimates_summary_and_plot(tmp_path):
    from usvflow.audio.memmap import memmap_name, sidecar_path
    from usvflow.usv.curate import SUMMARY_COLUMNS, read_summary, write_summary
    from usvflow.usv.localize import assign_session, vocalocator_ssl_assignments

    rng = np.random.default_rng(3)
    fps, n_frames = 150.0, 600  # 4 s
    # two animals walking slowly, 25 cm apart
    t = np.arange(n_frames) / fps
    a0 = np.stack([-0.12 + 0.02 * np.sin(t), 0.05 + 0.0 * t, 0.03 + 0.0 * t], axis=1)
    a1 = np.stack([0.13 + 0.0 * t, -0.06 + 0.02 * np.cos(t), 0.03 + 0.0 * t], axis=1)
    nodes = ["Nose", "Head", "TTI"]
    tracks = np.zeros((n_frames, 2, 3, 3))
    for k, a in enumerate((a0, a1)):
        tracks[:, k, 0] = a
        tracks[:, k, 1] = a - [0.02, 0, 0]
        tracks[:, k, 2] = a - [0.08, 0, 0]
    _metric_h5(tmp_path / "tracks.h5", tracks, nodes, ["158114_1", "158114_2"])
    corners = np.array([[-HALF, HALF, 0], [-HALF, -HALF, 0], [HALF, -HALF, 0], [HALF, HALF, 0]])
    arena = np.concatenate([corners, MICS])[None, None]
    _metric_h5(tmp_path / "arena.h5", arena, ["North", "West", "South", "East"] + [f"ch_{j}" for j in range(24)],
               ["arena"])  # fmt: skip
    n = int(4 * SR)
    mm_path = tmp_path / memmap_name("250430145009", "hpss_filtered", SR, n, 24)
    mm = np.lib.format.open_memmap(tmp_path / "tmp.npy", "w+", np.float32, (n, 24))
    mm[:] = rng.normal(0, 5, (n, 24))
    rows, who = [], []
    for i, t0 in enumerate((0.3, 0.9, 1.5, 2.1, 2.7, 3.3)):
        k = i % 2
        src = tracks[int(t0 * fps), k, 0]
        call = draw_call(rng)
        x = render(call, src, rng, noise=0.0, pad=0.0)
        a = int(t0 * SR)
        mm[a : a + len(x)] += x
        rows.append({"usv_id": f"{i:04d}", "start": t0, "stop": t0 + call.duration_s + 0.002})
        who.append(k)
    np.round(mm).astype("<i2").tofile(mm_path)
    sidecar_path(mm_path).write_text(
        f'{{"shape": [{n}, 24], "dtype": "int16", "sample_rate": {SR}}}'
    )
    summ = pd.DataFrame(rows)
    for c in SUMMARY_COLUMNS:
        if c not in summ:
            summ[c] = 0 if c != "emitter" else None
    write_summary(summ, tmp_path / "S_usv_summary.csv")
    res = assign_session(tmp_path / "S_usv_summary.csv", mm_path, tmp_path / "tracks.h5", tmp_path / "arena.h5", fps,
                         tmp_path / "est.csv", tmp_path / "S_usv_summary_assigned.csv", tmp_path / "src.svg")  # fmt: skip
    assert res["assigned"] == 6
    out = read_summary(tmp_path / "S_usv_summary_assigned.csv")
    assert list(out["emitter"]) == [["158114_1", "158114_2"][k] for k in who]
    est = pd.read_csv(tmp_path / "est.csv")
    assert {"dist_158114_1_m", "dist_158114_2_m"} <= set(est.columns)
    assert "<svg" in (tmp_path / "src.svg").read_text()
    # bad arena labelling: a microphone node is missing
    _metric_h5(tmp_path / "bad.h5", arena[:, :, :20], ["North", "West", "South", "East"] + [f"ch_{j}" for j in range(16)],
               ["arena"])  # fmt: skip
    with pytest.raises(Exception, match="ch_16"):
        assign_session(tmp_path / "S_usv_summary.csv", mm_path, tmp_path / "tracks.h5", tmp_path / "bad.h5", fps,
                       tmp_path / "e2.csv", tmp_path / "a2.csv", tmp_path / "s2.svg")  # fmt: skip
    assert not (tmp_path / "a2.csv").exists()
    # vocalocator-ssl output reader
    np.savez(
        tmp_path / "p.npz",
        **{"dset-scores": np.zeros((6, 2)), "dset-assignments": np.array([0, 1, -1, 0, 1, 1])},
    )
    assert list(vocalocator_ssl_assignments(tmp_path / "p.npz", 6)) == [0, 1, -1, 0, 1, 1]
    with pytest.raises(Exception, match="7 USVs"):
        vocalocator_ssl_assignments(tmp_path / "p.npz", 7)


def test_noise_is_never_assigned_with_confidence():
    """Pure noise and a call on one microphone only localize somewhere with a tiny coherence: the
    assignment probability is weighted by the localization's validity, so it stays low even when
    one animal sits right on the (meaningless) estimate."""
    from usvflow.simulate.calls import waveform
    from usvflow.usv.localize import localization_validity

    rng = np.random.default_rng(3)
    p = LocalizeParams()
    for i in range(4):
        call = draw_call(rng)
        x = render(call, random_position(rng), rng, noise=20.0, amp=0.0)
        if i % 2:  # a speck on one channel
            x[:, i] += 200 * waveform(call, np.arange(len(x)) / SR - 0.01)
        xyz, coh = localize(x, SR, MICS, BOUNDS)
        assert coh < 0.0025
        k, conf, _ = assign(xyz[:2], np.array([xyz[:2], xyz[:2] + 0.3]), p, coherence=coh)
        assert k == -1 and conf < 0.3
        # without the validity weight the same estimate would be assigned with confidence ~1
        assert assign(xyz[:2], np.array([xyz[:2], xyz[:2] + 0.3]), p)[1] > 0.99
    # a clearly localized call keeps its confidence
    call = draw_call(rng, "up_ramp")
    src = random_position(rng)
    xyz, coh = localize(render(call, src, rng, noise=20.0, amp=3000.0), SR, MICS, BOUNDS)
    assert localization_validity(coh, p) > 0.9
    assert localization_validity(0.0, p) == 0.0 and localization_validity(float("nan"), p) == 0.0
