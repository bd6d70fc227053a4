"""Request bodies from a spec alone: the documented example, else one synthesised from the
schema (its examples, defaults, enums and formats; required properties only). The conformance
fixtures and the load suites build their bodies here."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from .envelope import MISSING

if TYPE_CHECKING:
    from .model import Operation


def synthesize(schema: dict[str, Any] | None) -> Any:
    """A plausible value for `schema` from its examples, defaults, enums and formats."""
    if not isinstance(schema, dict):
        return "conformance"
    for key in ("example", "default", "const"):
        if key in schema:
            return copy.deepcopy(schema[key])
    if schema.get("examples"):
        return copy.deepcopy(schema["examples"][0])
    if schema.get("enum"):
        return schema["enum"][0]
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for sub in schema["allOf"]:
            value = synthesize(sub)
            if isinstance(value, dict):
                merged.update(value)
        return merged
    types = schema.get("type")
    kind = next((t for t in types if t != "null"), "string") if isinstance(types, list) else types
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        names = list(schema.get("required") or [])
        if not names and schema.get("minProperties"):
            names = list(props)[: int(schema["minProperties"])]
        return {n: synthesize(props.get(n)) for n in names}
    if kind == "array":
        return [synthesize(schema.get("items"))] * int(schema.get("minItems", 0))
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return schema.get("minimum", 1)
    if kind == "boolean":
        return True
    fmt = schema.get("format")
    value = {
        "email": "conformance@example.com",
        "hostname": "conformance.example.com",
        "uri": "https://example.com/conformance",
        "date-time": "2025-01-01T00:00:00Z",
        "uuid": "00000000-0000-4000-8000-000000000000",
        "ipv4": "192.0.2.1",
    }.get(fmt or "", "conformance")
    return value[: int(schema["maxLength"])] if "maxLength" in schema else value


def body_for(op: Operation) -> Any:
    """The documented request example (a copy), else one synthesised; MISSING without a body."""
    example = op.body_example()
    if example is not MISSING:
        return copy.deepcopy(example)
    if op.body_schema is not None:
        return synthesize(op.body_schema)
    return MISSING
