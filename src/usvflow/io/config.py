"""Validation of the cohort config and the sessions sheet against the workflow's JSON schemas.

Errors are one message naming the key (or the sheet row and column), the value found and what is
expected, so that a user can fix their config without reading a traceback.
"""

from __future__ import annotations

import copy
import functools
import os
import warnings
from pathlib import Path

import jsonschema
import pandas as pd
import yaml

from .atomic import InputError


class ConfigError(InputError):
    """The config or the sessions sheet does not match its schema."""


#: Settings that name a file or folder: a relative value is relative to the folder of the config
#: file that sets it (the defaults of config/config.yaml: to the working directory).
PATH_SETTINGS = (
    "sessions",
    "output_root",
    "ephys_root",
    "usv_detection.das.model_directory",
    "pose.sleap.centroid_model",
    "pose.sleap.centered_instance_model",
    "assignment.vocalocator.model_directory",
    "call_types.model_dir",
    "call_types.train.data_dir",
)
#: Settings that name a command: a value with a "/" is a path (relative: as above), else a name
#: looked up on PATH.
COMMAND_SETTINGS = (
    "usv_detection.das.executable",
    "pose.sleap.executable",
    "assignment.vocalocator.python",
)


def _get(mapping, dotted: str):
    for part in dotted.split("."):
        if not isinstance(mapping, dict) or part not in mapping:
            return None, False
        mapping = mapping[part]
    return mapping, True


def _set(mapping: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        mapping = mapping[part]
    mapping[last] = value


def resolve_config_paths(config: dict, config_files) -> dict:
    """A copy of ``config`` whose relative file/folder settings are made absolute against the folder
    of the config file that sets them (the last of ``config_files``, in order, that has the key).

    A value that is not the file's (set by ``--config`` on Snakemake's command line) is left as is;
    so are empty values, absolute paths and command names without a "/".
    """
    cfg = copy.deepcopy(dict(config))
    raw = []
    for f in config_files:
        with open(f) as fh:
            raw.append((Path(f).absolute().parent, yaml.safe_load(fh) or {}))
    for key in PATH_SETTINGS + COMMAND_SETTINGS:
        value, present = _get(cfg, key)
        if not present or not isinstance(value, str) or not value:
            continue
        source = None
        for folder, data in raw:
            v, has = _get(data, key)
            if has:
                source = (folder, v)
        if source is None or source[1] != value:
            continue
        if key in COMMAND_SETTINGS and "/" not in value:
            continue
        path = Path(value).expanduser()
        if not path.is_absolute():
            _set(cfg, key, os.path.normpath(source[0] / path))
    return cfg


# The workflow's schemas (this repository's workflow/schemas/): the one place of every default.
SCHEMAS = Path(__file__).resolve().parents[3] / "workflow" / "schemas"


def read_yaml(path: str | os.PathLike, what: str = "YAML file") -> dict:
    """Read a YAML mapping; :class:`ConfigError` naming the file, line and column of a syntax error."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(path, f"{what} not found") from None
    except (IsADirectoryError, UnicodeDecodeError) as exc:
        raise ConfigError(path, f"cannot be read as a {what} ({exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(path, f"{where}YAML syntax error: {problem}; fix the {what}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            path, f"a {what} must be a mapping of settings (key: value), got {type(data).__name__}"
        )
    return data


def load_schema(path: str | os.PathLike) -> dict:
    with open(path) as fh:
        return yaml.safe_load(fh)


def schema_defaults(section: str = "", schema_path: str | os.PathLike | None = None) -> dict:
    """The defaults of a config section (dotted, e.g. ``"audio.hpss"``; ``""`` for all), as the
    workflow fills them: for the library's command-line options, which repeat no default."""
    cfg = validate_config({}, schema_path or SCHEMAS / "config.schema.yaml", source="defaults")
    for key in filter(None, section.split(".")):
        cfg = cfg[key]
    return cfg


@functools.lru_cache(maxsize=1)
def _schema_defaults_cached() -> dict:
    return schema_defaults()


def _default_at(dotted: str):
    """The schema's default at ``dotted`` (a setting or a section; ``""``: everything), not copied."""
    d = _schema_defaults_cached()
    for key in filter(None, dotted.split(".")):
        d = d[key]
    return d


def setting_default(dotted: str, value=None):
    """``value``, or where it is None the schema's default of the setting ``dotted``
    (``"audio.crop.trigger_device"``): what a library function's ``None`` argument stands for, so
    that the default is written only in the schema."""
    return value if value is not None else copy.deepcopy(_default_at(dotted))


def with_schema_defaults(section: str, mapping: dict | None) -> dict:
    """``mapping`` (a config section, or part of one) with every missing key of ``section`` filled
    from the schema, recursively, so a library function reads ``d[key]`` and repeats no default."""

    def merge(defaults, given):
        out = copy.deepcopy(defaults)
        for k, v in (given or {}).items():
            out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        return out

    return merge(_default_at(section), mapping)


def _as_annotated(value, annotation: str):
    """A schema default as the field's annotation wants it: lists as tuples, and the integers of a
    ``float`` field (``30000`` in YAML) as floats."""
    if isinstance(value, list):
        return tuple(_as_annotated(v, annotation) for v in value)
    if isinstance(value, int) and not isinstance(value, bool) and "float" in annotation:
        return float(value)
    return value


def defaults_from_schema(section: str):
    """Class decorator, applied under ``@dataclass``: every annotated field of the class named as a
    key of the config section ``section`` takes that key's schema default, so that the default is
    written once (in the schema). A field that also writes a default is an error; lists become
    tuples (frozen settings), integers of a field annotated with ``float`` become floats.
    """
    d = _default_at(section)

    def wrap(cls):
        for name, annotation in cls.__dict__.get("__annotations__", {}).items():
            if name not in d:
                continue
            if name in cls.__dict__:
                raise TypeError(
                    f"{cls.__name__}.{name}: the default is the schema's ({section}.{name}); "
                    "do not write it in the class too"
                )
            value = _as_annotated(copy.deepcopy(d[name]), str(annotation))
            if isinstance(value, dict):
                raise TypeError(f"{cls.__name__}.{name}: a mapping cannot be a field default")
            setattr(cls, name, value)
        return cls

    return wrap


def _fill_defaults(instance: dict, schema: dict) -> None:
    """Fill missing keys with schema defaults, recursing into objects (defaults of nested objects first)."""
    for key, sub in schema.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if isinstance(instance.get(key), dict) and sub.get("type") == "object":
            _fill_defaults(instance[key], sub)


def _describe(schema: dict) -> str:
    parts = []
    if "enum" in schema:
        parts.append("one of " + ", ".join(repr(v) for v in schema["enum"]))
    elif "type" in schema:
        t = schema["type"]
        parts.append(" or ".join(t) if isinstance(t, list) else t)
    for k, word in (
        ("minimum", ">="),
        ("exclusiveMinimum", ">"),
        ("maximum", "<="),
        ("exclusiveMaximum", "<"),
    ):
        if k in schema:
            parts.append(f"{word} {schema[k]}")
    if "minItems" in schema and schema.get("minItems") == schema.get("maxItems"):
        parts.append(f"exactly {schema['minItems']} items")
    elif "minItems" in schema:
        parts.append(f"at least {schema['minItems']} items")
    if "pattern" in schema:
        parts.append(f"matching {schema['pattern']}")
    text = ", ".join(parts) if parts else "a valid value"
    if "description" in schema:
        text += f" ({schema['description']})"
    return text


def _message(err: jsonschema.ValidationError, what: str) -> str:
    path = ".".join(str(p) for p in err.absolute_path)
    if err.validator == "additionalProperties":
        known = sorted(err.schema.get("properties", {}))
        extra = sorted(set(err.instance) - set(known)) if isinstance(err.instance, dict) else []
        where = f"{what} key '{path + '.' if path else ''}{extra[0] if extra else '?'}'"
        return f"{where} is not a known setting; expected one of: {', '.join(known)}"
    if err.validator == "required":
        return f"{what}{' ' + repr(path) if path else ''}: {err.message}"
    return f"{what} key '{path}': got {err.instance!r}; expected {_describe(err.schema)}"


def validate_config(config: dict, schema_path: str | os.PathLike, source: str = "config") -> dict:
    """Return a copy of ``config`` with defaults filled in; raise :class:`ConfigError` if invalid."""
    schema = load_schema(schema_path)
    cfg = copy.deepcopy(dict(config))
    _fill_defaults(cfg, schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(
        validator.iter_errors(cfg), key=lambda e: (len(e.absolute_path), str(list(e.absolute_path)))
    )
    if errors:
        raise ConfigError(source, _message(errors[0], "config"))
    return cfg


def _check_extra_fields(path: Path) -> None:
    """A row with more non-empty fields than the header has columns is an error (trailing tabs are
    not)."""
    lines = [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    if not lines:
        return
    n = len(lines[0].split("\t"))
    for i, ln in enumerate(lines[1:], start=2):
        extra = [f for f in ln.split("\t")[n:] if f.strip()]
        if extra:
            raise ConfigError(
                path,
                f"row {i}: {n + len(extra)} or more fields for {n} columns "
                f"(extra value {extra[0]!r}); separate columns with one tab",
            )


def read_sessions(path: str | os.PathLike, schema_path: str | os.PathLike) -> pd.DataFrame:
    """Read and validate the sessions sheet; folders are resolved relative to the sheet's folder.

    Returns a DataFrame indexed by ``session_id`` in sheet order (the ephys concatenation order).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(path, "sessions sheet not found")
    _check_extra_fields(path)
    try:
        # index_col=False: a row with trailing tabs (empty extra fields) is read as the header says
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            df = pd.read_csv(
                path, sep="\t", dtype=str, comment="#", keep_default_na=False, index_col=False
            )
    except Exception as exc:  # pandas raises many types for malformed text
        raise ConfigError(path, f"cannot be read as a tab-separated sheet ({exc})") from None
    schema = load_schema(schema_path)
    known = list(schema["properties"])
    unknown = [c for c in df.columns if c not in known]
    if unknown:
        raise ConfigError(
            path, f"unknown column {unknown[0]!r}; expected columns: {', '.join(known)}"
        )
    validator = jsonschema.Draft202012Validator(schema)
    rows = []
    for i, rec in enumerate(df.to_dict("records"), start=2):  # line 1 is the header
        rec = {k: (v.strip() if isinstance(v, str) else "") for k, v in rec.items()}
        _fill_defaults(rec, schema)
        errs = list(validator.iter_errors(rec))
        if errs:
            e = errs[0]
            col = ".".join(str(p) for p in e.absolute_path)
            if e.validator == "required":
                raise ConfigError(path, f"row {i}: {e.message}")
            raise ConfigError(
                path, f"row {i}, column {col!r}: got {e.instance!r}; expected {_describe(e.schema)}"
            )
        folder = Path(rec["folder"]).expanduser()
        rec["folder"] = str((folder if folder.is_absolute() else path.parent / folder).resolve())
        rows.append(rec)
    out = pd.DataFrame(rows, columns=known)
    dup = out["session_id"][out["session_id"].duplicated()]
    if len(dup):
        raise ConfigError(path, f"session_id {dup.iloc[0]!r} appears more than once")
    ids = set(out["session_id"])
    kinds = dict(zip(out["session_id"], out["kind"]))
    for i, rec in enumerate(rows, start=2):
        cal = rec["calibration_session"]
        if cal and cal not in ids:
            raise ConfigError(
                path,
                f"row {i}, column 'calibration_session': {cal!r} is not a session_id of this sheet",
            )
        if cal and kinds[cal] != "calibration":
            raise ConfigError(
                path,
                f"row {i}, column 'calibration_session': {cal!r} is of kind {kinds[cal]!r}, expected 'calibration'",
            )
    return out.set_index("session_id", drop=False)


def schema_table(schema: dict) -> str:
    """A Markdown table of every setting (key, type, default, description) of a config schema."""
    import json

    lines = ["| key | type | default | description |", "|---|---|---|---|"]

    def walk(sch, prefix):
        for key, sub in sch.get("properties", {}).items():
            path = f"{prefix}{key}"
            t = sub.get("type", "")
            t = " or ".join(t) if isinstance(t, list) else t
            if "enum" in sub:
                t += " (" + ", ".join(str(v) for v in sub["enum"]) + ")"
            if "properties" in sub:
                lines.append(f"| **`{path}`** | section | | {sub.get('description', '')} |")
                walk(sub, path + ".")
                continue
            default = json.dumps(sub.get("default"))
            desc = sub.get("description", "").replace("|", "\\|")
            lines.append(f"| `{path}` | {t} | `{default}` | {desc} |")

    walk(schema, "")
    return "\n".join(lines) + "\n"


BEGIN_MARK = "<!-- BEGIN GENERATED: usvflow config-docs -->"
END_MARK = "<!-- END GENERATED -->"


def render_config_readme(readme_text: str, config_schema: dict, sheet_schema: dict) -> str:
    """Replace the generated block of config/README.md by the tables of both schemas."""
    block = (
        f"{BEGIN_MARK}\n\n### `config.yaml`\n\n{schema_table(config_schema)}\n"
        f"### `sessions.tsv` columns\n\n{schema_table(sheet_schema)}\n{END_MARK}"
    )
    if BEGIN_MARK in readme_text and END_MARK in readme_text:
        head, rest = readme_text.split(BEGIN_MARK, 1)
        tail = rest.split(END_MARK, 1)[1]
        return head + block + tail
    return readme_text.rstrip("\n") + "\n\n" + block + "\n"


def dataclass_from_mapping(cls, mapping: dict | None, what: str = "setting"):
    """``cls(**mapping)`` for a settings dataclass; unknown keys raise ValueError naming them."""
    from dataclasses import fields

    m = dict(mapping or {})
    unknown = set(m) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"unknown {what}(s): {sorted(unknown)}")
    return cls(**m)
