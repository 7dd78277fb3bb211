"""What the generated hostile-input test (test_hostile_input.py) is made of: the fields and
flags it covers (derived from the manifest model, its JSON Schema and the flag table), the
hostile corpus, a TOML writer that can hold every character, and the parsers that read each
export back into a plain structure, so that two exports can be compared key by key.
"""

from __future__ import annotations

import configparser
import json
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from saferun.inputs.dockerargs import DOCKER_RUN_FLAGS
from saferun.model.manifest import Manifest
from saferun.model.strict import StrictModel, field_types
from tests.unit.export.test_quadlet import parse as parse_unit
from tests.unit.export.test_quadlet import quadlet_words

Field = tuple[tuple[str, ...], str]  # (key path, "[0]" for the item of a list of tables; shape)
LINK = "etclink"  # a symlink to /etc in the test's directory

# A deterministic corpus: every kind of hostile value the issue names, so each field and each
# flag meets every one in CI (hypothesis adds random ones on top, SAFERUN_HOSTILE_EXAMPLES).
CORPUS: tuple[str, ...] = (
    "", " ", "a", "A" * 300, "-x", "--privileged", "0", "-1", "99999999999999999999", "1.5",
    "/", "/etc", "/etc/", "/var/run/docker.sock", "../../../../etc", "./x/../../etc", "x/..",
    "~root", "*", "?", "a\n", "a\nb", "a\rb", "a\x00b", "a\tb", "a b", "a\x1b[2Kb",
    "\x1b]0;t\x07", "a\x7fb", "a\u2028b", "a\u2029b", "a\x85b", "\ufeffa", "é", "\U0001f642",
    "'", '"', "\\", "a\\nb", "$(id)", "`id`", "${X}", "$X", "%n", "%%", "a;b", "a|b", "a&b",
    "#c", "{", "}", "[", "]", "a,b", "a=b", "a:b", "a@b", "---", "host", "container:x",
    "0.0.0.0", "::", "[::0]", "x\nExecStartPre=/bin/sh", "x\n[Service]\nExecStart=/bin/evil",
    "x\u2028---\u2028kind: Pod\u2028spec:\u2028  hostPID: true", f"./{LINK}", LINK,
    f"./{LINK}/passwd",
    'x"\nprivileged = true\n"',
)
BASE = {"app": {"name": "hostile-h", "image": "nginx:1.25"}}
# Minimal valid items for each list of tables, so the hostile value is the only fault; a
# mount is tried as a named volume and as a bind mount (whose source may be relative, or a
# symlink: LINK in the test's directory leads to /etc).
ITEMS: dict[tuple[str, ...], tuple[dict[str, Any], ...]] = {
    ("filesystem", "mounts"): ({"type": "volume", "source": "hostile-v", "target": "/d"},
                               {"type": "bind", "source": "./hostile-data", "target": "/d",
                                "read_only": True}),
    ("filesystem", "tmpfs"): ({"target": "/cache"},), ("network", "ports"): ({"container": 80},),
    ("network", "extra_networks"): ({"name": "hostile-n"},)}


# --- every string field, from the model and (independently) from its JSON Schema ---------

def model_fields(model: type[StrictModel] = Manifest, prefix: tuple[str, ...] = ()) -> set[Field]:
    """(path, shape) of every field that holds a string: `str` (one string, a Literal
    included), `list` (a list of strings), `key` and `value` (a table of strings)."""
    found: set[Field] = set()
    for name, annotation in field_types(model).items():
        found |= _shapes(annotation, (*prefix, name))
    return found


def _strip(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _shapes(annotation: Any, path: tuple[str, ...]) -> set[Field]:
    annotation = _strip(annotation)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return {s for a in args for s in _shapes(a, path)}
    if isinstance(annotation, type) and issubclass(annotation, StrictModel):
        return model_fields(annotation, path)
    if origin in (list, tuple) and args:
        inner = _strip(args[0])
        if isinstance(inner, type) and issubclass(inner, StrictModel):
            return {((*path, "[0]", *sub), shape) for sub, shape in model_fields(inner)}
        return {(path, "list")} if _holds_str(inner) else set()
    if origin is dict:
        return {(path, "key")} | ({(path, "value")} if _holds_str(args[1]) else set())
    return {(path, "str")} if _holds_str(annotation) else set()


def _holds_str(annotation: Any) -> bool:
    annotation = _strip(annotation)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_holds_str(a) for a in args)
    if origin is typing.Literal:
        return any(isinstance(a, str) for a in args)
    return annotation is str


def schema_fields(schema: dict[str, Any]) -> set[Field]:
    """The same set read from the JSON Schema `saferun schema` prints (what editors see)."""
    defs = schema.get("$defs", {})

    def walk(node: dict[str, Any], path: tuple[str, ...]) -> set[Field]:
        if "$ref" in node:
            node = defs[node["$ref"].rsplit("/", 1)[1]]
        if "anyOf" in node:
            return {s for option in node["anyOf"] for s in walk(option, path)}
        kind = node.get("type")
        if kind == "string" or (kind is None and isinstance(node.get("enum"), list)
                                and any(isinstance(v, str) for v in node["enum"])):
            return {(path, "str")}
        if kind == "array":
            items = node.get("items", {})
            target = defs[items["$ref"].rsplit("/", 1)[1]] if "$ref" in items else items
            if "properties" in target:
                return {((*path, "[0]", *sub), shape) for sub, shape in walk(target, ())}
            return {(path, "list")} if walk(target, ()) else set()
        if kind == "object" and "properties" in node:
            return {s for key, sub in node["properties"].items() for s in walk(sub, (*path, key))}
        if kind == "object":
            extra = node.get("additionalProperties")
            values = walk(extra, ()) if isinstance(extra, dict) else set()
            return {(path, "key")} | ({(path, "value")} if values else set())
        return set()

    return walk(schema, ())


VALUE_FLAGS = tuple(sorted(f.name for f in DOCKER_RUN_FLAGS if f.kind == "value"
                           and not f.alias_of))


# --- a TOML writer that holds any string (tomlkit cannot write some keys) ----------------

def toml_string(text: str) -> str:
    """A TOML basic string: quote, backslash and the control characters escaped."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _inline(value: Any) -> str:
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    return "{" + ", ".join(f"{toml_string(k)} = {_inline(v)}" for k, v in value.items()) + "}"


def toml_document(document: dict[str, Any]) -> str:
    lines = [f"{toml_string(key)} = {_inline(value)}" for key, value in document.items()
             if not isinstance(value, dict)]
    for section, table in document.items():
        if not isinstance(table, dict):
            continue
        lines.append(f"[{toml_string(section)}]")
        lines += [f"{toml_string(key)} = {_inline(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"


def variants(field: Field) -> int:
    """How many items the field's list of tables is tried in (1 outside such a list)."""
    path = field[0]
    return len(ITEMS[path[:path.index("[0]")]]) if "[0]" in path else 1


def document_with(field: Field, value: str, variant: int = 0) -> dict[str, Any]:
    """BASE with `value` at the field, in the field's shape (an item of a list of tables
    is a whole valid item, ITEMS[...][variant], with the hostile value in it)."""
    path, shape = field
    document: dict[str, Any] = json.loads(json.dumps(BASE))
    if "[0]" in path:
        index = path.index("[0]")
        head, tail = path[:index], path[index + 1:]
        item = json.loads(json.dumps(ITEMS[head][variant]))
        _put(item, tail, shape, value)
        _put(document, head, "raw", [item])
    else:
        _put(document, path, shape, value)
    return document


def _put(document: dict[str, Any], path: tuple[str, ...], shape: str, value: Any) -> None:
    for key in path[:-1]:
        document = document.setdefault(key, {})
    if shape in ("str", "raw"):
        document[path[-1]] = value
    elif shape == "list":
        document[path[-1]] = [value]
    elif shape == "key":
        document[path[-1]] = {value: "v"}
    else:
        document[path[-1]] = {"k": value}


def value_at(document: Any, field: Field) -> Any:
    """What the document holds where document_with put the value (to prove it is there)."""
    path, shape = field
    node = document
    for key in path:
        node = node[0] if key == "[0]" else node[key]
    return {"str": lambda n: n, "list": lambda n: n[0], "key": lambda n: next(iter(n)),
            "value": lambda n: n["k"]}[shape](node)


# --- exports read back into plain structures ---------------------------------------------

UNIT_SECTIONS = {"Unit", "Container", "Service", "Install"}


def read_export(target: str, files: list[tuple[str, str]]) -> Any:
    """Every file of an export as the consumer reads it: YAML documents (all of them), a
    Quadlet unit as (section, key, words) the way systemd and Quadlet split and unescape
    it, JSON and AppArmor files by name. Raises AssertionError if a file is not one
    well-formed document of its kind."""
    read: dict[str, Any] = {}
    for name, content in files:
        if name.endswith(".container"):
            for line in content.split("\n"):  # systemd ends a line at \n only
                assert not line or line.startswith(("#", "[")) or "=" in line, repr(line)
            unit = configparser.ConfigParser(strict=False, interpolation=None)
            unit.optionxform = str  # type: ignore[assignment,method-assign]
            unit.read_string(content)
            assert set(unit.sections()) <= UNIT_SECTIONS, unit.sections()
            # systemd undoubles %% (specifiers) and $$ (variables) in the ExecStart it gets
            read[name] = [(s, k, _unit_value(v)) for s, k, v in parse_unit(content)]
        elif name.endswith((".yaml", ".yml")):
            documents = list(yaml.safe_load_all(content))
            # Compose interpolates $VAR in values (not keys): $$ is its literal $
            read[name] = _compose_values(documents) if target == "compose" else documents
        elif name.endswith(".json"):
            read[name] = json.loads(content)
        elif name.endswith(".apparmor"):
            read[name] = apparmor_shape(content)
        else:
            read[name] = content
    return read


def _unit_value(value: str) -> Any:
    """A Quadlet value as podman gets it: a JSON array (Entrypoint) decoded as JSON, others
    split and C-unescaped as Quadlet reads a list key; systemd undoubles %% and $$."""
    if value.startswith("["):
        try:
            return json.loads(_undouble(value, "%$"))
        except ValueError:
            pass
    return [_undouble(w, "%$") for w in quadlet_words(value)]


def _undouble(text: str, chars: str) -> str:
    return re.sub("([" + re.escape(chars) + "])\\1", "\\1", text)


def _compose_values(structure: Any) -> Any:
    return map_strings(structure, lambda text: text.replace("$$", "$"), keys=False)


def map_strings(structure: Any, change: Any, *, keys: bool = True) -> Any:
    """`structure` with `change` applied to each of its strings (dict keys too if `keys`)."""
    if isinstance(structure, str):
        return change(structure)
    if isinstance(structure, list | tuple):
        return type(structure)(map_strings(s, change, keys=keys) for s in structure)
    if isinstance(structure, dict):
        return {(change(k) if keys and isinstance(k, str) else k):
                map_strings(v, change, keys=keys) for k, v in structure.items()}
    return structure


def apparmor_shape(text: str) -> list[str]:
    """One profile with balanced braces; its rule lines (comments dropped)."""
    depth, profiles, rules = 0, 0, []
    for line in text.splitlines():
        code = line.strip()
        if code.startswith("#") or not code:
            continue
        profiles += code.startswith("profile ")
        depth += code.count("{") - code.count("}") if not code.startswith('"') else 0
        rules.append(code)
    assert profiles == 1 and depth == 0, text
    return rules


def substituted(structure: Any, token: str, value: str) -> Any:
    """`structure` with every occurrence of `token` in its strings (keys too) replaced by
    `value`: what the export of the benign token becomes if the hostile value is copied
    through as data, never as structure."""
    return map_strings(structure, lambda text: text.replace(token, value))


def benign_twin(value: str) -> str:
    """A stand-in of `value` with every character that could mean structure in any output
    format replaced by a letter pair that appears nowhere else: exporting it shows the
    intended structure, into which the hostile value must fit as plain data. A colon and
    an equals sign are kept: fields and flags give them meaning of their own (user:group,
    host:container, KEY=VALUE), and no output format here reads structure from either
    inside a value (YAML and TOML quote it, a unit line splits at its first `=` only)."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "/._-:=") else "Qj"
                   for c in value)


def launched_matches(printed: str, launched: list[str], profile: str | None) -> list[str]:
    """The printed --dry-run line split as a shell splits it, with the one word the launch
    writes differently (the seccomp profile: a memfd there, a file here) checked and
    mapped, so the two lists can be compared whole."""
    import shlex

    from saferun.engine.docker_cli import SECCOMP_FD_PATH

    argv = shlex.split(printed)
    expected = list(launched)
    for index, word in enumerate(expected):
        if word == f"seccomp={SECCOMP_FD_PATH}":
            shown = argv[index] if index < len(argv) else ""
            assert shown.startswith("seccomp="), (index, shown)
            assert profile is not None
            assert json.loads(Path(shown.split("=", 1)[1]).read_text()) == json.loads(profile)
            expected[index] = shown
    return expected


REFUSED_RULES = re.compile(r"refused by rule '([a-z0-9-]+)'")
