"""The tool env files (workflow/envs/*.yaml) are installable as written: matched torch/torchaudio/
torchvision pins, every import of a tool listed, a pinned and vendored commit for the git install, and
conda parts that carry only what pip cannot (Python, ffmpeg, CUDA runtime)."""

import ast
import re
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from .venvs import ENVS, _vendored, env_spec, vendor_dir

TOOLS = ["das", "kilosort", "sleap", "vocalocator", "vocalocator-ssl"]
CONDA_OK = re.compile(r"(python|pip|git|ffmpeg|cudatoolkit|cudnn|cuda-runtime|cuda-version)(=.*)?")


def pins(tool):
    out = {}
    for req in env_spec(tool)["pip"]:
        m = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*==\s*([0-9][^\s;]*)\s*", req)
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


@pytest.mark.parametrize("tool", TOOLS)
def test_pip_part_is_pinned(tool):
    for req in env_spec(tool)["pip"]:
        assert re.search(r"==\s*\d|@ git\+\S+@[0-9a-f]{40}", req), f"{tool}: {req!r} is not pinned"


@pytest.mark.parametrize("tool", TOOLS)
def test_conda_part_is_minimal(tool):
    doc = yaml.safe_load((ENVS / f"{tool}.yaml").read_text())
    extra = [d for d in doc["dependencies"] if isinstance(d, str) and not CONDA_OK.fullmatch(d)]
    assert not extra, (
        f"{tool}.yaml: conda packages beyond python/ffmpeg/CUDA (untested here): {extra}"
    )


@pytest.mark.parametrize("tool", [p.stem for p in sorted(ENVS.glob("*.yaml"))])
def test_torch_companions_match(tool):
    """torchaudio is released with torch (same X.Y); torchvision 0.(Y+15) goes with torch 2.Y."""
    p = pins(tool)
    if "torchaudio" in p or "torchvision" in p:
        assert "torch" in p, f"{tool}: torch must be pinned beside torchaudio/torchvision"
    torch = tuple(int(x) for x in p.get("torch", "0.0").split(".")[:2])
    if "torchaudio" in p:
        assert tuple(int(x) for x in p["torchaudio"].split(".")[:2]) == torch, (tool, p)
    if "torchvision" in p:
        assert tuple(int(x) for x in p["torchvision"].split(".")[:2]) == (0, torch[1] + 15), (
            tool,
            p,
        )


@pytest.mark.parametrize("tool", ["vocalocator", "vocalocator-ssl"])
def test_torchaudio_pinned_with_torch(tool):
    p = pins(tool)
    assert "torchaudio" in p and p["torchaudio"].split(".")[:2] == p["torch"].split(".")[:2], p


def test_vocalocator_ssl_git_commit_and_name():
    git = [r for r in env_spec("vocalocator-ssl")["pip"] if "git+" in r]
    assert len(git) == 1
    m = re.fullmatch(
        r"\s*([\w.-]+)\s*@\s*git\+https://github.com/Aramist/vocalocator-ssl@([0-9a-f]{40})", git[0]
    )
    assert m, git[0]
    # pip checks the requirement's name against the project's: vocalocator-ssl's is "vocalocatorssl"
    assert m.group(1) == "vocalocatorssl"


def _vendor_tar():
    tars = sorted(vendor_dir().glob("vocalocator-ssl-*.tar.gz"))
    assert tars, f"no vocalocator-ssl snapshot in {vendor_dir()}"
    return tars[0]


def test_vendored_snapshot_is_the_pinned_commit():
    tar = _vendor_tar()
    git = next(r for r in env_spec("vocalocator-ssl")["pip"] if "git+" in r)
    assert _vendored(git) == str(tar)


def test_vocalocator_ssl_imports_are_all_installed():
    """Every third-party module the tool imports is declared by it or listed in the env file."""
    with tarfile.open(_vendor_tar()) as tf:
        files = {m.name: tf.extractfile(m).read() for m in tf.getmembers() if m.isfile()}
    pyproject = next(v for k, v in files.items() if k.endswith("/pyproject.toml")).decode()
    block = re.search(r"dependencies\s*=\s*\[(.*?)\]", pyproject, re.S).group(1)
    declared = {
        re.split(r"[<>=!~ \[]", d.strip().strip('"'))[0].lower()
        for d in block.split(",")
        if d.strip()
    }
    listed = {
        re.split(r"[<>=!~ @\[]", r.strip().strip('"'))[0].lower()
        for r in env_spec("vocalocator-ssl")["pip"]
    }
    imported = set()
    for name, data in files.items():
        if name.endswith(".py"):
            for node in ast.walk(ast.parse(data)):
                if isinstance(node, ast.Import):
                    imported |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    imported.add(node.module.split(".")[0])
    imported.discard("__future__")
    third_party = {
        m for m in imported if m not in sys.stdlib_module_names and m != "vocalocatorssl"
    }
    provided = declared | listed | {"torchmetrics"}  # torchmetrics: a dependency of lightning
    missing = sorted(m for m in third_party if m.lower() not in provided)
    assert not missing, f"imported by vocalocator-ssl but installed by nothing: {missing}"


def test_the_checks_reject_the_env_files_as_first_written(monkeypatch):
    """The env files that broke when installed (torch and torchaudio from different builds; torchaudio
    imported but not listed) fail these checks."""
    from . import venvs

    old = Path(__file__).parent / "data" / "envs_as_first_written"
    monkeypatch.setattr(venvs, "ENVS", old)
    for tool in ("vocalocator", "vocalocator-ssl"):
        with pytest.raises(AssertionError):
            test_torchaudio_pinned_with_torch(tool)
    with pytest.raises(AssertionError, match="torchaudio"):
        test_vocalocator_ssl_imports_are_all_installed()
