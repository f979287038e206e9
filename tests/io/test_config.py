from pathlib import Path

import pytest
import yaml

from usvflow.io.config import ConfigError, read_sessions, validate_config

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "workflow" / "schemas"
CONFIG_SCHEMA = SCHEMAS / "config.schema.yaml"
SHEET_SCHEMA = SCHEMAS / "sessions.schema.yaml"


def shipped_config():
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def test_shipped_config_is_valid_and_complete():
    cfg = shipped_config()
    validate_config(cfg, CONFIG_SCHEMA)
    # every key of the shipped config is declared with a description and a default in the schema
    schema = yaml.safe_load(CONFIG_SCHEMA.read_text())

    def walk(node, sch, path):
        for k, v in node.items():
            assert k in sch.get("properties", {}), f"{path}{k} not in schema"
            sub = sch["properties"][k]
            assert "description" in sub and "default" in sub, f"{path}{k} lacks description/default"
            if isinstance(v, dict) and "properties" in sub:
                walk(v, sub, f"{path}{k}.")

    walk(cfg, schema, "")


def test_defaults_equal_shipped_values():
    """The schema defaults are the values of config/config.yaml (except cohort-specific tables)."""
    filled = validate_config({}, CONFIG_SCHEMA)
    shipped = validate_config(shipped_config(), CONFIG_SCHEMA)
    filled["sync"]["av"]["led_pixels"] = shipped["sync"]["av"]["led_pixels"]
    filled["ephys"]["calibrated_sample_rates"] = shipped["ephys"]["calibrated_sample_rates"]
    assert filled == shipped


@pytest.mark.parametrize(
    "patch, words",
    [
        ({"audio": {"hpss": {"power": "four"}}}, ["audio.hpss.power", "'four'", "number"]),
        (
            {"audio": {"crop": {"trigger_device": "r"}}},
            ["audio.crop.trigger_device", "'r'", "'both'"],
        ),
        ({"video": {"constant_rate_factor": 99}}, ["video.constant_rate_factor", "99", "<= 51"]),
        ({"audio": {"hpss": {"powr": 4}}}, ["audio.hpss.powr", "not a known setting", "power"]),
        ({"stages": ["vidoe"]}, ["stages.0", "'vidoe'", "'video'"]),
    ],
)
def test_invalid_config_names_key_value_and_expectation(patch, words):
    with pytest.raises(ConfigError) as exc:
        validate_config(patch, CONFIG_SCHEMA)
    msg = str(exc.value)
    for w in words:
        assert w in msg, msg
    assert "\n" not in msg


def write_sheet(
    tmp_path,
    rows,
    header="session_id\tfolder\tkind\tcalibration_session\texperimental_code\tephys_group",
):
    p = tmp_path / "sessions.tsv"
    p.write_text(header + "\n" + "\n".join(rows) + "\n")
    return p


def test_sheet_reads_in_order_and_resolves_folders(tmp_path):
    p = write_sheet(
        tmp_path,
        [
            "20250430_142017\tData/20250430_142017\tcalibration\t\t\t",
            "# a comment line",
            "20250430_155017\tData/20250430_155017\texperiment\t20250430_142017\tE2MF\tday1",
            "20250430_145017\tData/20250430_145017\texperiment\t20250430_142017\tE2MF\tday1",
        ],
    )
    df = read_sessions(p, SHEET_SCHEMA)
    assert list(df.index) == ["20250430_142017", "20250430_155017", "20250430_145017"]
    assert df.loc["20250430_145017", "folder"] == str(
        (tmp_path / "Data" / "20250430_145017").resolve()
    )


@pytest.mark.parametrize(
    "row, words",
    [
        ("2025043_145017\tx\texperiment\t\t\t", ["row 2", "session_id", "'2025043_145017'"]),
        ("20250430_145017\tx\tlive\t\t\t", ["row 2", "kind", "'live'", "'experiment'"]),
        (
            "20250430_145017\tx\texperiment\t20250430_000000\t\t",
            ["row 2", "calibration_session", "not a session_id"],
        ),
    ],
)
def test_invalid_sheet_names_row_column_value(tmp_path, row, words):
    p = write_sheet(tmp_path, [row])
    with pytest.raises(ConfigError) as exc:
        read_sessions(p, SHEET_SCHEMA)
    for w in words:
        assert w in str(exc.value)
    assert str(p) in str(exc.value)


def test_sheet_duplicate_and_unknown_column(tmp_path):
    p = write_sheet(
        tmp_path, ["20250430_145017\ta\texperiment\t\t\t", "20250430_145017\tb\texperiment\t\t\t"]
    )
    with pytest.raises(ConfigError, match="more than once"):
        read_sessions(p, SHEET_SCHEMA)
    p = write_sheet(
        tmp_path, ["20250430_145017\ta\texperiment"], header="session_id\tfolder\tkinds"
    )
    with pytest.raises(ConfigError, match="unknown column 'kinds'"):
        read_sessions(p, SHEET_SCHEMA)


def test_relative_paths_are_relative_to_the_config_file_that_sets_them(tmp_path):
    from usvflow.io.config import PATH_SETTINGS, resolve_config_paths

    cohort = tmp_path / "cohort"
    overlay = tmp_path / "overlays" / "gpu.yaml"
    cohort.mkdir()
    overlay.parent.mkdir()
    (cohort / "config.yaml").write_text(
        "sessions: sessions.tsv\noutput_root: ../products\nephys_root: /abs/EPHYS\n"
        "usv_detection: {das: {executable: das, model_directory: models/das}}\n"
        "call_types: {model_dir: ~/ct}\n"
    )
    overlay.write_text(
        "usv_detection: {das: {model_directory: ../das_models}}\n"
        "assignment: {vocalocator: {python: venvs/vcl/bin/python}}\n"
    )
    merged = {}
    for f in (cohort / "config.yaml", overlay):
        for k, v in yaml.safe_load(f.read_text()).items():
            merged[k] = {**merged.get(k, {}), **v} if isinstance(v, dict) else v
    merged["usv_detection"]["das"] = {"executable": "das", "model_directory": "../das_models"}
    merged["pose"] = {"sleap": {"centroid_model": "given/on/the/command/line"}}
    cfg = resolve_config_paths(merged, [cohort / "config.yaml", overlay])
    assert cfg["sessions"] == str(cohort / "sessions.tsv")
    assert cfg["output_root"] == str(tmp_path / "products")
    assert cfg["ephys_root"] == "/abs/EPHYS"
    assert cfg["call_types"]["model_dir"] == "~/ct"  # absolute once expanded: left as written
    # the overlay's value wins and is relative to the overlay
    assert cfg["usv_detection"]["das"]["model_directory"] == str(tmp_path / "das_models")
    assert cfg["usv_detection"]["das"]["executable"] == "das"  # a command name, looked up on PATH
    assert cfg["assignment"]["vocalocator"]["python"] == str(
        overlay.parent / "venvs/vcl/bin/python"
    )
    # a value that is not any file's (Snakemake's --config) is left relative to the working directory
    assert cfg["pose"]["sleap"]["centroid_model"] == "given/on/the/command/line"
    assert merged["sessions"] == "sessions.tsv"  # the input is not modified
    assert "sessions" in PATH_SETTINGS


def test_validate_resolves_the_sheet_relative_to_the_config(tmp_path, monkeypatch, capsys):
    from usvflow.cli import main

    cohort = tmp_path / "cohort"
    (cohort / "Data" / "20250430_145017").mkdir(parents=True)
    (cohort / "config.yaml").write_text("sessions: sessions.tsv\n")
    # trailing tabs after the last column (as editors and spreadsheets leave them) are tolerated
    (cohort / "sessions.tsv").write_text(
        "session_id\tfolder\tkind\tcalibration_session\n"
        "20250430_145017\tData/20250430_145017\texperiment\t\t\t\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "cohort/config.yaml"]) == 0
    out = capsys.readouterr().out
    assert "cohort/config.yaml: valid" in out
    assert "20250430_145017 (experiment): run nothing" in out  # the empty session folder was found


def test_sheet_row_with_more_values_than_columns(tmp_path):
    sheet = tmp_path / "s.tsv"
    sheet.write_text("session_id\tfolder\tkind\n20250430_145017\tx\texperiment\tE2MF\n")
    with pytest.raises(ConfigError, match=r"row 2: 4 or more fields for 3 columns.*'E2MF'"):
        read_sessions(sheet, SHEET_SCHEMA)


def test_dataclass_defaults_come_from_the_schema():
    """A settings dataclass under @defaults_from_schema takes each default from the schema (once)."""
    import dataclasses

    from usvflow.io.config import defaults_from_schema, schema_defaults
    from usvflow.usv.localize import LocalizeParams

    section = schema_defaults("assignment.builtin")
    params = LocalizeParams()
    assert params.sigma_m == section["sigma_m"]
    assert params.z_levels_m == tuple(section["z_levels_m"])  # frozen: a tuple
    assert isinstance(params.f_lo_hz, float)  # YAML's 30000 on a float field

    with pytest.raises(TypeError, match="assignment.builtin.sigma_m"):

        @dataclasses.dataclass
        @defaults_from_schema("assignment.builtin")
        class Twice:
            sigma_m: float = 0.015
