"""The base of saferun's models: frozen msgspec Structs, and validation that lists every problem.

msgspec defines a model class in microseconds and validates a document in one C pass, but
it stops at the first problem. saferun's messages list every problem of a manifest with
its key path (and the loader adds the TOML line), so when the fast pass fails, `validate`
walks the document field by field (unknown keys, missing keys, each value, each field's
check, then each table's cross-field check) and raises one ValidationError naming them all.

Each model declares its checks in two places, both run by `__post_init__` (so by
msgspec.convert and by direct construction alike):
- `__field_checks__`: (field, function) pairs; the function gets the field's value and
  returns it (possibly normalised) or raises ValueError naming key and value;
- `_check(self)`: checks across fields, run after the field checks.
`_before(data)` may rewrite a table's raw data before it is converted (defaults that
depend on other keys). Validation context (e.g. the rule catalogue) is read with
`context()` inside a check.
"""

from __future__ import annotations

import copy
import re
import types
import typing
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from functools import cache
from typing import Any, ClassVar, TypeVar

import msgspec
from msgspec.structs import force_setattr

T = TypeVar("T")
Loc = tuple[str | int, ...]
FieldCheck = Callable[[Any], Any]

_EMPTY: Mapping[str, Any] = types.MappingProxyType({})
_CONTEXT: ContextVar[Mapping[str, Any]] = ContextVar("saferun_validation_context",
                                                     default=_EMPTY)


def context() -> Mapping[str, Any]:
    """The context of the validation under way (empty for a direct construction)."""
    return _CONTEXT.get()


def meta(**constraints: Any) -> msgspec.Meta:
    """msgspec.Meta whose pattern matches the whole string: msgspec searches with Python's
    `re`, where `$` also matches before a final newline ("name\\n"), so a closing `$`
    becomes `\\Z`. The JSON Schema shows `$` again (saferun.app.schema)."""
    pattern = constraints.get("pattern")
    if pattern is not None and pattern.endswith("$") and not pattern.endswith("\\$"):
        constraints["pattern"] = pattern[:-1] + r"\Z"
    return msgspec.Meta(**constraints)


M = TypeVar("M", bound="StrictModel")


class StrictModel(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Frozen, no unknown keys, no silent type coercion (msgspec's strict conversion)."""

    __field_checks__: ClassVar[tuple[tuple[str, FieldCheck], ...]] = ()
    # Tables (field, model) whose `_before` the fast pass applies (convert does not).
    __prepared_fields__: ClassVar[tuple[tuple[str, type[StrictModel]], ...]] = ()

    def __post_init__(self) -> None:
        for name, field_check in type(self).__field_checks__:
            value = getattr(self, name)
            checked = field_check(value)
            if checked is not value:
                force_setattr(self, name, checked)
        self._check()

    def _check(self) -> None:
        """Checks across fields (raise ValueError); the fields themselves are valid."""

    @classmethod
    def _before(cls, data: dict[str, Any]) -> dict[str, Any]:
        """The raw table, possibly rewritten, before conversion (raise ValueError)."""
        return data

    @classmethod
    def from_data(cls: type[M], data: Any, context: Mapping[str, Any] | None = None) -> M:
        """`validate(cls, data, context)`: the model, or a ValidationError naming every
        problem."""
        return validate(cls, data, context)


class ValidationError(ValueError):
    """Every problem of a document: `errors()` lists dicts with loc, type, msg and input.

    type is "missing", "extra_forbidden", "type_error" or "value_error"."""

    def __init__(self, problems: list[dict[str, Any]], title: str = "") -> None:
        self._problems = problems
        count = len(problems)
        lines = [f"{count} validation error{'s' if count != 1 else ''}"
                 + (f" for {title}" if title else "")]
        for problem in problems:
            lines.append(".".join(str(p) for p in problem["loc"]) or "(top level)")
            lines.append(f"  {problem['msg']}")
        super().__init__("\n".join(lines))

    def errors(self) -> list[dict[str, Any]]:
        return [dict(p) for p in self._problems]


def validate(model: type[M], data: Any, context: Mapping[str, Any] | None = None) -> M:
    """`data` (a TOML/JSON document) as a `model`, or a ValidationError listing every
    problem. The fast pass is one msgspec.convert; the slow one runs only on failure."""
    token = _CONTEXT.set(context or _EMPTY)
    try:
        try:
            return msgspec.convert(_prepared(model, data), model)
        except (msgspec.ValidationError, ValueError, TypeError) as exc:
            first = exc
        problems: list[dict[str, Any]] = []
        _collect(model, data, (), problems)
        if not problems:  # the walk should find what convert found; never hide it
            message, loc = _split_message(str(first))
            problems.append(_problem(loc, "value_error", message, data))
        raise ValidationError(problems, model.__name__) from None
    finally:
        _CONTEXT.reset(token)


def _prepared(model: type[StrictModel], data: Any) -> Any:
    if not isinstance(data, dict):
        return data
    data = model._before(data)
    for name, table in model.__prepared_fields__:
        value = data.get(name)
        if isinstance(value, dict):
            prepared = _prepared(table, value)
            if prepared is not value:
                data = {**data, name: prepared}
    return data


def updated(model: M, **changes: Any) -> M:
    """A copy with some fields changed. Like pydantic's model_copy(update=...) it does not
    validate again: the changes come from code, and a manifest validated with context
    (e.g. refusals deferred) must not be judged again without it."""
    changed = copy.copy(model)
    for name, value in changes.items():
        if name not in model.__struct_fields__:
            raise AttributeError(f"{type(model).__name__} has no field {name!r}")
        force_setattr(changed, name, value)
    return changed


def to_document(model: StrictModel, *, exclude_defaults: bool = False,
                exclude_none: bool = False, exclude: frozenset[str] = frozenset()) -> dict[
                    str, Any]:
    """The model as plain dicts, lists and scalars (JSON/TOML-ready), fields in order."""
    out: dict[str, Any] = {}
    for info in _fields(type(model)).values():
        if info.name in exclude:
            continue
        value = getattr(model, info.name)
        if exclude_none and value is None:
            continue
        if exclude_defaults and not info.required and value == _default_of(info):
            continue
        out[info.encode_name] = _plain(value, exclude_defaults, exclude_none)
    return out


def _plain(value: Any, exclude_defaults: bool, exclude_none: bool) -> Any:
    if isinstance(value, StrictModel):
        return to_document(value, exclude_defaults=exclude_defaults, exclude_none=exclude_none)
    if isinstance(value, list | tuple):
        return [_plain(v, exclude_defaults, exclude_none) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v, exclude_defaults, exclude_none) for k, v in value.items()}
    return value


def _default_of(info: msgspec.structs.FieldInfo) -> Any:
    if info.default_factory is not msgspec.NODEFAULT:
        return info.default_factory()
    return info.default


@cache
def _fields(model: type[StrictModel]) -> dict[str, msgspec.structs.FieldInfo]:
    return {info.encode_name: info for info in msgspec.structs.fields(model)}


def field_types(model: type[StrictModel]) -> dict[str, Any]:
    """Each field's (resolved) type, by key: for walkers such as the hostile-input tests."""
    return {name: info.type for name, info in _fields(model).items()}


def json_schema(model: type[StrictModel], **top: Any) -> dict[str, Any]:
    """The model's JSON Schema (draft 2020-12) with the model itself at the top level, its
    tables in $defs, `top` (e.g. title, $id) added, and patterns as written (`$`, not the
    `\\Z` that `meta` matches with)."""
    generated = msgspec.json.schema(model)
    defs = generated.get("$defs", {})
    root = defs.pop(model.__name__)
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **top,
              **{key: value for key, value in root.items() if key not in top}}
    if defs:
        schema["$defs"] = defs
    _show_patterns(schema)
    return schema


def _show_patterns(node: Any) -> None:
    if isinstance(node, dict):
        pattern = node.get("pattern")
        if isinstance(pattern, str) and pattern.endswith("\\Z"):
            node["pattern"] = pattern[:-2] + "$"
        for child in node.values():
            _show_patterns(child)
    elif isinstance(node, list):
        for child in node:
            _show_patterns(child)


# --- the slow pass: every problem ----------------------------------------------------------

def _problem(loc: Loc, kind: str, message: str, value: Any) -> dict[str, Any]:
    return {"loc": loc, "type": kind, "msg": message, "input": value}


def _collect(annotation: Any, value: Any, loc: Loc, problems: list[dict[str, Any]]) -> None:
    if isinstance(annotation, type) and issubclass(annotation, StrictModel):
        _collect_model(annotation, value, loc, problems)
        return
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated and typing.get_origin(args[0]) in (
            list, dict, typing.Union, types.UnionType):
        _collect(args[0], value, loc, problems)  # a description: the parts are judged
        return
    if origin in (typing.Union, types.UnionType) and isinstance(value, dict):
        models = [a for a in args if isinstance(a, type) and issubclass(a, StrictModel)]
        if models:
            _collect(models[0], value, loc, problems)
            return
    if origin is list and isinstance(value, list):
        for index, item in enumerate(value):
            _collect(args[0], item, (*loc, index), problems)
        return
    if origin is dict and isinstance(value, dict):
        for key, item in value.items():
            _convert_leaf(args[0], key, (*loc, key), problems, what="key")
            _collect(args[1], item, (*loc, key), problems)
        return
    _convert_leaf(annotation, value, loc, problems)


def _collect_model(model: type[StrictModel], value: Any, loc: Loc,
                   problems: list[dict[str, Any]]) -> None:
    if not isinstance(value, dict):
        problems.append(_problem(loc, "type_error",
                                 f"wrong type ({_kind(value)}), expected a table", value))
        return
    found = len(problems)
    try:
        value = model._before(value)
    except (ValueError, TypeError) as exc:  # reported; the fields are still judged
        problems.append(_problem(loc, "value_error", str(exc), value))
    fields = _fields(model)
    valid = set()
    for name, info in fields.items():
        if name in value:
            before = len(problems)
            _collect(info.type, value[name], (*loc, name), problems)
            if len(problems) == before:
                valid.add(name)
        elif info.required:
            problems.append(_problem((*loc, name), "missing", "required", None))
    for key, item in value.items():
        if key not in fields:
            problems.append(_problem((*loc, key), "extra_forbidden", "unknown key", item))
    for name, field_check in model.__field_checks__:
        if name in valid:
            try:
                field_check(msgspec.convert(value[name], fields[name].type))
            except (ValueError, TypeError, msgspec.ValidationError) as exc:
                problems.append(_problem((*loc, name), "value_error",
                                         _split_message(str(exc))[0], value[name]))
    if len(problems) > found:
        return
    try:
        msgspec.convert(value, model)
    except msgspec.ValidationError as exc:
        message, sub = _split_message(str(exc))
        problems.append(_problem((*loc, *sub), "value_error", message, _at(value, sub)))


def _convert_leaf(annotation: Any, value: Any, loc: Loc, problems: list[dict[str, Any]],
                  what: str = "") -> None:
    try:
        msgspec.convert(value, annotation)
    except msgspec.ValidationError as exc:
        message, sub = _split_message(str(exc))
        item = _at(value, sub)
        readable = _readable(message, item, annotation)
        if what == "key":
            readable = f"invalid key: {readable}"
        problems.append(_problem((*loc, *sub), _kind_of(message), readable, item))


_AT = re.compile(r"^(?P<message>.*?)(?: - at (?:`key` in )?`\$(?P<path>[^`]*)`)?$", re.DOTALL)
_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[([^\]]*)\]")


def _split_message(text: str) -> tuple[str, Loc]:
    """msgspec's "MESSAGE - at `$.a.b[0]`" -> (MESSAGE, ("a", "b", 0))."""
    match = _AT.match(text)
    if match is None:
        return text, ()
    loc: list[str | int] = []
    for name, index, key in _PART.findall(match["path"] or ""):
        loc.append(int(index) if index else name or key.strip("'\""))
    return match["message"], tuple(loc)


def _at(value: Any, loc: Loc) -> Any:
    for part in loc:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return value
    return value


def _kind_of(message: str) -> str:
    return "type_error" if re.match(r"Expected `[^`]*`, got `", message) else "value_error"


_NAMES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean",
          "object": "table", "array": "list", "null": "nothing", "datetime": "date-time",
          "date": "date", "time": "time"}


def _kind(value: Any) -> str:
    names = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "table",
             list: "list", type(None): "nothing"}
    return names.get(type(value), type(value).__name__)


def _readable(message: str, value: Any, annotation: Any) -> str:
    """msgspec's wording, in saferun's: the expected type, pattern, bound or choices."""
    wrong = re.match(r"Expected `([^`]*)`, got `", message)
    if wrong:
        # TOML has no null: an optional key is left out, so "or nothing" would only confuse.
        expected = [_NAMES.get(part.strip(), part.strip()) for part in wrong[1].split("|")
                    if part.strip() != "null"] or ["nothing"]
        return f"wrong type ({_kind(value)}), expected {' or '.join(dict.fromkeys(expected))}"
    pattern = re.match(r"Expected `str` matching regex '(.*)'$", message, re.DOTALL)
    if pattern:
        shown = pattern[1].replace("\\\\", "\\").removesuffix("\\Z") + "$"
        return f"does not match the pattern '{shown}'"
    bound = re.match(r"Expected `(?:int|float|str|array|object)` (?:of length )?(.*)$", message)
    if bound:
        kind = "length" if "length" in message else "value"
        return f"{kind} must be {bound[1]}"
    if message.startswith("Invalid enum value"):
        choices = _literals(annotation)
        if choices:
            return "must be one of " + ", ".join(repr(c) for c in choices)
    return message


def _literals(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) is typing.Literal:
        return list(typing.get_args(annotation))
    found: list[Any] = []
    for arg in typing.get_args(annotation):
        if not isinstance(arg, msgspec.Meta):
            found += _literals(arg)
    return found
