"""The usvflow command runs steps on given files outside Snakemake, with clear errors."""

import numpy as np
import soundfile as sf
import yaml

from usvflow.cli import main


def test_validate_reports_bad_config(tmp_path, capsys):
    sheet = tmp_path / "sessions.tsv"
    sheet.write_text("session_id\tfolder\tkind\n20250430_145017\tData/x\texperiment\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"sessions": str(sheet), "audio": {"sample_rate": 1000}}))
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "audio.sample_rate" in err and "1000" in err and ">= 192000" in err


def test_audio_steps_on_files(tmp_path):
    rng = np.random.default_rng(0)
    fs = 250000
    t = np.arange(fs // 5) / fs
    x = (3000 * np.sin(2 * np.pi * 60000 * t) + rng.normal(0, 100, t.size)).astype(np.int16)
    sf.write(tmp_path / "a.wav", x, fs, subtype="PCM_16")
    assert main(["hpss", str(tmp_path / "a.wav"), "-o", str(tmp_path / "h.wav")]) == 0
    assert main(["highpass", str(tmp_path / "h.wav"), "-o", str(tmp_path / "f.wav")]) == 0
    y, _ = sf.read(tmp_path / "f.wav", dtype="int16")
    assert y.shape == x.shape
    # the 60 kHz tone passes both steps (harmonic, above the 30 kHz cut-off)
    mid = slice(5000, -5000)
    assert (
        abs(np.std(y[mid].astype(float)) / np.std(3000 * np.sin(2 * np.pi * 60000 * t[mid])) - 1)
        < 0.1
    )
    out = tmp_path / "mm"
    assert (
        main(
            [
                "memmap",
                str(tmp_path / "f.wav"),
                str(tmp_path / "h.wav"),
                "-o",
                str(out),
                "--stamp",
                "250430145017",
            ]
        )
        == 0
    )
    assert (
        len(
            list(
                out.glob("250430145017_concatenated_audio_hpss_filtered_250000_50000_2_int16.mmap")
            )
        )
        == 1
    )


def test_missing_input_is_a_clear_error(tmp_path, capsys):
    assert main(["hpss", str(tmp_path / "nope.wav"), "-o", str(tmp_path / "o.wav")]) == 2
    assert "nope.wav" in capsys.readouterr().err
    assert not (tmp_path / "o.wav").exists()


def test_version(capsys):
    import pytest

    from usvflow import __version__

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"usvflow {__version__}"


def test_every_argument_has_help():
    import argparse

    from usvflow.cli import build_parser

    def walk(
        parser, path
    ):  # every argument and subcommand, at any depth (check-model's subparsers too)
        for a in parser._actions:
            if isinstance(a, argparse._SubParsersAction):
                helps = {c.dest: c.help for c in a._choices_actions}
                for name, sub in a.choices.items():
                    if not helps.get(name):
                        yield f"{path} {name} (command)"
                    yield from walk(sub, f"{path} {name}")
            elif not a.help and not isinstance(a, argparse._HelpAction):
                yield f"{path} {a.dest}"

    assert list(walk(build_parser(), "usvflow")) == []


def test_train_defaults_are_the_config_schema_defaults():
    from pathlib import Path

    from usvflow.cli import build_parser
    from usvflow.io.config import load_schema

    schema = load_schema(
        Path(__file__).resolve().parents[1] / "workflow/schemas/config.schema.yaml"
    )
    train = schema["properties"]["call_types"]["properties"]["train"]["properties"]
    a = build_parser().parse_args(["train-calltypes", "DATA", "-o", "MODEL"])
    assert a.patience == train["patience"]["default"] == 6
    assert a.epochs == train["max_epochs"]["default"]
    assert a.batch_size == train["batch_size"]["default"]
    assert a.learning_rate == train["learning_rate"]["default"]


def test_detect_usvs_options_are_the_config_keys(tmp_path, capsys):
    """`usvflow detect-usvs` takes usv_detection.builtin's keys as options (generated from the schema)."""
    rng = np.random.default_rng(1)
    fs = 250000
    x = rng.normal(0, 60, fs // 2)
    t = np.arange(int(0.05 * fs)) / fs
    k = int(0.2 * fs)
    x[k : k + t.size] += 2000 * np.sin(2 * np.pi * (60000 * t + 100000 * t**2))  # a 50-ms upsweep
    sf.write(tmp_path / "a.wav", x.astype(np.int16), fs, subtype="PCM_16")
    out = tmp_path / "a.csv"
    assert main(["detect-usvs", str(tmp_path / "a.wav"), "-o", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 2  # header + the call
    assert (
        main(["detect-usvs", str(tmp_path / "a.wav"), "-o", str(out), "--thr-high-db", "90"]) == 0
    )
    assert len(out.read_text().splitlines()) == 1  # no call that loud above the noise
