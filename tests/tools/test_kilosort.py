"""Kilosort4 for real: the `kilosort4` rule (ephys.sorting.python = the venv of workflow/envs/kilosort.yaml)
sorts a simulated probe recording, `ephys_split_spikes` splits its output; the simulated units are matched
to Kilosort's clusters by spike time (within 0.5 ms)."""

import json
import shutil

import numpy as np
import pytest
import yaml

from .run import snakemake

pytestmark = [pytest.mark.tools, pytest.mark.slow]

TOL_S = 0.5e-3


def match_units(truth_units, spike_times, spike_clusters, fs, tol_s=TOL_S):
    """Per simulated unit: the cluster sharing most of its spikes (within tol), recall and precision."""
    tol = int(round(tol_s * fs))
    out = []
    for u in truth_units:
        t = np.asarray(u["spike_samples"], np.int64)
        best = (None, 0.0, 0.0)
        for c in np.unique(spike_clusters):
            s = np.sort(spike_times[spike_clusters == c])
            i = np.clip(np.searchsorted(s, t), 1, max(len(s) - 1, 1))
            d = np.minimum(np.abs(s[i - 1] - t), np.abs(s[np.minimum(i, len(s) - 1)] - t))
            hit = int((d <= tol).sum())
            recall, precision = hit / max(len(t), 1), min(hit / max(len(s), 1), 1.0)
            if recall > best[1]:
                best = (int(c), recall, precision)
        out.append(
            {
                "unit": u["id"],
                "n": len(t),
                "cluster": best[0],
                "recall": best[1],
                "precision": best[2],
            }
        )
    return out


def test_kilosort4_recovers_simulated_units(tool_python, tmp_path):
    from usvflow.simulate.cohort import simulate_cohort

    py = tool_python("kilosort")
    out = tmp_path / "cohort"
    simulate_cohort(out, sessions=1, seconds=10.0, seed=3, calibration=False)
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    cfg["stages"] = ["ephys"]
    cfg["ephys"]["spikes"] = {"min_spike_num": 3}
    cfg["ephys"]["sorting"] = {"run": True, "python": str(py)}
    (out / "config.yaml").write_text(yaml.safe_dump(cfg))
    sid = next(
        r.split("\t")[0]
        for r in (out / "sessions.tsv").read_text().splitlines()[1:]
        if "\texperiment\t" in r
    )
    for ks in out.glob(
        "EPHYS/*/kilosort4"
    ):  # the simulator's prepared sorter output: sort for real
        shutil.rmtree(ks)
    _, wall = snakemake(out, config=out / "config.yaml")
    ks = next(out.glob("EPHYS/*/kilosort4"))
    truth = json.loads((out / "truth" / sid / "ground_truth.json").read_text())["ephys"]
    st = np.load(ks / "spike_times.npy").astype(np.int64).ravel()
    sc = np.load(ks / "spike_clusters.npy").astype(np.int64).ravel()
    fs = truth["rate_true"]
    res = match_units(truth["units"], st, sc, fs)
    good = [r for r in res if r["recall"] >= 0.8 and r["precision"] >= 0.8]
    report = {"units": len(res), "recovered": len(good), "clusters": int(len(np.unique(sc))), "spikes": int(len(st)),
              "wall_s": round(wall, 1), "per_unit": res}  # fmt: skip
    print("KILOSORT4", json.dumps(report))
    (tmp_path.parent / "kilosort4_report.json").write_text(json.dumps(report, indent=1))
    man = json.loads(
        (out / "Data" / sid / "ephys" / "imec0" / "imec0_cluster_data_manifest.json").read_text()
    )
    assert man["labels_from"] == "cluster_group.tsv" and man["files"], man
    assert len(good) >= max(1, len(res) // 2), report
