"""The audio chain's disk settings in the workflow: the free-space check stops a run before any job,
and temporary intermediate audio is gone after a run while the filtered channels and memmap stay."""

import pytest
import yaml

from .conftest import snakemake

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def one_second(tmp_path_factory):
    from usvflow.simulate.cohort import simulate_cohort

    out = tmp_path_factory.mktemp("disk_cohort")
    simulate_cohort(out, sessions=1, seconds=1.0, seed=3, calibration=False, calls_per_minute=0)
    sid = (out / "sessions.tsv").read_text().splitlines()[1].split("\t")[0]
    return out, out / "Data" / sid


def _config(out, **disk):
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    cfg["stages"] = ["video", "audio"]
    cfg["audio"] = {"disk": disk}
    path = out / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _files(folder):
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())


def test_disk_check_stops_before_any_output(one_second):
    out, folder = one_second
    before = _files(folder)
    proc = snakemake(out, config=_config(out, reserve_gb=1e9), check=False)
    assert proc.returncode != 0
    msg = proc.stdout + proc.stderr
    assert "not enough free disk space; nothing was written" in msg
    assert "the audio chain needs" in msg and "are free" in msg
    assert _files(folder) == before  # no product, no log, no benchmark


def test_temporary_intermediate_audio(one_second):
    out, folder = one_second
    cfg = _config(out, keep_split=False, keep_cropped=False, keep_hpss=False)
    snakemake(out, config=cfg)
    audio = folder / "audio"
    for stage in ("original", "cropped_to_video", "hpss"):
        assert not list((audio / stage).glob("*.wav")), stage
    assert len(list((audio / "hpss_filtered").glob("*_hpss_filtered.wav"))) == 24
    assert len(list((audio / "hpss_filtered").glob("*.mmap"))) == 1
    # the run is complete: nothing pending although the temporary files are gone
    dry = snakemake(out, "-n", config=cfg)
    assert "Nothing to be done" in dry.stdout + dry.stderr
