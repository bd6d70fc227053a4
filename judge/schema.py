"""JSON Schema, judged one way for everyone: compiled once per schema, problems worded as
`field: reason` without echoing the value, and a fast yes for the plain schemas of request
bodies and parameters. The only module of the project, with `contract/`, that imports jsonschema."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from functools import cache, lru_cache
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from .refusal import Problem

MAX_PROBLEMS = 10
_FORMATS = FormatChecker()


@cache
def _validator(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json), format_checker=_FORMATS)


_BY_ID: dict[int, tuple[dict[str, Any], Draft202012Validator]] = {}


def validator_for(schema: dict[str, Any]) -> Draft202012Validator:
    """Compiled once per schema object (the spec's schemas live as long as the process)."""
    hit = _BY_ID.get(id(schema))
    if hit is None or hit[0] is not schema:
        hit = (schema, _validator(json.dumps(schema, sort_keys=True)))
        _BY_ID[id(schema)] = hit  # keeps `schema` alive, so its id is never reused
    return hit[1]


def _field(err: ValidationError, prefix: str) -> str:
    path = [str(p) for p in err.absolute_path]
    if err.validator == "required" and isinstance(err.instance, Mapping):
        # jsonschema reports one error per missing property, each carrying the whole `required`
        # list: the property is the one its message names ("'engine' is a required property").
        missing = [r for r in err.validator_value if r not in err.instance]
        named = [r for r in missing if err.message.startswith(f"{r!r} ")]
        if named or missing:
            path.append(str((named or missing)[0]))
    if err.validator == "additionalProperties" and isinstance(err.instance, Mapping):
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        if extra:
            path.append(str(extra[0]))
    joined = ".".join(path)
    return f"{prefix}.{joined}" if prefix and joined else (joined or prefix or "body")


def _reason(err: ValidationError) -> str:
    if err.validator == "required":
        return "is required"
    if err.validator == "additionalProperties":
        return "is not an allowed field"
    msg = err.message
    given = repr(err.instance)
    if msg.startswith(given):  # never echo the value: it may be a password, a secret or 1 MiB long
        msg = "value" + msg[len(given) :]
    return msg if len(msg) <= 200 else msg[:197] + "..."


def schema_problems(value: Any, schema: dict[str, Any], prefix: str = "") -> list[Problem]:
    errors = sorted(
        validator_for(schema).iter_errors(value),
        key=lambda e: (list(map(str, e.absolute_path)), str(e.validator)),
    )
    return [Problem(_field(e, prefix), _reason(e)) for e in errors[:MAX_PROBLEMS]]


_PLAIN_KEYS = {
    "type",
    "properties",
    "required",
    "additionalProperties",
    "minimum",
    "maximum",
    "enum",
    "default",
    "description",
    "example",
    "examples",
    "minLength",
    "maxLength",
    "pattern",
    "title",
    "x-inferred",
    "x-inferred-reason",
    "x-inferred-keywords",
    "const",
    "format",
    "items",
    "minItems",
    "maxItems",
}


def plainly_valid(value: Any, schema: dict[str, Any]) -> bool:
    """A fast yes for the common schemas: a bounded integer or number, a string (formats asserted
    by jsonschema's own checker), a boolean, an enum or a const, a nullable one of those, and
    objects and arrays of them (request bodies, and the response bodies the proxy judges).

    False means "ask jsonschema", which also words the problem; it never means invalid. Each
    schema is turned once into nested checks (`_compiled`), so a value costs no keyword lookups."""
    return _compiled(schema)(value)


Check = Callable[[Any], bool]
_CHECKS: dict[int, tuple[dict[str, Any], Check]] = {}


def _never(value: Any) -> bool:
    return False


def _compiled(schema: dict[str, Any]) -> Check:
    hit = _CHECKS.get(id(schema))
    if hit is None or hit[0] is not schema:
        if len(_CHECKS) > 20_000:  # the specs' schemas are a few thousand: only ad-hoc ones pile up
            _CHECKS.clear()
        made: list[Check] = []  # a schema that contains itself meets this forward reference
        _CHECKS[id(schema)] = (schema, lambda v: made[0](v))
        made.append(_compile(schema))
        hit = (schema, made[0])
        _CHECKS[id(schema)] = hit  # keeps `schema` alive, so its id is never reused
    return hit[1]


def _compile(schema: dict[str, Any]) -> Check:
    if not isinstance(schema, dict) or not schema.keys() <= _PLAIN_KEYS:
        return _never
    checks: list[Check] = []
    if "enum" in schema:
        enum = schema["enum"]
        checks.append(lambda v: v in enum)
    if "const" in schema:
        const = schema["const"]  # a plain scalar of the same type only (jsonschema: 1 is not true)
        if not isinstance(const, str | bool | None):
            return _never
        checks.append(lambda v: type(v) is type(const) and v == const)
    if "format" in schema:
        fmt = schema["format"]
        checks.append(lambda v: _conforms(v, fmt))
    kind = schema.get("type")
    if isinstance(kind, list):
        nullable = "null" in kind
        kinds = [_kind(k, schema) for k in kind if k != "null"]
        checks.append(lambda v: nullable if v is None else any(c(v) for c in kinds))
    else:
        checks.append(_kind(kind, schema))
    if len(checks) == 1:
        return checks[0]
    return lambda v: all(c(v) for c in checks)


def _kind(kind: Any, schema: dict[str, Any]) -> Check:
    if kind == "string":
        low, high = schema.get("minLength", 0), schema.get("maxLength")
        pattern = _pattern(schema["pattern"]) if "pattern" in schema else None  # as jsonschema: search
        return lambda v: (
            isinstance(v, str)
            and low <= len(v)
            and (high is None or len(v) <= high)
            and (pattern is None or pattern.search(v) is not None)
        )
    if kind == "integer" or kind == "number":
        types = int if kind == "integer" else (int, float)
        lo, hi = schema.get("minimum"), schema.get("maximum")
        return lambda v: (
            isinstance(v, types)
            and not isinstance(v, bool)
            and (lo is None or lo <= v)
            and (hi is None or v <= hi)
        )
    if kind == "boolean":
        return lambda v: isinstance(v, bool)
    if kind == "array":
        low, high = schema.get("minItems", 0), schema.get("maxItems")
        items = schema.get("items", {})
        if items == {}:
            each: Check | None = None
        elif isinstance(items, dict):
            each = _compiled(items)
        else:
            return _never
        return lambda v: (
            isinstance(v, list)
            and low <= len(v)
            and (high is None or len(v) <= high)
            and (each is None or all(each(x) for x in v))
        )
    if kind == "object":
        required = tuple(schema.get("required", ()))
        props = {k: _compiled(sub) for k, sub in schema.get("properties", {}).items()}
        open_ = schema.get("additionalProperties", True) is True  # false, or a schema: jsonschema's

        def check(v: Any) -> bool:
            if not isinstance(v, dict):
                return False
            for k in required:
                if k not in v:
                    return False
            for k, x in v.items():
                sub = props.get(k)
                if sub is None:
                    if not open_:
                        return False
                elif not sub(x):
                    return False
            return True

        return check
    return _never


def _conforms(value: Any, fmt: str) -> bool:
    """`value` in `fmt` by jsonschema's own checker; a string's answer remembered (the same
    addresses and dates recur in every list an app reads)."""
    return _conforms_text(value, fmt) if isinstance(value, str) else _FORMATS.conforms(value, fmt)


@lru_cache(maxsize=8192)
def _conforms_text(value: str, fmt: str) -> bool:
    return _FORMATS.conforms(value, fmt)


@cache  # patterns come from the specs: a bounded set
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def first_error(value: Any, schema: dict[str, Any], by_text: bool = True) -> str | None:
    """The message of the first error of `value` against `schema` taken as written (formats not
    asserted): first by the error's text, or as jsonschema finds them; None when it is valid."""
    found = _plain(json.dumps(schema, sort_keys=True)).iter_errors(value)
    errors = sorted(found, key=str) if by_text else list(found)
    return errors[0].message if errors else None


@cache
def _plain(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json))


def is_valid(value: Any, schema: dict[str, Any]) -> bool:
    return plainly_valid(value, schema) or validator_for(schema).is_valid(value)
