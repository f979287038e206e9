"""Every setting of workflow/schemas/config.schema.yaml is read by the code, and its default is
written once (in the schema; config/config.yaml carries the same value, checked by test_config.py).

Static checks over the rules (Snakefile, workflow/rules/), the scripts (workflow/scripts/) and the
library (src/usvflow/), comments and docstrings left out:

* read: the setting's key appears as a read - ``x["key"]``, ``x.get("key")``, ``params.key`` or
  ``settings.key`` (a dataclass field named after the key), ``{params.s[key]}`` in a shell command,
  ``lookup(dpath=".../key")``, or an f-string subscript such as ``f"keep_{stage}"``. A key that
  shares its name with something else the code reads passes; the check catches settings whose name
  the code never reads at all.
* one default: a library dataclass that mirrors a schema section (two or more fields named after
  its keys) must not give those fields defaults of its own; ``section.get("key", default)``,
  function parameters named after a key and defaulting to the schema's value, and CLI options
  whose destination is a key and whose default is the schema's value are second copies as well.
  Names that match a setting but are not one are listed in NOT_SETTINGS with the reason (a new copy
  fails, and so does an entry that is no longer found).
"""

import ast
import io
import re
import tokenize
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def _schema():
    return yaml.safe_load(SCHEMA.read_text())


def _leaves(schema, path=()):
    """(dotted path, schema node) of every setting that is not a section of named settings."""
    props = schema.get("properties")
    if not props:
        yield ".".join(path), schema
        return
    for key, sub in props.items():
        yield from _leaves(sub, (*path, key))


def _sections(schema, path=()):
    props = schema.get("properties")
    if props:
        yield ".".join(path), props
        for key, sub in props.items():
            yield from _sections(sub, (*path, key))


def _code_files():
    yield ROOT / "Snakefile"
    yield from sorted((ROOT / "workflow" / "rules").rglob("*.smk"))
    yield from sorted((ROOT / "workflow" / "scripts").glob("*.py"))
    yield from sorted((ROOT / "src" / "usvflow").rglob("*.py"))


_STRING = re.compile(r"^[rbuRBUfF]*('''|\"\"\"|'|\")(.*)\1$", re.S)
_SUBSCRIPT = re.compile(r"\[['\"]?(\w+)['\"]?\]")


def _reads(path: Path):
    """Names the file reads: attributes, string constants (not docstrings), subscripts inside
    strings (format templates), last components of dpath strings; and f-string subscript patterns."""
    names, patterns = set(), []
    toks = [
        t
        for t in tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
        if t.type != tokenize.COMMENT
    ]
    statement_start = (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)
    for i, tok in enumerate(toks):
        if tok.type == tokenize.NAME and i and toks[i - 1].string == ".":
            names.add(tok.string)
        elif tok.type == tokenize.STRING:
            if path.suffix == ".py" and (i == 0 or toks[i - 1].type in statement_start):
                continue  # a docstring
            m = _STRING.match(tok.string)
            if not m:
                continue
            prefix, body = tok.string[: tok.string.index(m.group(1))], m.group(2)
            names.add(body)
            names.update(_SUBSCRIPT.findall(body))
            if "/" in body and " " not in body:
                names.add(body.rsplit("/", 1)[-1])
            literal = re.sub(r"\{.*?\}", "", body)
            if (
                "f" in prefix.lower()
                and "{" in body
                and toks[i - 1].string == "["
                and len(literal) >= 3
            ):
                parts = re.split(r"\{.*?\}", body)
                patterns.append(re.compile(r"\w+".join(re.escape(p) for p in parts) + "$"))
    return names, patterns


def unread_settings(schema) -> list[str]:
    names, patterns = set(), []
    for path in _code_files():
        n, p = _reads(path)
        names |= n
        patterns += p
    return [
        dotted
        for dotted, _ in _leaves(schema)
        if (key := dotted.rsplit(".", 1)[-1]) not in names
        and not any(p.match(key) for p in patterns)
    ]


def _literal(node):
    try:
        return ast.literal_eval(node)
    except ValueError:
        return ast.unparse(node)


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is not bool and type(b) is not bool and a == b or a is b


def _library_files():
    files = [p for p in (ROOT / "src" / "usvflow").rglob("*.py") if "simulate" not in p.parts]
    return sorted([*files, *(ROOT / "workflow" / "scripts").glob("*.py")])


def duplicated_defaults(schema, files=None) -> dict[str, str]:
    """``file:owner:key`` -> what it is, for each default written outside the schema."""
    sections = list(_sections(schema))
    defaults: dict[str, list] = {}
    for _, props in sections:
        for key, sub in props.items():
            if "properties" not in sub and sub.get("default") is not None:
                defaults.setdefault(key, []).append(sub["default"])
    found = {}
    for path in files or _library_files():
        rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                "dataclass" in ast.unparse(d) for d in node.decorator_list
            ):
                fields = {
                    s.target.id: s
                    for s in node.body
                    if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)
                }
                dotted, props = max(sections, key=lambda s: len(set(fields) & set(s[1])))
                if len(set(fields) & set(props)) < 2:
                    continue
                for key, stmt in fields.items():
                    if key in props and stmt.value is not None:
                        found[f"{rel}:{node.name}:{key}"] = (
                            f"dataclass field, schema {dotted}.{key}"
                        )
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get"
                and len(node.args) == 2
                and isinstance(node.args[0], ast.Constant)
                and node.args[0].value in defaults
                and not (isinstance(node.args[1], ast.Constant) and node.args[1].value is None)
            ):
                found[f"{rel}:get:{node.args[0].value}"] = ".get() default"
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                pos = a.posonlyargs + a.args
                pairs = list(zip(pos[len(pos) - len(a.defaults) :], a.defaults))
                pairs += [(k, d) for k, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None]
                for arg, default in pairs:
                    if any(_same(_literal(default), v) for v in defaults.get(arg.arg, [])):
                        found[f"{rel}:{node.name}:{arg.arg}"] = "parameter default"
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
                opts = [a.value for a in node.args if isinstance(a, ast.Constant)]
                kw = {k.arg: k.value for k in node.keywords}
                if "default" not in kw or not opts:
                    continue
                dest = _literal(kw["dest"]) if "dest" in kw else max(opts, key=len)
                dest = str(dest).lstrip("-").replace("-", "_")
                if any(_same(_literal(kw["default"]), v) for v in defaults.get(dest, [])):
                    found[f"{rel}:cli:{dest}"] = "CLI option default"
    return found


# Defaults found by name that are not settings: the name of a setting, used for something else.
NOT_SETTINGS = {
    "src/usvflow/cli.py:cli:seed": "usvflow simulate --seed: the simulated cohort's seed",
    "src/usvflow/usv/calltypes_cli.py:cli:seed": "export-spectrograms --seed: the simulated calls' (and background windows') seed",
    "src/usvflow/usv/calltypes.py:background_spectrograms:seed": "the seed of the background windows' draw",
    "src/usvflow/pose/calibrate.py:calibrate:seed": "the seed of the calibration's frame sampling",
    "src/usvflow/usv/calltypes.py:classify_summary:seed": "the seed of inference (torch)",
    "src/usvflow/usv/calltypes.py:predict_proba:seed": "the seed of inference (torch)",
    "src/usvflow/usv/calltypes.py:predict_proba:batch_size": "inference batch (bounds memory), not the training mini-batch",
    "src/usvflow/sync/plot.py:get:devices": "the devices of an A/V result, not audio.devices",
    "src/usvflow/usv/score.py:evaluate_simulated:devices": "the simulator's devices (scoring)",
    "src/usvflow/usv/score.py:simulated_channel_truth:f_lo_hz": "the band of simulated truth (scoring)",
    "src/usvflow/usv/score.py:evaluate_simulated:f_lo_hz": "the band of simulated truth (scoring)",
}


def test_every_setting_is_read():
    unread = unread_settings(_schema())
    assert not unread, f"settings that no rule, script or library function reads: {unread}"


def test_unread_setting_is_found():
    schema = _schema()
    schema["properties"]["audio"]["properties"]["zz_never_read_setting"] = {
        "type": "integer",
        "default": 1,
    }
    assert unread_settings(schema) == ["audio.zz_never_read_setting"]


def test_defaults_are_written_once():
    found = duplicated_defaults(_schema())
    new = sorted(set(found) - set(NOT_SETTINGS))
    gone = sorted(set(NOT_SETTINGS) - set(found))
    assert not new, "defaults written outside the schema: " + "; ".join(
        f"{k} ({found[k]})" for k in new
    )
    assert not gone, f"no longer found, remove from NOT_SETTINGS: {gone}"


def test_duplicate_defaults_are_found(tmp_path):
    module = tmp_path / "mod.py"
    module.write_text(
        "from dataclasses import dataclass\n"
        "@dataclass\n"
        "class P:\n"
        "    power: float = 4.0\n"
        "    margin: tuple = (4.0, 1.0)\n"
        "def f(section, n_fft=512, other=3):\n"
        "    return section.get('kernel_size', [31, 31])\n"
    )
    found = duplicated_defaults(_schema(), [module])
    assert sorted(found) == [
        "mod.py:P:margin",
        "mod.py:P:power",
        "mod.py:f:n_fft",
        "mod.py:get:kernel_size",
    ]
