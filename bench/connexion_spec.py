"""Baseline B's spec. connexion 3.3 validates `openapi` against `^3\\.0\\.\\d(-.+)?$` and refuses
OpenAPI 3.1 (`InvalidSpecification: '3.1.0' does not match ...`), so the benchmark serves a
mechanical 3.0.3 copy of the same contract: only the 3.1-only spellings change.

- `openapi: 3.1.x` -> `3.0.3`
- `type: [T, 'null']` -> `type: T, nullable: true`
- `const: v` -> `enum: [v]`
- `examples: [..]` inside a schema (a JSON Schema keyword) -> `example: <first>`
- `x-` extensions are kept (connexion ignores them)

Paths, parameters, security, request and response schemas and examples stay the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

_SCHEMA_KEYS = {"type", "properties", "items", "allOf", "anyOf", "oneOf", "enum", "$ref", "required"}


def _looks_like_schema(node: dict[str, Any]) -> bool:
    return bool(_SCHEMA_KEYS & set(node))


def _convert(node: Any, in_schema: bool = False) -> Any:
    if isinstance(node, list):
        return [_convert(x, in_schema) for x in node]
    if not isinstance(node, dict):
        return node
    schema_here = in_schema or _looks_like_schema(node)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("example", "examples") and not schema_here:
            out[key] = value  # media-type / parameter examples: same shape in 3.0
            continue
        if key == "examples" and isinstance(value, list):
            if value:
                out["example"] = value[0]
            continue
        if key == "const" and schema_here:
            out["enum"] = [value]
            continue
        if key == "type" and isinstance(value, list):
            kinds = [t for t in value if t != "null"]
            out["type"] = kinds[0]  # every type list in these specs is [T, null]
            if "null" in value:
                out["nullable"] = True
            continue
        child_in_schema = key in (
            "schema",
            "schemas",
            "properties",
            "items",
            "allOf",
            "anyOf",
            "oneOf",
            "not",
            "additionalProperties",
        ) or (schema_here and key not in ("example",))
        out[key] = _convert(value, child_in_schema)
    return out


def write_openapi30(src: Path, dest: Path) -> Path:
    spec = yaml.safe_load(src.read_text(encoding="utf-8"))
    converted = _convert(spec)
    converted["openapi"] = "3.0.3"
    dest.write_text(yaml.safe_dump(converted, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return dest


def add_bearer_info(dest: Path, func: str = "bench.connexion_app.accept_bearer") -> None:
    """Give every bearer scheme an `x-bearerInfoFunc` (connexion refuses all requests without one)."""
    spec = yaml.safe_load(dest.read_text(encoding="utf-8"))
    for scheme in spec.get("components", {}).get("securitySchemes", {}).values():
        if scheme.get("type") == "http" and scheme.get("scheme", "").lower() == "bearer":
            scheme["x-bearerInfoFunc"] = func
    dest.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8")
