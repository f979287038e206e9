"""Same bytes on every rerun: the demo's cohort (every stage on) is processed twice from scratch, and
once more after the whole run was killed (SIGKILL) mid-way and resumed with ``--unlock`` and
``--rerun-incomplete``; every product (SVGs, HDF5, the call-type model, NWB) must be byte-identical.

The cohort lives under folder names as labs write them: a data root with a space and an apostrophe
(``Bartul's data``) and a non-ASCII letter, and session folders renamed to names with the same
characters, so every rule (shell rules included) runs on such paths.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.workflow.conftest import ROOT, SNAKEMAKE, snakemake

pytestmark = pytest.mark.slow

SMALL = {"n_fft": 256, "n_freq": 32, "n_time": 32}
STAGES = [
    "video",
    "audio",
    "usv",
    "sync",
    "ephys",
    "pose",
    "assignment",
    "calltypes",
    "nwb",
]
SKIP_DIRS = {"logs", "benchmarks", ".snakemake"}
#: one product of every stage: the comparison must not pass on a run that made nothing
EXPECTED = [
    "*_camera_frame_count_dict.json",
    "*_hpss_filtered.wav",
    "*_usv_summary.csv",
    "*_usv_signal_correlation_histogram.svg",
    "*_av_sync.json",
    "*_summary.svg",
    "*_ev_sync.json",
    "*_calibration.toml",
    "*_calibration.metadata.h5",
    "*_reprojection_histogram.svg",
    "*_points3d.h5",
    "*_points3d_translated_rotated_metric.h5",
    "*_source_estimates.csv",
    "*_sound_sources.svg",
    "model.pt",
    "confusion_matrix.svg",
    "*_usv_summary_call_types.csv",
    "*.nwb",
]


def tree_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (logs, benchmarks and Snakemake's metadata left out)."""
    out = {}
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if x not in SKIP_DIRS]
        for f in files:
            p = Path(d, f)
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def remove_products(root: Path, raw: dict[str, str]) -> None:
    for d, _dirs, files in os.walk(root, topdown=False):
        for f in files:
            p = Path(d, f)
            if str(p.relative_to(root)) not in raw:
                p.unlink()
        if Path(d) != root and not os.listdir(d):
            os.rmdir(d)


def differing(a: dict, b: dict) -> list[str]:
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    from usvflow.cli import main
    from usvflow.simulate.cohort import simulate_cohort

    root = tmp_path_factory.mktemp("repro") / "Bartul's data" / "Kohorte Müller"
    # the demo's cohort (with pose: ChArUco calibration footage and SLEAP predictions)
    simulate_cohort(root, sessions=1, seconds=4.0, seed=0, pose=True, progress=False)
    # session folders named as labs name them (the sheet says where each session is)
    sheet_path = root / "sessions.tsv"
    sheet = pd.read_csv(sheet_path, sep="\t", dtype=str, keep_default_na=False)
    for i, row in sheet.iterrows():
        new = f"{row['folder']} Bartul's sessión"
        os.rename(root / row["folder"], root / new)
        sheet.loc[i, "folder"] = new
    sheet.to_csv(sheet_path, sep="\t", index=False)
    data = root / "calltype training"
    small = [f"--{k.replace('_', '-')}={v}" for k, v in SMALL.items()]
    argv = [
        "export-spectrograms",
        "--simulate",
        "20",
        "--dataset-dir",
        str(data),
        "--seed",
        "1",
    ]
    assert main(argv + small) == 0
    cfg = yaml.safe_load((root / "config.yaml").read_text())
    cfg["stages"] = STAGES
    cfg["pose"] = {"use_unproofread": True}
    cfg["call_types"] = {
        "model_dir": str(root / "calltype model"),
        "spectrogram": SMALL,
        "train": {
            "data_dir": str(data),
            "max_epochs": 3,
            "patience": 2,
            "batch_size": 16,
        },
    }
    cfg["ephys"]["spikes"] = {"min_spike_num": 3}
    (root / "config.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True))
    raw = tree_hashes(root)
    work = root.parent.parent / "work dir"
    work.mkdir()
    return root, raw, work


@pytest.fixture(scope="module")
def first_run(cohort):
    root, raw, work = cohort
    snakemake(work, config=root / "config.yaml")
    products = {k: v for k, v in tree_hashes(root).items() if k not in raw}
    return products


def test_products_of_every_stage(first_run):
    names = [Path(k).name for k in first_run]
    for pattern in EXPECTED:
        assert any(Path(n).match(pattern) for n in names), f"no product {pattern}"
    assert len(first_run) > 150
    assert not [k for k in first_run if Path(k).name.startswith((".tmp-", ".old-"))]


def test_second_run_is_byte_identical(cohort, first_run):
    root, raw, work = cohort
    remove_products(root, raw)
    assert tree_hashes(root) == raw
    snakemake(work, config=root / "config.yaml")
    again = tree_hashes(root)
    assert {k: v for k, v in again.items() if k in raw} == raw, "a raw file changed"
    again = {k: v for k, v in again.items() if k not in raw}
    assert differing(first_run, again) == []


# products written by usvflow's own writers, one of each kind, beside which a killed write's
# temporary is planted
PLANT_BESIDE = (
    "*_hpss.wav",
    "*_calibration.toml",
    "*_usv_summary.csv",
    "*_points3d_translated_rotated_metric.h5",
    "*.nwb",
)


def _plant_stale_temporaries(root: Path, unwritten: list[str]) -> list[Path]:
    """Temporaries as a killed write leaves them, beside products the kill left unwritten.

    The resumed run must write those products, and each writer removes the temporaries that
    earlier killed writes of its target left behind.
    """
    planted = []
    for pattern in PLANT_BESIDE:
        for rel in sorted(unwritten):
            if Path(rel).match(pattern):
                target = root / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                p = target.with_name(f".tmp-999999.{target.name}")
                p.write_bytes(b"partial")
                planted.append(p)
                break
    return planted


def test_kill_and_resume_is_byte_identical(cohort, first_run):
    root, raw, work = cohort
    remove_products(root, raw)
    cmd = [*SNAKEMAKE, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(work)]
    cmd += [
        "--cores",
        "2",
        "--configfile",
        str(root / "config.yaml"),
        "--workflow-profile",
        "none",
    ]
    log = open(work / "killed_run.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # kill -9 the whole run once the audio chain is half-way (HPSS written for some channels)
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list(root.rglob("*_hpss.wav"))) >= 4:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        log.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    time.sleep(1)
    partial = {k: v for k, v in tree_hashes(root).items() if k not in raw}
    assert 0 < len(partial) < len(first_run)
    unwritten = [k for k in first_run if k not in partial]
    planted = _plant_stale_temporaries(root, unwritten)
    assert any(p.name.endswith("_hpss.wav") for p in planted), planted
    # the README's recovery: unlock, then resume (rerun the jobs the kill left incomplete)
    snakemake(work, "--unlock", config=root / "config.yaml")
    snakemake(work, "--rerun-incomplete", config=root / "config.yaml")
    resumed = tree_hashes(root)
    assert {k: v for k, v in resumed.items() if k in raw} == raw, "a raw file changed"
    resumed = {k: v for k, v in resumed.items() if k not in raw}
    assert not [p for p in planted if p.exists()], "a stale temporary survived the resumed run"
    assert differing(first_run, resumed) == []
    # a dry-run afterwards has nothing to do
    dry = snakemake(work, "-n", config=root / "config.yaml")
    assert "Nothing to be done" in dry.stdout + dry.stderr
