"""Nothing from nothing, end to end: a simulated session without calls (the simulator's stationary
tones on some channels, its occasional clicks), as `usvflow simulate --calls-per-minute 0` writes it,
through split, crop, HPSS, high-pass, detection on all 24 channels and curation: no USV."""

import pandas as pd
import pytest
import yaml

from .conftest import snakemake

pytestmark = pytest.mark.slow


def test_no_call_session_gives_no_usv(tmp_path):
    from usvflow.simulate.cohort import simulate_cohort
    from usvflow.usv.curate import read_summary

    simulate_cohort(
        tmp_path, sessions=1, seconds=4.0, seed=0, calibration=False, calls_per_minute=0
    )
    cfg = yaml.safe_load((tmp_path / "config.yaml").read_text())
    cfg["stages"] = ["video", "audio", "usv"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    snakemake(tmp_path, config=tmp_path / "config.yaml")
    sid = (tmp_path / "sessions.tsv").read_text().splitlines()[1].split("\t")[0]
    audio = tmp_path / "Data" / sid / "audio"
    csvs = sorted((audio / "das_annotations").glob("*_annotations.csv"))
    assert len(csvs) == 24
    dets = {c.name: len(pd.read_csv(c, index_col=0)) for c in csvs}
    assert sum(dets.values()) == 0, {k: v for k, v in dets.items() if v}
    assert len(read_summary(audio / f"{sid}_usv_summary.csv")) == 0
