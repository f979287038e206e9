"""Command-line options generated from a config section: one option per setting, named after its key
(``--segment-minlen`` for ``segment_minlen``), with the schema's type, default and description, so that
a setting's name, default and help are written once (in the schema) for the workflow and the CLI."""

from __future__ import annotations

import argparse
import functools

from .config import SCHEMAS, load_schema, setting_default

_TYPES = {"integer": int, "number": float, "string": str}


@functools.lru_cache(maxsize=1)
def _schema() -> dict:
    return load_schema(SCHEMAS / "config.schema.yaml")


def _section_schema(section: str) -> dict:
    node = _schema()
    for key in section.split("."):
        node = node["properties"][key]
    return node["properties"]


def add_settings_options(parser: argparse.ArgumentParser, section: str, keys=None) -> list[str]:
    """Add ``--<key>`` for each setting of ``section`` (or of ``keys`` only); returns the keys.

    Nested sections and settings without a scalar or fixed-length array type are left out.
    """
    added = []
    for key, sub in _section_schema(section).items():
        if (keys is not None and key not in keys) or "properties" in sub:
            continue
        default = setting_default(f"{section}.{key}")
        kind = sub.get("type")
        kw: dict = {"dest": key, "default": default}
        if kind == "boolean":
            kw["action"] = argparse.BooleanOptionalAction
        elif kind == "array" and sub.get("items", {}).get("type") in _TYPES:
            kw["type"] = _TYPES[sub["items"]["type"]]
            n = sub.get("minItems")
            kw["nargs"] = n if n is not None and n == sub.get("maxItems") else "+"
        elif isinstance(kind, str) and kind in _TYPES:
            kw["type"] = _TYPES[kind]
        elif isinstance(kind, list) and any(k in _TYPES for k in kind):  # e.g. [integer, "null"]
            kw["type"] = _TYPES[next(k for k in kind if k in _TYPES)]
        else:
            continue
        text = sub.get("description", "").replace("%", "%%")
        kw["help"] = f"{text} ({section}.{key}; default %(default)s)"
        parser.add_argument("--" + key.replace("_", "-"), **kw)
        added.append(key)
    return added


def settings_from_args(args: argparse.Namespace, keys) -> dict:
    """``{key: value}`` of the options that :func:`add_settings_options` added."""
    return {k: getattr(args, k) for k in keys}
