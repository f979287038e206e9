"""Overview numbers and figures from a session's products: the cohort table agrees with the truth the
products were written from (counts, types, emitters), and every figure is written."""

import json

import numpy as np
import pandas as pd
import pytest

from usvflow.report import overview as ov
from usvflow.usv.curate import SUMMARY_COLUMNS


def _products(d, sid, rng, n, duration):
    """A session's products written from a known truth: n calls of random types and emitters."""
    d.mkdir(parents=True)
    start = np.sort(rng.uniform(0, duration - 0.2, n))
    truth = pd.DataFrame({"usv_id": [f"{i:04d}" for i in range(n)], "start": start, "stop": start + 0.05,
                          "type": rng.choice(["flat", "up", "step"], n),
                          "emitter": rng.choice(["animal_0", "animal_1", None], n, p=[0.5, 0.3, 0.2])})  # fmt: skip
    s = pd.DataFrame({c: 0 for c in SUMMARY_COLUMNS}, index=range(n))
    s["usv_id"], s["start"], s["stop"] = truth["usv_id"], truth["start"], truth["stop"]
    s["duration"] = s["stop"] - s["start"]
    s["emitter"] = np.nan
    s["snr_db"] = rng.uniform(5, 30, n)
    s.to_csv(d / "summary.csv", index=False)
    s.assign(emitter=truth["emitter"]).to_csv(d / "assigned.csv", index=False)
    s.assign(call_type=truth["type"], call_type_prob=0.9).to_csv(d / "types.csv", index=False)
    np.savez(d / "spec.npz", spectrograms=rng.random((n, 8, 8)).astype(np.float32), usv_id=truth["usv_id"].to_numpy(dtype=str),
             frequencies_hz=np.linspace(20e3, 120e3, 8), times_s=np.linspace(0, 0.1, 8), params="{}")  # fmt: skip
    (d / "counts.json").write_text(json.dumps({"total_video_time_least": duration}))
    pose = {"verdict": "ok", "message": "no camera stands out", "flagged_views": [], "auto_excluded_views": [],
            "cameras": {"A": {"median_reprojection_error_px": 2.0, "missing_fraction": 0.05},
                        "B": {"median_reprojection_error_px": 2.5, "missing_fraction": 0.1}},
            "animals": {"animal_0": {"pose_fraction": 0.97}, "animal_1": {"pose_fraction": 0.93}},
            "screening": [{"error_px": {"A": 1.9, "B": 2.4}}]}  # fmt: skip
    av = {"verdict": "pass", "passed": True, "devices": {"m": {"passed": True, "stats": {"max_abs_ms": 1.5}},
                                                         "s": {"passed": True, "stats": {"max_abs_ms": 2.0}}}}  # fmt: skip
    ev = {"passed": True, "duration_difference_ms": -0.8, "tolerance_ms": 12.0}
    units = pd.DataFrame({"cluster_id": [0, 1, 2, 3], "label": ["good", "mua", "noise", "good"],
                          "quality_label": ["good", "bad", "bad", "bad"], "num_spikes": [900, 120, 40, 300]})  # fmt: skip
    return truth, pose, av, {"imec0": ev}, {"imec0": units.set_index("cluster_id")}


@pytest.mark.parametrize("n_sessions", [2])
def test_cohort_table_agrees_with_truth(tmp_path, n_sessions):
    rng = np.random.default_rng(3)
    rows, truths = [], {}
    for k in range(n_sessions):
        sid = f"S{k}"
        d = tmp_path / sid
        truth, pose, av, evs, units = _products(d, sid, rng, n=25 + 10 * k, duration=60.0 + 30 * k)
        truths[sid] = truth
        usvs = ov.load_usvs(d / "summary.csv", d / "assigned.csv", d / "types.csv")
        window = ov.tracking_window(d / "counts.json")
        rows.append(ov.session_row(sid, usvs, window, av, evs, units, pose))
        figures = [
            ov.plot_timeline(usvs, window, d / "timeline.svg"),
            ov.plot_pose_qc(pose, d / "pose.svg"),
            ov.plot_sync_units(av, evs, units, d / "sync.svg"),
            ov.plot_gallery(usvs, load_spectrograms_npz(d / "spec.npz"), d / "gallery.png"),
        ]
        assert all(f.stat().st_size > 1000 for f in figures)
        ex = ov.gallery_examples(usvs, 4)
        assert sorted(ex) == sorted(truth["type"].unique())
        for t, idx in ex.items():  # the highest-SNR calls of the type
            snr = usvs["snr_db"][usvs["call_type"] == t].sort_values(ascending=False)
            assert list(usvs["snr_db"].iloc[idx]) == list(snr.iloc[: len(idx)])
    table = ov.write_cohort_table(rows[::-1], tmp_path / "cohort.csv")
    back = pd.read_csv(tmp_path / "cohort.csv")
    assert list(back["session"]) == ["S0", "S1"] and len(back) == n_sessions
    for _, r in back.iterrows():
        t = truths[r["session"]]
        dur = 60.0 + 30 * int(r["session"][1])
        assert r["usvs"] == len(t) and r["duration_s"] == dur
        assert r["calls_per_min"] == pytest.approx(len(t) / dur * 60, abs=0.01)
        for typ, cnt in t["type"].value_counts().items():
            assert r[f"type_{typ}"] == cnt
        for em in ("animal_0", "animal_1"):
            assert r[f"emitter_{em}"] == (t["emitter"] == em).sum()
        assert r["emitter_unassigned"] == t["emitter"].isna().sum()
        assert r["assigned_pct"] == pytest.approx(100 * t["emitter"].notna().mean(), abs=0.05)
        assert r["av_sync"] == "pass" and r["ev_sync_imec0"] == "pass" and r["pose_verdict"] == "ok"
        assert (r["units_good_imec0"], r["units_mua_imec0"], r["units_quality_good_imec0"]) == (
            2,
            1,
            1,
        )
        assert r["pose_coverage_animal_1"] == 0.93 and r["pose_max_reprojection_px"] == 2.5
    assert table.shape[0] == n_sessions


def load_spectrograms_npz(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def test_column_families_stay_together(tmp_path):
    # the first session has no unassigned call and one call type; the second has both
    rows = [{"session": "A", "usvs": 2, "emitter_animal_0": 2, "type_flat": 2, "av_sync": "pass"},
            {"session": "B", "usvs": 3, "emitter_animal_0": 1, "emitter_unassigned": 1,
             "emitter_animal_1": 1, "type_up": 1, "type_flat": 2, "av_sync": "fail"}]  # fmt: skip
    df = ov.write_cohort_table(rows, tmp_path / "c.csv")
    assert list(df.columns) == ["session", "usvs", "emitter_animal_0", "emitter_animal_1",
                                "emitter_unassigned", "type_flat", "type_up", "av_sync"]  # fmt: skip
    assert list(df["emitter_unassigned"]) == [0, 1] and list(df["type_up"]) == [0, 1]
    assert list(pd.read_csv(tmp_path / "c.csv").columns) == list(df.columns)
