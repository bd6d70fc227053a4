"""Request validation against the spec: body parsing guards, parameter coercion, JSON Schema."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from contract import Operation, Param

from .refusal import Problem, Refusal, validation
from .schema import MAX_PROBLEMS, plainly_valid, schema_problems

MAX_BODY_BYTES = 1_048_576
MAX_DEPTH = 64
# ASCII digits only (`\d` would take "١" or "１"); Python refuses ints over 4300 digits
_INT = re.compile(r"[+-]?[0-9]{1,4000}")
_NUM = re.compile(r"[+-]?([0-9]{1,18}(\.[0-9]{0,18})?|\.[0-9]{1,18})([eE][+-]?[0-9]{1,3})?")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _depth_ok(raw: str) -> bool:
    depth = peak = 0
    in_str = escaped = False
    for ch in raw:
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            peak = max(peak, depth)
            if peak > MAX_DEPTH:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def _check_strings(value: Any) -> None:
    """Lone surrogates parse but cannot be stored or sent back as UTF-8."""
    if isinstance(value, str):
        value.encode("utf-8")
    elif isinstance(value, dict):
        for k, v in value.items():
            k.encode("utf-8")
            _check_strings(v)
    elif isinstance(value, list):
        for v in value:
            _check_strings(v)


def parse_json_body(body: bytes, content_type: str | None) -> Any:
    """Bytes → JSON value, or a 4xx `Refusal`; never an unhandled exception."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        raise Refusal(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            "Content-Type must be application/json",
            [Problem("Content-Type", f"got {media or 'nothing'}")],
        )
    if len(body) > MAX_BODY_BYTES:
        raise Refusal(413, "PAYLOAD_TOO_LARGE", f"Request body exceeds {MAX_BODY_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise validation("Request body is not valid UTF-8", Problem("body", "invalid UTF-8")) from None
    if not text.strip():
        raise validation("Request body is required", Problem("body", "empty body"))
    if not _depth_ok(text):
        raise validation(
            "Request body is nested too deeply", Problem("body", f"nesting deeper than {MAX_DEPTH}")
        )
    try:
        value = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates)
        _check_strings(value)
    except (ValueError, RecursionError, UnicodeEncodeError) as exc:
        reason = str(exc).split("\n")[0][:200]
        raise validation("Request body is not valid JSON", Problem("body", reason)) from None
    return value


def _types(schema: dict[str, Any]) -> list[str]:
    t = schema.get("type")
    if isinstance(t, list):
        return [str(x) for x in t]
    if t is None and "enum" in schema:
        return sorted(
            {type(v).__name__.replace("str", "string").replace("int", "integer") for v in schema["enum"]}
        )
    return [str(t)] if t else []


def coerce(raw: str, schema: dict[str, Any]) -> Any:
    """A query/path/header string → the typed value its schema describes (ValueError if not)."""
    types = _types(schema)
    if "integer" in types and _INT.fullmatch(raw):
        return int(raw)
    if "number" in types and _NUM.fullmatch(raw):
        n = float(raw)
        return int(n) if n.is_integer() and "integer" in types else n
    if "boolean" in types and raw in ("true", "false"):
        return raw == "true"
    if "null" in types and raw in ("", "null"):
        return None
    if not types or "string" in types:
        return raw
    raise ValueError(f"must be {' or '.join(t for t in types if t != 'null')}")


def validate_params(
    op: Operation,
    path_params: Mapping[str, str],
    query: list[tuple[str, str]],
    headers: Mapping[str, str],
    cookies: Mapping[str, str],
) -> dict[str, Any]:
    """Typed values of the operation's declared parameters, keyed by name; or a 400."""
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    for p in op.params:
        raw_values = _raw(p, path_params, query, headers, cookies)
        if not raw_values:
            if p.required:
                problems.append(Problem(p.name, "is required"))
            elif "default" in p.schema:
                values[p.name] = p.schema["default"]
            continue
        try:
            if p.schema.get("type") == "array":
                items = (
                    [v for raw in raw_values for v in raw.split(",")] if len(raw_values) == 1 else raw_values
                )
                value: Any = [coerce(v, p.schema.get("items", {})) for v in items]
            elif len(raw_values) > 1:
                raise ValueError("must be given once")
            else:
                value = coerce(raw_values[0], p.schema)
        except ValueError as exc:
            problems.append(Problem(p.name, str(exc)))
            continue
        found = [] if plainly_valid(value, p.schema) else schema_problems(value, p.schema)
        if found:
            problems.append(Problem(p.name, found[0].reason))
        else:
            values[p.name] = value
    if problems:
        raise validation("Invalid request parameters", *problems[:MAX_PROBLEMS])
    return values


def _raw(
    p: Param,
    path_params: Mapping[str, str],
    query: list[tuple[str, str]],
    headers: Mapping[str, str],
    cookies: Mapping[str, str],
) -> list[str]:
    if p.location == "path":
        return [path_params[p.name]] if p.name in path_params else []
    if p.location == "query":
        return [v for k, v in query if k == p.name]
    if p.location == "header":
        v = headers.get(p.name.lower())
        return [v] if v is not None else []
    v = cookies.get(p.name)
    return [v] if v is not None else []


def validate_body(op: Operation, body: bytes, content_type: str | None) -> Any:
    """The parsed, schema-valid JSON body of the operation (None when it takes none)."""
    if op.body_schema is None:
        return None
    if not body:
        if op.body_required:
            raise validation("Request body is required", Problem("body", "is required"))
        return None
    value = parse_json_body(body, content_type)
    if plainly_valid(value, op.body_schema):
        return value
    problems = schema_problems(value, op.body_schema)
    if problems:
        raise validation("Invalid request parameters", *problems)
    return value
