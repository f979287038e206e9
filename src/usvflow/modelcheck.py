"""Can a tool env load a trained model? The version a model was trained with against the env's.

Each GPU rule runs this module (with the workflow's Python) before inference:

    python -m usvflow.modelcheck das|sleap|vocalocator|vocalocator-ssl MODEL_FILE (--exe EXE | --python PY)

It reads the version the model records (DAS ``<base>_params.yaml``, sleap-nn ``training_config.yaml``,
vocalocator ``config.json``) and the version of the tool installed in the env's Python (``--python``, or
the Python of the env that holds the executable ``--exe``), and stops with exit status 2 and a message
naming both when the env cannot load the model: the model was trained with a newer release than the env's
(sleap-nn 0.3.5 models fail under 0.3.0), or with another major series (for 0.x releases, another minor
series). A model that records no version, or an executable that is not a Python env's, passes with a
warning. For the legacy vocalocator, ``--write-config`` writes a copy of ``config.json`` whose
``WEIGHTS_PATH`` is resolved from the model folder (the trainer records it relative to the folder training
ran in). ``usvflow check-model`` is the same check on the command line.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

# tool -> (installed distribution, keys under which a model records the version it was trained with)
TOOLS = {
    "das": ("das", ("das_version", "version", "__version__")),
    "sleap": ("sleap-nn", ("sleap_nn_version", "version", "__version__")),
    "vocalocator": ("vocalocator", ("VERSION", "vocalocator_version", "version", "__version__")),
    "vocalocator-ssl": (
        "vocalocatorssl",
        ("VERSION", "vocalocatorssl_version", "version", "__version__"),
    ),
}

EXIT_INCOMPATIBLE = 2


class ModelVersionError(RuntimeError):
    pass


def parse_version(text: str) -> tuple[int, ...]:
    """Leading numeric release of a version string ("0.3.5", "1.0.0a4", "v4.1.7" -> (4, 1, 7))."""
    m = re.match(r"\s*v?(\d+(?:\.\d+)*)", str(text))
    if not m:
        raise ValueError(f"not a version: {text!r}")
    return tuple(int(p) for p in m.group(1).split("."))


def compatible(model_version: str, env_version: str) -> bool:
    """True when an env at ``env_version`` can load a model saved by ``model_version``."""
    m, e = parse_version(model_version), parse_version(env_version)
    series = 2 if (m[:1] == (0,) or e[:1] == (0,)) else 1
    pad = max(len(m), len(e))
    m_full, e_full = m + (0,) * (pad - len(m)), e + (0,) * (pad - len(e))
    return m[:series] == e[:series] and m_full <= e_full


def _load(path: Path) -> dict:
    text = path.read_text()
    if path.suffix == ".json":
        return json.loads(text)
    try:
        import yaml
    except ImportError:  # flat "key: value" lines are enough to find a version
        return dict(re.findall(r"(?m)^\s*([\w.-]+)\s*:\s*['\"]?([^'\"\n#]+?)['\"]?\s*$", text))
    return yaml.safe_load(text) or {}


def _find(doc, keys) -> str | None:
    """The first of ``keys`` holding a version string, searched breadth-first through nested maps."""
    level = [doc]
    while level:
        for key in keys:
            for d in level:
                v = d.get(key) if isinstance(d, dict) else None
                if isinstance(v, (str, int, float)) and re.match(r"\s*v?\d+(\.\d+)+", str(v)):
                    return str(v).strip()
        level = [
            v
            for d in level
            if isinstance(d, dict)
            for v in d.values()
            if isinstance(v, (dict, list))
        ]
        level = [x for v in level for x in (v if isinstance(v, list) else [v])]
    return None


MODEL_FILES = {
    "das": ("*_params.yaml",),
    "sleap": ("training_config.yaml", "training_config.json"),
    "vocalocator": ("config.json",),
    "vocalocator-ssl": ("config.json",),
}


def model_file(tool: str, model: str | os.PathLike) -> Path | None:
    """The file recording the version: ``model`` itself, or the first of MODEL_FILES in a model folder."""
    model = Path(model)
    if not model.is_dir():
        return model
    for pattern in MODEL_FILES[tool]:
        found = sorted(model.glob(pattern))
        if found:
            return found[0]
    return None


def model_version(tool: str, model: str | os.PathLike) -> str | None:
    """The version of the tool that trained the model, as its model file records it (None if not)."""
    path = model_file(tool, model)
    if path is None:
        return None
    return _find(_load(path), TOOLS[tool][1])


def python_of(exe: str) -> str | None:
    """The Python of the env holding the executable ``exe`` (its sibling ``python``, else its shebang's)."""
    path = shutil.which(exe)
    if path is None:
        return None
    sibling = Path(path).parent / "python"
    if sibling.exists():
        return str(sibling)
    with open(path, "rb") as f:
        first = f.readline(512).decode(errors="replace")
    m = re.match(r"#!\s*(\S*python[\d.]*)\s*$", first)
    return m.group(1) if m else None


def env_version(tool: str, python: str | None = None) -> str | None:
    """The version of the tool installed in ``python`` (default: the running Python); None if absent."""
    dist = TOOLS[tool][0]
    if python is None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    try:
        proc = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def check(tool: str, model_file: str | os.PathLike, installed: str | None) -> str:
    """Raise ModelVersionError naming both versions if an env with ``installed`` cannot load the model;
    else a note (a warning when either version is unknown)."""
    dist = TOOLS[tool][0]
    trained = model_version(tool, model_file)
    if installed is None:
        rec = f"records {dist} {trained}" if trained else f"records no {dist} version"
        return f"warning: the env's {dist} version is unknown; {model_file} {rec}"
    if trained is None:
        return f"warning: {model_file} records no {dist} version; the env has {dist} {installed}"
    if not compatible(trained, installed):
        raise ModelVersionError(
            f"the model {model_file} was trained with {dist} {trained}, but the env has {dist} {installed}, "
            f"which cannot load it: use an env with {dist} {trained} (pin it in workflow/envs/) or retrain "
            f"the model with {dist} {installed}"
        )
    return (
        f"{model_file}: trained with {dist} {trained}; the env has {dist} {installed}: compatible"
    )


def resolve_weights(config_file: str | os.PathLike, key: str = "WEIGHTS_PATH") -> dict:
    """vocalocator's config with ``key`` made absolute: as written if it exists there, else relative to
    the model folder, else the file of that name in the model folder."""
    config_file = Path(config_file).resolve()
    cfg = json.loads(config_file.read_text())
    weights = cfg.get(key)
    if not weights:
        raise ModelVersionError(f"{config_file} has no {key}")
    folder = config_file.parent
    w = Path(weights)
    tried = [w] if w.is_absolute() else [folder / w, folder / w.name]
    for cand in tried:
        if cand.is_file():
            cfg[key] = str(cand.resolve())
            return cfg
    raise ModelVersionError(
        f"{config_file}: {key} {weights!r} not found (looked for {[str(t) for t in tried]})"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("tool", choices=sorted(TOOLS))
    ap.add_argument("model", help="the model file recording its version (see the module doc)")
    env = ap.add_mutually_exclusive_group()
    env.add_argument("--python", help="the tool env's Python")
    env.add_argument("--exe", help="an executable of the tool env (das, sleap-nn)")
    ap.add_argument(
        "--write-config", help="vocalocator: write config.json with WEIGHTS_PATH resolved here"
    )
    a = ap.parse_args(argv)
    try:
        if a.exe:
            python = python_of(a.exe)
            installed = env_version(a.tool, python) if python else None
        else:
            installed = env_version(a.tool, a.python)
        print(check(a.tool, a.model, installed))
        if a.write_config:
            cfg = resolve_weights(a.model)
            tmp = Path(a.write_config + ".tmp")
            tmp.write_text(json.dumps(cfg, indent=2))
            os.replace(tmp, a.write_config)
    except ModelVersionError as e:
        print(f"usvflow check-model: {e}", file=sys.stderr)
        return EXIT_INCOMPATIBLE
    return 0


if __name__ == "__main__":
    sys.exit(main())
