"""The model-version guard (usvflow.modelcheck / `usvflow check-model`): a model trained with a release
the env cannot load stops the rule with a message naming both versions; vocalocator's WEIGHTS_PATH is
resolved from the model folder."""

import json
import stat
import sys

import pytest

from usvflow import modelcheck
from usvflow.cli import main as cli_main


def fake_env(tmp_path, dist, version):
    """A 'python' whose importlib.metadata sees ``dist`` at ``version`` (a dist-info on its path)."""
    site = tmp_path / f"site-{dist}-{version}"
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    py = tmp_path / f"bin-{dist}-{version}" / "python"
    py.parent.mkdir()
    py.write_text(f'#!/bin/sh\nPYTHONPATH="{site}" exec "{sys.executable}" "$@"\n')
    py.chmod(py.stat().st_mode | stat.S_IEXEC)
    return py


@pytest.mark.parametrize(
    "model, env, ok",
    [("0.3.0", "0.3.0", True), ("0.3.5", "0.3.0", False), ("0.3.0", "0.3.5", True), ("0.2.9", "0.3.0", False),
     ("4.1.7", "4.1.7", True), ("4.0.1", "4.1.7", True), ("5.0", "4.1.7", False), ("1.0.0a4", "0.32.13", False),
     ("0.32.13", "0.32.13", True), ("0.32.10", "0.32.13", True)],
)  # fmt: skip
def test_compatible(model, env, ok):
    assert modelcheck.compatible(model, env) is ok


def test_sleap_model_newer_than_env_stops_naming_both(tmp_path, capsys):
    model = tmp_path / "centroid"
    model.mkdir()
    (model / "training_config.yaml").write_text(
        "data_config: {}\nmodel_config: {}\nsleap_nn_version: 0.3.5\n"
    )
    py = fake_env(tmp_path, "sleap-nn", "0.3.0")
    assert (
        modelcheck.main(["sleap", str(model), "--python", str(py)]) == modelcheck.EXIT_INCOMPATIBLE
    )
    err = capsys.readouterr().err
    assert "sleap-nn 0.3.5" in err and "sleap-nn 0.3.0" in err
    # the same model under an env at its own version passes
    ok = fake_env(tmp_path, "sleap-nn", "0.3.5")
    assert modelcheck.main(["sleap", str(model), "--python", str(ok)]) == 0
    # through the executable of the env (its sibling python), as the rule calls it
    exe = py.with_name("sleap-nn")
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    assert modelcheck.main(["sleap", str(model / "training_config.yaml"), "--exe", str(exe)]) == 2
    # and on the command line
    with pytest.raises(SystemExit) as e:
        cli_main(["check-model", "sleap", str(model), "--python", str(py)])
    assert e.value.code == 2


def test_das_params_and_vocalocator_config(tmp_path, capsys):
    (tmp_path / "m_params.yaml").write_text("samplerate_x_Hz: 250000\nversion: 1.0.0a4\n")
    py = fake_env(tmp_path, "das", "0.32.13")
    assert modelcheck.main(["das", str(tmp_path / "m_params.yaml"), "--python", str(py)]) == 2
    assert "das 1.0.0a4" in capsys.readouterr().err
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"VERSION": "1.2.0", "WEIGHTS_PATH": "w.pt"}))
    vpy = fake_env(tmp_path, "vocalocator", "1.1.0")
    assert modelcheck.main(["vocalocator", str(cfg), "--python", str(vpy)]) == 2
    assert "vocalocator 1.2.0" in capsys.readouterr().err


def test_unknown_versions_pass_with_a_warning(tmp_path, capsys):
    (tmp_path / "m_params.yaml").write_text("samplerate_x_Hz: 250000\n")
    py = fake_env(tmp_path, "das", "0.32.13")
    assert modelcheck.main(["das", str(tmp_path / "m_params.yaml"), "--python", str(py)]) == 0
    assert "records no das version" in capsys.readouterr().out
    stand_in = tmp_path / "das"
    stand_in.write_text("#!/usr/bin/env python3\n")
    (tmp_path / "v_params.yaml").write_text("version: 0.32.13\n")
    assert modelcheck.main(["das", str(tmp_path / "v_params.yaml"), "--exe", str(stand_in)]) == 0
    assert "version is unknown" in capsys.readouterr().out


def test_weights_path_resolved_from_the_model_folder(tmp_path):
    model = tmp_path / "elsewhere" / "model"
    model.mkdir(parents=True)
    (model / "best_weights.pt").write_bytes(b"w")
    # the trainer records the path relative to the folder training ran in
    (model / "config.json").write_text(
        json.dumps({"WEIGHTS_PATH": "trained_models/run1/best_weights.pt", "DATA": {}})
    )
    out = tmp_path / "resolved.json"
    py = fake_env(tmp_path, "vocalocator", "1.1.0")
    assert (
        modelcheck.main(
            [
                "vocalocator",
                str(model / "config.json"),
                "--python",
                str(py),
                "--write-config",
                str(out),
            ]
        )
        == 0
    )
    cfg = json.loads(out.read_text())
    assert cfg["WEIGHTS_PATH"] == str((model / "best_weights.pt").resolve()) and cfg["DATA"] == {}
    (model / "best_weights.pt").unlink()
    with pytest.raises(modelcheck.ModelVersionError, match="not found"):
        modelcheck.resolve_weights(model / "config.json")
