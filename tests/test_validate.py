"""Bad inputs: ``usvflow validate`` (the workflow's own start-up, as a dry-run) stops each one with one
message naming the file or setting and what is wrong, without a traceback.

The table of these cases in README.md ("Bad inputs and what you see") is generated from this test:
``USVFLOW_UPDATE_README=1 pytest tests/test_validate.py`` rewrites it; otherwise the test fails when
the README's table differs from the messages the cases produce.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

from usvflow.cli import main

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN = "<!-- BEGIN GENERATED: tests/test_validate.py -->"
END = "<!-- END GENERATED: tests/test_validate.py -->"
SID = "20250430_145017"


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    from usvflow.simulate.cohort import simulate_cohort

    out = tmp_path_factory.mktemp("validate") / "cohort"
    simulate_cohort(
        out,
        sessions=1,
        seconds=1.0,
        seed=3,
        calibration=False,
        pose=False,
        progress=False,
    )
    return out


def _cfg(root: Path) -> dict:
    return yaml.safe_load((root / "config.yaml").read_text())


def _write_cfg(root: Path, cfg: dict) -> list[Path]:
    (root / "config.yaml").write_text(yaml.safe_dump(cfg))
    return [root / "config.yaml"]


def _session(root: Path) -> Path:
    return root / "Data" / SID


def _overlay(root: Path, text: str) -> list[Path]:
    p = root / "overlay.yaml"
    p.write_text(text)
    return [root / "config.yaml", p]


def yaml_syntax(root):
    return _overlay(root, "stages: [video, audio\nvideo:\n  constant_rate_factor: 18\n")


def yaml_tab(root):
    return _overlay(root, "video:\n\tconstant_rate_factor: 18\n")


def unknown_key(root):
    return _overlay(root, "audio:\n  sample_rte: 250000\n")


def out_of_range(root):
    return _overlay(root, "audio:\n  sample_rate: 1000\n")


def unknown_stage(root):
    return _overlay(root, "stages: [video, vidoe]\n")


def sheet_missing(root):
    cfg = _cfg(root)
    cfg["sessions"] = str(root / "sesions.tsv")
    return _write_cfg(root, cfg)


def sheet_unknown_column(root):
    p = root / "sessions.tsv"
    p.write_text(p.read_text().replace("ephys_group", "ephys_grp", 1))
    return [root / "config.yaml"]


def sheet_duplicate(root):
    p = root / "sessions.tsv"
    lines = p.read_text().splitlines()
    p.write_text("\n".join([*lines, lines[-1]]) + "\n")
    return [root / "config.yaml"]


def folder_missing(root):
    shutil.rmtree(_session(root))
    return [root / "config.yaml"]


def chunk_without_npz(root):
    npz = sorted(_session(root).glob("video/*/*.npz"))[0]
    npz.unlink()
    return [root / "config.yaml"]


def camera_without_metadata(root):
    sorted(_session(root).glob("video/*/metadata.yaml"))[0].unlink()
    return [root / "config.yaml"]


def truncated_wav(root):
    wav = sorted(_session(root).glob("audio/original_mc/m_*.wav"))[0]
    with open(wav, "r+b") as fh:
        fh.truncate(wav.stat().st_size // 2)
    return [root / "config.yaml"]


def unknown_device(root):
    wav = sorted(_session(root).glob("audio/original_mc/m_*.wav"))[0]
    wav.rename(wav.with_name("x" + wav.name[1:]))
    return [root / "config.yaml"]


def wrong_rate(root):
    return _overlay(root, "audio:\n  sample_rate: 300000\n")


def calltypes_without_model(root):
    return _overlay(root, "stages: [video, audio, usv, calltypes]\n")


def das_without_model(root):
    return _overlay(
        root,
        "stages: [video, audio, usv]\nusv_detection:\n  method: das\n"
        f"  das:\n    model_directory: {root / 'no_model'}\n",
    )


def calltypes_model_missing(root):
    return _overlay(
        root,
        f"stages: [video, audio, usv, calltypes]\ncall_types:\n  model_dir: {root / 'model'}\n",
    )


def led_outside_frame(root):
    cfg = _cfg(root)
    serial = cfg["sync"]["av"]["sync_camera_serials"][0]
    version = cfg["sync"]["av"]["led_px_version"]
    cfg["stages"] = ["video", "audio", "sync"]
    cfg["sync"]["av"]["led_pixels"][version][serial]["LED_top"] = [600, 150]
    return _write_cfg(root, cfg)


# (case, what is wrong, substrings the message must contain)
CASES = [
    (
        yaml_syntax,
        "YAML syntax error in a config file",
        ["overlay.yaml", "line 2", "YAML syntax error"],
    ),
    (
        yaml_tab,
        "a tab used for indentation in a config file",
        ["overlay.yaml", "line 2", "column 1"],
    ),
    (
        unknown_key,
        "a misspelt setting",
        ["sample_rte", "not a known setting", "sample_rate"],
    ),
    (out_of_range, "a value out of range", ["audio.sample_rate", "1000", ">= 192000"]),
    (unknown_stage, "an unknown stage", ["stages", "vidoe"]),
    (sheet_missing, "the sessions sheet does not exist", ["sesions.tsv", "not found"]),
    (sheet_unknown_column, "a misspelt sheet column", ["ephys_grp", "unknown column"]),
    (sheet_duplicate, "a session listed twice", [SID, "more than once"]),
    (folder_missing, "a session folder that does not exist", [SID, "does not exist"]),
    (
        chunk_without_npz,
        "a camera chunk without its .npz",
        [".mp4", "no frame metadata"],
    ),
    (
        camera_without_metadata,
        "a camera folder without metadata.yaml",
        ["metadata.yaml"],
    ),
    (truncated_wav, "a truncated WAV", ["truncated WAV", "m_"]),
    (unknown_device, "an audio file of an unknown device", ["x_", "audio.devices"]),
    (
        wrong_rate,
        "raw audio at another rate than audio.sample_rate",
        ["300000", "audio.sample_rate"],
    ),
    (
        calltypes_without_model,
        "stage calltypes without call_types.model_dir",
        ["call_types.model_dir"],
    ),
    (
        calltypes_model_missing,
        "call_types.model_dir without a trained model",
        ["model.pt"],
    ),
    (
        led_outside_frame,
        "LED pixels outside the sync camera's frames",
        ["LED_top", "[600, 150]", "128x160"],
    ),
    (das_without_model, "DAS detection without its model files", ["no_model"]),
]


def _case_id(case):
    return case[0].__name__


def run_case(cohort, tmp_path, case, capsys):
    fn, _, _ = case
    root = tmp_path / "c"
    shutil.copytree(cohort, root)
    cfgs = [str(p) for p in fn(root)]
    for c in cfgs:  # the copied config points at the fixture's sheet
        Path(c).write_text(Path(c).read_text().replace(str(cohort), str(root)))
    capsys.readouterr()
    rc = main(["validate", *cfgs])
    err = capsys.readouterr().err.strip()
    return rc, err.replace(str(root), "<cohort>")


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_validate_catches(cohort, tmp_path, case, capsys):
    rc, err = run_case(cohort, tmp_path, case, capsys)
    assert rc == 2, err
    assert err.startswith("usvflow validate: error: "), err
    assert "Traceback" not in err and '  File "' not in err, err
    assert len(err.splitlines()) == 1, err
    for s in case[2]:
        assert s in err, (s, err)
    _MESSAGES[case[0].__name__] = err


_MESSAGES: dict[str, str] = {}


def test_valid_cohort(cohort, tmp_path, capsys):
    root = tmp_path / "c"
    shutil.copytree(cohort, root)
    cfg = root / "config.yaml"
    cfg.write_text(cfg.read_text().replace(str(cohort), str(root)))
    assert main(["validate", str(cfg)]) == 0
    assert "valid" in capsys.readouterr().out


def test_readme_table(cohort, tmp_path_factory, capsys):
    """README.md's table lists every case with the message this test saw."""
    rows = ["| bad input | what `usvflow validate` (and the run) says |", "|---|---|"]
    for case in CASES:
        msg = _MESSAGES.get(case[0].__name__)
        if msg is None:  # run on its own: compute it
            rc, msg = run_case(cohort, tmp_path_factory.mktemp(case[0].__name__), case, capsys)
        msg = msg.removeprefix("usvflow validate: error: ").replace("|", "\\|")
        msg = re.sub(r"/\S*/(?=validate\d*/)", "/…/", msg)
        rows.append(f"| {case[1]} | `` {msg} `` |")
    block = f"{BEGIN}\n" + "\n".join(rows) + f"\n{END}"
    text = README.read_text()
    assert BEGIN in text and END in text, "README.md lacks the generated table's markers"
    head, rest = text.split(BEGIN, 1)
    new = head + block + rest.split(END, 1)[1]
    if os.environ.get("USVFLOW_UPDATE_README") == "1":
        README.write_text(new)
        return
    assert new == text, "README.md's table of bad inputs is out of date (USVFLOW_UPDATE_README=1)"
