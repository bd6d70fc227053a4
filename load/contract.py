"""What the load suite needs from a spec: documented rate limits, operations, envelopes,
pagination and example bodies. Read from the same `x-` extensions the engine serves
(specs/EXTENSIONS.md); no number or path here is specific to one API.

No Locust import: the verifier (asyncio + httpx) and the Locust files both use this.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mock_server.spec import ApiSpec, Operation, SpecError, available_specs, load_spec

_MISSING = object()


class ContractError(Exception):
    """The spec cannot be used as asked (unknown API, no operation fitting a role...)."""


@dataclass(frozen=True)
class Bucket:
    name: str
    limit: int
    window: float

    def describe(self) -> str:
        return f"{self.limit} per {_secs(self.window)}"


def _secs(x: float) -> str:
    return f"{int(x)} s" if float(x).is_integer() else f"{x:g} s"


def placeholder_path(template: Any, name: str) -> tuple[str, ...] | None:
    """Where `$name` (or `$name?`) sits in an envelope template: () for the whole body."""
    if isinstance(template, str):
        return () if template.rstrip("?") == f"${name}" else None
    if isinstance(template, dict):
        for key, value in template.items():
            found = placeholder_path(value, name)
            if found is not None:
                return (key, *found)
    return None


def dig(body: Any, path: tuple[str, ...] | None, default: Any = None) -> Any:
    if path is None:
        return default
    for key in path:
        if not isinstance(body, dict) or key not in body:
            return default
        body = body[key]
    return body


class ApiContract:
    """One API's spec, read for load testing."""

    def __init__(self, spec: ApiSpec, window: float | None = None) -> None:
        self.spec = spec
        self.name = spec.name
        self.window_override = window
        cfg = spec.config
        self.buckets = {
            n: Bucket(n, int(b["limit"]), float(window or b["window"])) for n, b in cfg["rate-limits"].items()
        }
        self.documented_windows = {n: float(b["window"]) for n, b in cfg["rate-limits"].items()}
        env = cfg["envelope"]
        self.error_code_path = placeholder_path(env["error"], "code")
        self.data_path = placeholder_path(env["single"], "data")
        self.items_path = placeholder_path(env["list"], "items")
        self.total_path = placeholder_path(env["list"], "total")
        self.pagination = dict(cfg.get("pagination") or {"style": "none"})
        self.ops = {op.operation_id: op for op in spec.operations}
        if self.error_code_path is None:
            raise ContractError(f"{self.name}: x-sandbox.envelope.error has no $code")

    @classmethod
    def load(cls, api: str, window: float | None = None) -> ApiContract:
        found = available_specs()
        if api not in found:
            raise ContractError(f"unknown API {api!r}; known: {', '.join(found)}")
        try:
            return cls(load_spec(found[api]), window)
        except SpecError as exc:
            raise ContractError(str(exc)) from exc

    # -- operations ----------------------------------------------------------------------
    def op(self, operation_id: str) -> Operation:
        try:
            return self.ops[operation_id]
        except KeyError:
            raise ContractError(f"{self.name}: no operation {operation_id!r}") from None

    def buckets_of(self, op: Operation) -> list[Bucket]:
        return [self.buckets[b] for b in op.rate_buckets]

    @staticmethod
    def path_params(op: Operation) -> list[str]:
        return [p.name for p in op.params if p.location == "path"]

    def path(self, op: Operation, **params: str) -> str:
        out = op.path
        for name in self.path_params(op):
            out = out.replace("{" + name + "}", str(params[name]))
        return out

    def read_op_for(self, bucket: str) -> Operation | None:
        """The cheapest token-authenticated read that counts in `bucket` only: a GET with no
        path or required parameters, preferring a generic list."""
        found = [
            op
            for op in self.spec.operations
            if op.method == "get"
            and op.rate_buckets == [bucket]
            and not op.public
            and not any(p.required or p.location == "path" for p in op.params)
        ]
        found.sort(key=lambda op: ((op.resource or {}).get("op") != "list", op.path.count("/")))
        return found[0] if found else None

    def write_pair_for(self, bucket: str) -> tuple[Operation, Operation | None] | None:
        """A create (POST to a collection, no path parameter) counting in `bucket` and the
        DELETE of what it creates (`<path>/{id}`) when the spec has one."""
        creates = [
            op
            for op in self.spec.operations
            if op.method == "post"
            and bucket in op.rate_buckets
            and not op.public
            and not self.path_params(op)
            and op.success_status == 201
        ]
        pairs = []
        for create in creates:
            delete = next(
                (
                    op
                    for op in self.spec.operations
                    if op.method == "delete"
                    and bucket in op.rate_buckets
                    and len(self.path_params(op)) == 1
                    and op.path == f"{create.path}/{{{self.path_params(op)[0]}}}"
                ),
                None,
            )
            generic = (create.resource or {}).get("op") == "create"
            pairs.append(((delete is None, not generic, create.path.count("/")), (create, delete)))
        pairs.sort(key=lambda p: p[0])
        return pairs[0][1] if pairs else None

    # -- bodies ----------------------------------------------------------------------------
    def example_body(self, op: Operation) -> dict[str, Any]:
        """The request example of the spec (the first one when there are several), else one
        built from the schema's required properties' examples / enums / defaults."""
        media = ((op.raw.get("requestBody") or {}).get("content") or {}).get("application/json") or {}
        if isinstance(media.get("example"), dict):
            return copy.deepcopy(media["example"])
        for ex in (media.get("examples") or {}).values():
            if isinstance(ex, dict) and isinstance(ex.get("value"), dict):
                return copy.deepcopy(ex["value"])
        schema = op.body_schema or {}
        body: dict[str, Any] = {}
        for name in schema.get("required", []):
            value = _schema_example(schema.get("properties", {}).get(name, {}))
            if value is not _MISSING:
                body[name] = value
        return body

    def new_body(self, op: Operation, label: str) -> dict[str, Any]:
        """The example body with a unique `name` (when the request schema has one)."""
        body = self.example_body(op)
        if "name" in (op.body_schema or {}).get("properties", {}):
            body["name"] = label
        return body

    # -- responses --------------------------------------------------------------------------
    def data(self, body: Any) -> Any:
        return dig(body, self.data_path)

    def items(self, body: Any) -> list[Any]:
        items = dig(body, self.items_path)
        return items if isinstance(items, list) else []

    def total(self, body: Any) -> int | None:
        total = dig(body, self.total_path)
        return total if isinstance(total, int) else None

    def error_code(self, body: Any) -> str | None:
        code = dig(body, self.error_code_path)
        return code if isinstance(code, str) else None

    def response(self, op: Operation, status: int) -> dict[str, Any] | None:
        return op.responses.get(str(status)) or op.responses.get(f"{str(status)[0]}XX")

    def documented_headers(self, op: Operation, status: int) -> set[str]:
        return {h.lower() for h in ((self.response(op, status) or {}).get("headers") or {})}

    def response_schema(self, op: Operation, status: int) -> dict[str, Any] | None:
        content = (self.response(op, status) or {}).get("content") or {}
        media = content.get("application/json") or {}
        schema = media.get("schema")
        return schema if isinstance(schema, dict) else None

    def page_params(self, page_index: int, size: int) -> dict[str, int]:
        """Query parameters of the `page_index`-th (0-based) page of `size` items."""
        style = self.pagination.get("style")
        if style == "page":
            return {"page": page_index + 1, "per_page": size}
        if style == "offset":
            return {"limit": size, "offset": page_index * size}
        return {}

    # -- URLs -------------------------------------------------------------------------------
    def base_url(self, url: str) -> str:
        """The API's base URL. A URL with a path is used as given (`.../nurosentrix/api/v1`,
        or a vendor's own base URL); a bare origin (`http://127.0.0.1:8080`) is taken as a
        sandbox and gets the API's mount path appended."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ContractError(f"not an http(s) URL: {url!r}")
        if parts.path in ("", "/"):
            return f"{parts.scheme}://{parts.netloc}{self.spec.base_path}"
        return url.rstrip("/")


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _schema_example(schema: dict[str, Any]) -> Any:
    for key in ("examples", "enum"):
        if isinstance(schema.get(key), list) and schema[key]:
            return schema[key][0]
    if "example" in schema:
        return schema["example"]
    if "default" in schema:
        return schema["default"]
    kind = schema.get("type")
    if kind == "string":
        return "x" * max(1, int(schema.get("minLength", 1)))
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1))
    if kind == "boolean":
        return True
    if kind == "object":
        return {}
    if kind == "array":
        return []
    return _MISSING
