"""Unit quality metrics (SpikeInterface) on a simulated probe: the simulated good units are told apart
from the junk (noise) cluster and from the low-count cluster, per session, by the labelling rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from usvflow.ephys.quality import (
    METRIC_COLUMNS,
    QualitySettings,
    ap_gain_uv,
    label_units,
    manifest_with_quality,
    read_quality_table,
    session_quality_metrics,
)
from usvflow.io.atomic import InputError
from usvflow.io.config import validate_config
from usvflow.simulate.ephys import draw_units, write_sorter_output, write_spikeglx
from usvflow.simulate.timeline import make_timeline

ROOT = Path(__file__).resolve().parents[2]
SECONDS = 20.0


def _settings(**over) -> QualitySettings:
    cfg = validate_config({"sessions": "x"}, ROOT / "workflow" / "schemas" / "config.schema.yaml")
    q = dict(cfg["ephys"]["quality_metrics"])
    q.update(over)
    return QualitySettings(**q)


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    """3 sessions of 20 s on a 32-channel NP1.0 probe, 6 units, one noise cluster, one low-count cluster."""
    tmp = tmp_path_factory.mktemp("quality")
    rng = np.random.default_rng(3)
    units = draw_units(rng, 32, 6)
    truths = []
    for i in range(3):
        tl = make_timeline(rng, SECONDS, ["21372315", "21241563"])
        sid = f"20250430_1{i}0000"
        truths.append(write_spikeglx(tmp / sid, sid, tl, rng, n_ap=32, units=units))
    ks = tmp / "kilosort4"
    sorter = write_sorter_output(
        ks,
        [(t["n_samples"], t["units"]) for t in truths],
        33,
        units,
        truths[0]["rate_true"],
        rng=rng,
    )
    # the thresholds of the test: presence in 1-s bins (sessions of 20 s), amplitude cutoff from 100 spikes
    st = _settings(
        metric_params={
            "presence_ratio": {"bin_duration_s": 1.0},
            "amplitude_cutoff": {"num_histogram_bins": 50, "amplitudes_bins_min_ratio": 2},
        }
    )
    tables = []
    for t, off in zip(truths, sorter["session_offsets"]):
        a, b = t["tracking_start_end"]
        tables.append(
            session_quality_metrics(
                t["bin"],
                t["meta"],
                ks,
                off,
                (a + off, b + off),
                t["rate_true"],
                st,
                remove_duplicates=True,
                censor_samples=9,
            )
        )
    return {"sorter": sorter, "tables": tables, "truths": truths, "ks": ks, "settings": st}


def test_metrics_separate_good_units_from_noise_and_low_count_clusters(group):
    sorter = group["sorter"]
    noise = set(sorter["noise_cluster_ids"])
    low = sorter["low_count_cluster_id"]
    good = {c["cluster_id"] for c in sorter["clusters"]} - noise - {low}
    assert len(good) == 5 and len(noise) == 1
    for q in group["tables"]:
        assert set(q.index) == good | noise | {low}
        g, n, lo = q.loc[sorted(good)], q.loc[sorted(noise)], q.loc[low]
        # noise (junk spike times): no waveform in the recording
        assert g["snr"].min() > 5.0 and n["snr"].max() < 1.0
        assert g["amplitude_median"].min() > 150.0 and n["amplitude_median"].max() < 30.0  # uV
        # low-count cluster (the sorter found 40-89 of its spikes over the day): gaps in time
        assert g["presence_ratio"].min() >= 0.9 and lo["presence_ratio"] < 0.6
        assert g["isi_violations_ratio"].max() == 0.0  # 2 ms refractory period in the simulation
        # the labelling rule (the schema's default thresholds) keeps exactly the good units
        assert set(q.index[q["quality_label"] == "good"]) == good
        assert "snr" in q.loc[sorted(noise)[0], "quality_failed"]
        assert "presence_ratio" in q.loc[low, "quality_failed"]
        # the sorter's labels stay beside the rule's
        assert set(q.loc[sorted(good), "label"]) == {"good"} and q.loc[low, "label"] == "mua"


def test_metrics_against_the_simulated_spikes(group):
    """firing rate and spike counts equal the simulated trains; SNR follows the simulated amplitude."""
    sorter = group["sorter"]
    for q, t, sess in zip(group["tables"], group["truths"], sorter["sessions"]):
        a, b = t["tracking_start_end"]
        dur = (b - a) / t["rate_true"]
        for u in sess["units"]:
            if u["cluster_id"] == sorter["low_count_cluster_id"]:
                continue
            s = np.asarray(u["spike_samples"])
            n = int(np.count_nonzero((s >= a) & (s < b)))
            assert q.loc[u["cluster_id"], "num_spikes"] == n
            assert q.loc[u["cluster_id"], "firing_rate"] == pytest.approx(n / dur, rel=1e-6)


def test_rerun_on_several_threads_is_identical(group):
    """The same table on 3 threads as on 1 (the rule's threads must not change a byte)."""
    t, off = group["truths"][0], group["sorter"]["session_offsets"][0]
    a, b = t["tracking_start_end"]
    again = session_quality_metrics(
        t["bin"],
        t["meta"],
        group["ks"],
        off,
        (a + off, b + off),
        t["rate_true"],
        group["settings"],
        remove_duplicates=True,
        censor_samples=9,
        n_jobs=3,
    )
    pd.testing.assert_frame_equal(again, group["tables"][0], check_exact=True)


def test_table_and_manifest_round_trip(group, tmp_path):
    q = group["tables"][0]
    q.to_csv(tmp_path / "q.csv", float_format="%.6g")
    back = read_quality_table(tmp_path / "q.csv")
    assert back["quality_label"].tolist() == q["quality_label"].tolist()
    cid = int(q.index[0])
    m = manifest_with_quality(
        {"files": [{"cluster_id": cid, "file": "x.npy"}]}, back, "q.csv", {"snr": {"greater": 3}}
    )
    f = m["files"][0]
    assert f["quality_label"] == q.loc[cid, "quality_label"]
    assert set(f["quality_metrics"]) == set(METRIC_COLUMNS)
    assert f["quality_metrics"]["snr"] == pytest.approx(q.loc[cid, "snr"], rel=1e-5)
    assert sorted(
        m["quality_metrics"]["good_cluster_ids"] + m["quality_metrics"]["bad_cluster_ids"]
    ) == sorted(q.index)


def test_label_rule_and_bad_thresholds():
    df = pd.DataFrame(
        {"snr": [5.0, 2.0, np.nan], "presence_ratio": [1.0, 1.0, 1.0]}, index=[0, 1, 2]
    )
    lab = label_units(df, {"snr": {"greater": 3}}, "fail")
    assert (
        lab["quality_label"].tolist() == ["good", "bad", "bad"]
        and lab["quality_failed"].tolist()[1] == "snr"
    )
    assert label_units(df, {"snr": {"greater": 3}}, "pass")["quality_label"].tolist() == [
        "good",
        "bad",
        "good",
    ]
    with pytest.raises(InputError, match="unknown metric"):
        label_units(df, {"snr_db": {"greater": 3}}, "fail")


def test_gain_of_the_real_metas():
    data = ROOT / "tests" / "data" / "spikeglx"
    g1 = ap_gain_uv(data / "Noise_g0_t0.imec0.ap.meta")
    assert len(g1) == 384 and g1[0] == pytest.approx(0.6e6 / 512 / 500)  # NP1.0 at gain 500
    g2 = ap_gain_uv(data / "p2_g0_t0.imec0.ap.meta")
    assert len(g2) == 384 and g2[0] == pytest.approx(0.5e6 / 8192 / 80)  # NP2.0
