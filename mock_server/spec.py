"""Load an OpenAPI spec and compile what the engine needs from it, once, at start-up."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

SPECS_DIR = Path(__file__).resolve().parent.parent / "specs"
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_EXT_SCHEMA = yaml.safe_load((Path(__file__).parent / "extensions.schema.yaml").read_text())


class SpecError(Exception):
    """The spec or its extensions are not what the engine can serve."""


def deref(node: Any, root: dict[str, Any], _seen: tuple[str, ...] = ()) -> Any:
    """Inline every local `$ref` (specs here have no recursive schemas)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            if not ref.startswith("#/"):
                raise SpecError(f"only local $refs are supported: {ref}")
            if ref in _seen:
                raise SpecError(f"recursive $ref: {ref}")
            target: Any = root
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            resolved = deref(target, root, (*_seen, ref))
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            if siblings and isinstance(resolved, dict):
                return {**resolved, **deref(siblings, root, _seen)}
            return resolved
        return {k: deref(v, root, _seen) for k, v in node.items()}
    if isinstance(node, list):
        return [deref(v, root, _seen) for v in node]
    return node


@dataclass(frozen=True)
class Param:
    name: str
    location: str  # path | query | header | cookie
    required: bool
    schema: dict[str, Any]


@dataclass
class Operation:
    """One compiled operation: what routing, auth, limits, validation and dispatch need."""

    operation_id: str
    method: str
    path: str
    regex: re.Pattern[str]
    params: list[Param]
    body_schema: dict[str, Any] | None
    body_required: bool
    public: bool
    scopes: list[str]
    rate_buckets: list[str]
    resource: dict[str, Any] | None
    handler: str | None
    responses: dict[str, Any]
    raw: dict[str, Any] = field(repr=False)

    @property
    def success_status(self) -> int:
        codes = sorted(int(c) for c in self.responses if c.isdigit() and c.startswith("2"))
        return codes[0] if codes else 200


@dataclass
class ApiSpec:
    """A loaded spec: its extensions, its resources and its operations, routable."""

    name: str
    base_path: str
    doc: dict[str, Any]
    config: dict[str, Any]
    resources: dict[str, dict[str, Any]]
    operations: list[Operation]

    @property
    def all_scopes(self) -> list[str]:
        return list(self.config.get("scopes", []))

    def schema(self, name: str) -> dict[str, Any]:
        return self.doc["components"]["schemas"][name]

    def match(self, method: str, path: str) -> tuple[Operation | None, dict[str, str], list[str]]:
        """Find the operation; returns (op, path params, allowed methods of the path if any).

        The most specific path template that matches decides (`/nodes/join-token` before
        `/nodes/{id}`), so a 405's `Allow` lists exactly that path's methods."""
        for _template, ops in self.paths:
            m = ops[0].regex.fullmatch(path)
            if m is None:
                continue
            for op in ops:
                if op.method == method:
                    return op, m.groupdict(), []
            return None, {}, [op.method.upper() for op in ops]
        return None, {}, []

    @cached_property
    def paths(self) -> list[tuple[str, list[Operation]]]:
        """Operations grouped by path template, most specific (fewest parameters) first."""
        grouped: dict[str, list[Operation]] = {}
        for op in self.operations:
            grouped.setdefault(op.path, []).append(op)
        return list(grouped.items())


def _path_regex(path: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{([A-Za-z_][A-Za-z0-9_]*)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
    return re.compile(pattern)


def _validate_extensions(doc: dict[str, Any], where: str) -> None:
    defs = _EXT_SCHEMA["$defs"]

    def check(instance: Any, kind: str, at: str) -> None:
        schema = {"$schema": _EXT_SCHEMA["$schema"], "$defs": defs, "$ref": f"#/$defs/{kind}"}
        errors = sorted(Draft202012Validator(schema).iter_errors(instance), key=str)
        if errors:
            raise SpecError(f"{where}: {at}: {errors[0].message}")

    if "x-sandbox" not in doc:
        raise SpecError(f"{where}: missing x-sandbox")
    check(doc["x-sandbox"], "root", "x-sandbox")
    for name, res in doc.get("x-resources", {}).items():
        check(res, "resource", f"x-resources.{name}")
        if res["schema"] not in doc.get("components", {}).get("schemas", {}):
            raise SpecError(f"{where}: x-resources.{name}: no schema {res['schema']}")
    buckets = doc["x-sandbox"]["rate-limits"]
    for path, item in doc.get("paths", {}).items():
        for method in HTTP_METHODS:
            op = item.get(method)
            if op is None:
                continue
            at = f"{method.upper()} {path}"
            if "x-resource" in op:
                check(op["x-resource"], "operation", at)
                if op["x-resource"]["name"] not in doc.get("x-resources", {}):
                    raise SpecError(f"{where}: {at}: unknown resource {op['x-resource']['name']}")
            elif "x-handler" not in op:
                raise SpecError(f"{where}: {at}: needs x-resource or x-handler")
            for bucket in op.get("x-rate-limit", []):
                if bucket not in buckets:
                    raise SpecError(f"{where}: {at}: unknown rate-limit bucket {bucket}")
            if "x-rate-limit" not in op:
                raise SpecError(f"{where}: {at}: missing x-rate-limit")
            unknown = set(op.get("x-scopes", [])) - set(doc["x-sandbox"].get("scopes", []))
            if unknown:
                raise SpecError(f"{where}: {at}: scopes not in x-sandbox.scopes: {sorted(unknown)}")


def _compile_operation(
    path: str, method: str, op: dict[str, Any], item: dict[str, Any], root_security: list[Any]
) -> Operation:
    params: dict[tuple[str, str], Param] = {}
    for p in [*item.get("parameters", []), *op.get("parameters", [])]:
        params[(p["name"], p["in"])] = Param(
            name=p["name"],
            location=p["in"],
            required=bool(p.get("required", p["in"] == "path")),
            schema=p.get("schema", {}),
        )
    body = op.get("requestBody")
    body_schema = None
    if body is not None:
        content = body.get("content", {})
        media = content.get("application/json")
        if media is None:
            raise SpecError(f"{method.upper()} {path}: only application/json bodies are served")
        body_schema = media.get("schema", {})
    security = op.get("security", root_security)
    return Operation(
        operation_id=op.get("operationId", f"{method} {path}"),
        method=method,
        path=path,
        regex=_path_regex(path),
        params=list(params.values()),
        body_schema=body_schema,
        body_required=bool(body and body.get("required", False)),
        public=security == [] or security == [{}],
        scopes=list(op.get("x-scopes", [])),
        rate_buckets=list(op.get("x-rate-limit", [])),
        resource=op.get("x-resource"),
        handler=op.get("x-handler"),
        responses={str(k): v for k, v in op.get("responses", {}).items()},
        raw=op,
    )


def load_spec(path: Path) -> ApiSpec:
    raw = yaml.safe_load(path.read_text())
    _validate_extensions(raw, path.name)
    doc = deref(raw, raw)
    config = doc["x-sandbox"]
    servers = doc.get("servers") or [{"url": "/"}]
    server_path = re.sub(r"^[a-z]+://[^/]+", "", servers[0]["url"]).rstrip("/")
    operations = []
    for p, item in doc.get("paths", {}).items():
        for method in HTTP_METHODS:
            if method in item:
                operations.append(_compile_operation(p, method, item[method], item, doc.get("security", [])))
    # Literal segments win over templated ones (/nodes/join-token before /nodes/{id}).
    operations.sort(key=lambda o: o.path.count("{"))
    return ApiSpec(
        name=config["api"],
        base_path=f"/{config['api']}{server_path}",
        doc=doc,
        config=config,
        resources=doc.get("x-resources", {}),
        operations=operations,
    )


def available_specs(specs_dir: Path = SPECS_DIR) -> dict[str, Path]:
    """Every vendor spec in specs/, by API name (file stem)."""
    return {p.stem: p for p in sorted(specs_dir.glob("*.yaml"))}
