"""JSON Schema, judged one way for everyone: compiled once per schema, problems worded as
`field: reason` without echoing the value, and a fast yes for the plain schemas of request
bodies and parameters. The only module of the project, with `contract/`, that imports jsonschema."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
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
}


def plainly_valid(value: Any, schema: dict[str, Any]) -> bool:
    """A fast yes for the common schemas: a bounded integer or number, a string, a boolean, an
    enum, a nullable one of those, and objects of them (request bodies).

    False means "ask jsonschema", which also words the problem; it never means invalid."""
    if not schema.keys() <= _PLAIN_KEYS:
        return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    kind = schema.get("type")
    if isinstance(kind, list):
        if value is None:
            return "null" in kind
        return any(_valid_as(k, value, schema) for k in kind if k != "null")
    return _valid_as(kind, value, schema)


def _valid_as(kind: Any, value: Any, schema: dict[str, Any]) -> bool:
    if kind == "string":
        size = len(value) if isinstance(value, str) else -1
        if not schema.get("minLength", 0) <= size <= schema.get("maxLength", size):
            return False
        pattern = schema.get("pattern")
        return pattern is None or _pattern(pattern).search(value) is not None  # as jsonschema: search
    if kind == "integer" or kind == "number":
        ok = isinstance(value, int if kind == "integer" else (int, float)) and not isinstance(value, bool)
        return ok and schema.get("minimum", value) <= value <= schema.get("maximum", value)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "object":
        if not isinstance(value, dict) or any(k not in value for k in schema.get("required", ())):
            return False
        props, extra = schema.get("properties", {}), schema.get("additionalProperties", True)
        for k, v in value.items():
            sub = props.get(k)
            if sub is None:
                if extra is not True:  # false, or a schema: jsonschema's to judge
                    return False
            elif not plainly_valid(v, sub):
                return False
        return True
    return False


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
    return validator_for(schema).is_valid(value)
