"""What the spec promises, compiled once from its `x-` extensions (see specs/EXTENSIONS.md).

Nothing here knows about one API in particular: envelopes come from `x-sandbox.envelope`,
scopes from `x-scopes`, rate limits from `x-rate-limit` + `x-sandbox.rate-limits`, pagination
from `x-sandbox.pagination`, collections and their operations from `x-resources` /
`x-resource` (plus links and paths for operations served by handlers).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mock_server.spec import SpecError, deref  # the one $ref resolver: the spec layer knows no HTTP

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
SPECS_DIR = Path(__file__).resolve().parent.parent / "specs"
MISSING: Any = object()
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


class ContractError(Exception):
    """The spec cannot be read or lacks what the suite needs (a usage error: exit 2)."""


# ---------------------------------------------------------------------------------- envelopes
@dataclass(frozen=True)
class Template:
    """One `x-sandbox.envelope` template: where each placeholder sits and what shape it implies."""

    value: Any

    def locate(self, name: str) -> tuple[str, ...] | None:
        """The key path of placeholder `$name` (or `$name?`), None when the template lacks it."""

        def walk(node: Any, path: tuple[str, ...]) -> tuple[str, ...] | None:
            if isinstance(node, str) and node.startswith("$") and node[1:].rstrip("?") == name:
                return path
            if isinstance(node, dict):
                for k, v in node.items():
                    found = walk(v, (*path, k))
                    if found is not None:
                        return found
            return None

        return walk(self.value, ())

    def extract(self, body: Any, name: str) -> Any:
        path = self.locate(name)
        if path is None:
            return MISSING
        node = body
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return MISSING
            node = node[key]
        return node

    @property
    def top_keys(self) -> set[str]:
        return set(self.value) if isinstance(self.value, dict) else set()

    def problems(self, body: Any, vocabulary: frozenset[str] = frozenset()) -> list[str]:
        """Every way `body` departs from the template (empty: it conforms)."""
        out: list[str] = []
        _compare(self.value, body, "", out, vocabulary)
        return out


_INT_PLACEHOLDERS = {"page", "per_page", "total", "limit", "offset"}


def _compare(tpl: Any, body: Any, where: str, out: list[str], vocabulary: frozenset[str]) -> None:
    at = where or "body"
    if isinstance(tpl, str) and tpl.startswith("$"):
        name = tpl[1:].rstrip("?")
        if name == "items" and not isinstance(body, list):
            out.append(f"{at} should be the list of items (an array), got {_kind(body)}")
        elif name in _INT_PLACEHOLDERS and (not isinstance(body, int) or isinstance(body, bool) or body < 0):
            out.append(f"{at} should be a non-negative integer (${name}), got {body!r}")
        elif name in ("request_id", "message") and not (isinstance(body, str) and body):
            out.append(f"{at} should be a non-empty string (${name}), got {_kind(body)}")
        elif name == "timestamp" and not (isinstance(body, str) and _RFC3339.match(body)):
            out.append(f"{at} should be an RFC 3339 timestamp, got {body!r}")
        elif name == "code":
            if not isinstance(body, str):
                out.append(f"{at} should be the error code (a string), got {_kind(body)}")
            elif vocabulary and body not in vocabulary:
                out.append(f"{at} {body!r} is not in the API's error code vocabulary")
        elif name == "detail" and body is not None and not _is_problem(body):
            out.append(f"{at} should be a {{field, reason}} object or null, got {json.dumps(body)[:80]}")
        elif (
            name == "details"
            and body is not None
            and not (isinstance(body, list) and all(_is_problem(p) for p in body))
        ):
            out.append(
                f"{at} should be a list of {{field, reason}} objects or null, got {json.dumps(body)[:80]}"
            )
        return
    if isinstance(tpl, dict):
        if not isinstance(body, dict):
            out.append(f"{at} should be an object with keys {sorted(tpl)}, got {_kind(body)}")
            return
        for key, sub in tpl.items():
            optional = isinstance(sub, str) and sub.startswith("$") and sub.endswith("?")
            if key not in body:
                if not optional:
                    out.append(f"{at} is missing key {key!r}")
                continue
            _compare(sub, body[key], f"{where}.{key}" if where else key, out, vocabulary)
        extra = sorted(set(body) - set(tpl))
        if extra:
            out.append(f"{at} has keys the envelope does not define: {extra}")
        return
    if body != tpl:
        out.append(f"{at} should be {json.dumps(tpl)}, got {json.dumps(body)[:80]}")


def _is_problem(value: Any) -> bool:
    return isinstance(value, dict) and "reason" in value and "field" in value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


# --------------------------------------------------------------------------------- operations
@dataclass
class Operation:
    op_id: str
    method: str
    path: str
    raw: dict[str, Any] = field(repr=False)
    params: list[dict[str, Any]] = field(repr=False)
    public: bool
    scopes: list[str]
    buckets: list[str]
    resource: dict[str, Any] | None
    handler: str | None

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.path}"

    @property
    def path_params(self) -> list[dict[str, Any]]:
        return [p for p in self.params if p.get("in") == "path"]

    @property
    def responses(self) -> dict[str, Any]:
        return {str(k): v for k, v in (self.raw.get("responses") or {}).items()}

    def response(self, status: int) -> dict[str, Any] | None:
        r = self.responses
        return (
            r.get(str(status))
            or r.get(f"{str(status)[0]}XX")
            or r.get(f"{str(status)[0]}xx")
            or r.get("default")
        )

    def response_schema(self, status: int) -> dict[str, Any] | None:
        resp = self.response(status) or {}
        media = (resp.get("content") or {}).get("application/json") or {}
        schema = media.get("schema")
        return schema if isinstance(schema, dict) else None

    def response_examples(self, status: int) -> list[Any]:
        resp = self.response(status) or {}
        media = (resp.get("content") or {}).get("application/json") or {}
        found = [media["example"]] if "example" in media else []
        found += [e.get("value") for e in (media.get("examples") or {}).values() if isinstance(e, dict)]
        return found

    def response_headers(self, status: int) -> set[str]:
        return {h.lower() for h in ((self.response(status) or {}).get("headers") or {})}

    @property
    def success_statuses(self) -> list[int]:
        return sorted(int(c) for c in self.responses if c.isdigit() and c.startswith("2"))

    @property
    def body_schema(self) -> dict[str, Any] | None:
        body = self.raw.get("requestBody") or {}
        media = (body.get("content") or {}).get("application/json") or {}
        schema = media.get("schema")
        return schema if isinstance(schema, dict) else None

    @property
    def body_required(self) -> bool:
        return bool((self.raw.get("requestBody") or {}).get("required"))

    def body_example(self) -> Any:
        body = self.raw.get("requestBody") or {}
        media = (body.get("content") or {}).get("application/json") or {}
        if "example" in media:
            return media["example"]
        for e in (media.get("examples") or {}).values():
            if isinstance(e, dict) and "value" in e:
                return e["value"]
        return MISSING

    def links(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for code, resp in self.responses.items():
            if code.startswith("2") and isinstance(resp, dict):
                out.update(resp.get("links") or {})
        return out


@dataclass
class Resource:
    """One `x-resources` collection and the operations that act on it."""

    name: str
    config: dict[str, Any]
    schema: dict[str, Any]
    list_op: Operation | None = None
    get_op: Operation | None = None
    create_op: Operation | None = None
    update_op: Operation | None = None
    delete_op: Operation | None = None
    actions: list[Operation] = field(default_factory=list)  # every other operation under get_op's path

    @property
    def id_prefix(self) -> str | None:
        return (self.config.get("id") or {}).get("prefix")

    @property
    def parent(self) -> dict[str, Any] | None:
        for op in (self.create_op, self.list_op):
            if op is not None and op.resource and op.resource.get("parent"):
                return dict(op.resource["parent"])
        return None

    @property
    def status_field(self) -> str:
        return str((self.config.get("lifecycle") or {}).get("field", "status"))

    @property
    def transient_states(self) -> set[str]:
        return {t["from"] for t in (self.config.get("lifecycle") or {}).get("transitions", [])}

    def status_enum(self) -> list[Any]:
        prop = (self.schema.get("properties") or {}).get(self.status_field) or {}
        return list(prop.get("enum") or [])


@dataclass
class Contract:
    """Everything the domain checks need from one spec."""

    name: str
    raw: dict[str, Any] = field(repr=False)
    doc: dict[str, Any] = field(repr=False)
    config: dict[str, Any]
    operations: list[Operation]
    resources: dict[str, Resource]
    single: Template
    listing: Template
    error: Template
    vocabulary: frozenset[str]
    status_codes: dict[int, frozenset[str]]  # documented error codes per HTTP status (from examples)

    @property
    def scopes(self) -> list[str]:
        return list(self.config.get("scopes") or [])

    @property
    def pagination(self) -> dict[str, Any]:
        return dict(self.config.get("pagination") or {"style": "none"})

    @property
    def rate_limits(self) -> dict[str, dict[str, Any]]:
        return dict(self.config.get("rate-limits") or {})

    @property
    def token_prefixes(self) -> dict[str, str]:
        return dict(self.config.get("token-prefixes") or {})

    @property
    def auth_cookie(self) -> str | None:
        return self.config.get("auth-cookie")

    def op(self, method: str, path: str) -> Operation | None:
        for o in self.operations:
            if o.method == method.lower() and o.path == path:
                return o
        return None

    def by_id(self, op_id: str) -> Operation | None:
        return next((o for o in self.operations if o.op_id == op_id), None)

    def template_for(self, op: Operation | None, status: int) -> Template | None:
        """The envelope a response should have; None when the operation documents its own shape."""
        if status >= 400:
            return self.error
        if op is not None and op.resource and op.resource.get("op") == "list":
            return self.listing
        tpl = self.single
        if op is not None and tpl.top_keys:
            schema = op.response_schema(status) or {}
            if schema and not tpl.top_keys <= set(schema.get("properties") or {}):
                return None  # e.g. a raw `{regions: [...]}` reply, documented as such
        return tpl

    def error_code(self, body: Any) -> Any:
        return self.error.extract(body, "code")

    def error_message(self, body: Any) -> Any:
        return self.error.extract(body, "message")

    def codes_for(self, op: Operation | None, status: int) -> frozenset[str]:
        """Error codes the spec documents for `status` on `op` (or anywhere), empty if none."""
        if op is not None:
            codes = {c for ex in op.response_examples(status) if isinstance(c := self.error_code(ex), str)}
            if codes:
                return frozenset(codes)
        return self.status_codes.get(status, frozenset())


def _scalar_enum(schema: Any, path: tuple[str, ...]) -> set[str]:
    node = schema
    for key in path:
        if not isinstance(node, dict):
            return set()
        node = (node.get("properties") or {}).get(key)
    if not isinstance(node, dict):
        return set()
    return {v for v in node.get("enum") or [] if isinstance(v, str)}


def _compile(
    path: str, method: str, op: dict[str, Any], item: dict[str, Any], root_security: Any
) -> Operation:
    params: dict[tuple[str, str], dict[str, Any]] = {}
    for p in [*(item.get("parameters") or []), *(op.get("parameters") or [])]:
        params[(p["name"], p["in"])] = p
    security = op.get("security", root_security)
    return Operation(
        op_id=op.get("operationId", f"{method} {path}"),
        method=method,
        path=path,
        raw=op,
        params=list(params.values()),
        public=security == [] or security == [{}],
        scopes=list(op.get("x-scopes") or []),
        buckets=list(op.get("x-rate-limit") or []),
        resource=op.get("x-resource"),
        handler=op.get("x-handler"),
    )


def build(raw: dict[str, Any]) -> Contract:
    if not isinstance(raw, dict) or "x-sandbox" not in raw:
        raise ContractError("the spec has no x-sandbox extension: the suite needs its envelope and limits")
    try:
        doc = deref(raw, raw)
    except (SpecError, KeyError, TypeError) as exc:
        raise ContractError(f"the spec's $refs cannot be resolved: {exc}") from None
    config = doc["x-sandbox"]
    envelope = config.get("envelope") or {}
    for kind in ("single", "list", "error"):
        if kind not in envelope:
            raise ContractError(f"x-sandbox.envelope.{kind} is missing")
    operations = [
        _compile(p, m, item[m], item, doc.get("security", []))
        for p, item in (doc.get("paths") or {}).items()
        for m in HTTP_METHODS
        if isinstance(item, dict) and m in item
    ]
    error = Template(envelope["error"])
    code_path = error.locate("code")
    vocabulary: set[str] = set()
    by_status: dict[int, set[str]] = {}
    for op in operations:
        for code in op.responses:
            if not (code.isdigit() and int(code) >= 400):
                continue
            if code_path is not None:
                vocabulary |= _scalar_enum(op.response_schema(int(code)), code_path)
            for ex in op.response_examples(int(code)):
                value = error.extract(ex, "code")
                if isinstance(value, str):
                    by_status.setdefault(int(code), set()).add(value)
                    vocabulary.add(value)
    contract = Contract(
        name=str(config.get("api", "api")),
        raw=raw,
        doc=doc,
        config=config,
        operations=operations,
        resources={},
        single=Template(envelope["single"]),
        listing=Template(envelope["list"]),
        error=error,
        vocabulary=frozenset(vocabulary),
        status_codes={k: frozenset(v) for k, v in by_status.items()},
    )
    contract.resources = _resources(contract, doc)
    return contract


def _resources(contract: Contract, doc: dict[str, Any]) -> dict[str, Resource]:
    schemas = (doc.get("components") or {}).get("schemas") or {}
    out = {
        name: Resource(name, conf, schemas.get(conf.get("schema"), {}))
        for name, conf in (doc.get("x-resources") or {}).items()
    }
    for op in contract.operations:
        xr = op.resource or {}
        res = out.get(xr.get("name", ""))
        if res is None:
            continue
        kind = xr.get("op")
        if kind == "list":
            res.list_op = op
        elif kind == "get":
            res.get_op = op
        elif kind == "create":
            res.create_op = op
        elif kind == "update":
            res.update_op = op
        elif kind == "delete":
            res.delete_op = op
    for res in out.values():
        if res.create_op is None:
            res.create_op = _handler_create(contract, res)
        if res.get_op is not None:
            if res.delete_op is None:
                res.delete_op = contract.op("delete", res.get_op.path)
            if res.update_op is None:
                res.update_op = contract.op("patch", res.get_op.path)
            prefix = res.get_op.path + "/"
            res.actions = [o for o in contract.operations if o.path.startswith(prefix)]
    return out


def _handler_create(contract: Contract, res: Resource) -> Operation | None:
    """A POST served by a handler that creates `res`: on its list path, else one linking to its get."""
    if res.list_op is not None:
        op = contract.op("post", res.list_op.path)
        if op is not None and not (op.resource and op.resource.get("name") != res.name):
            return op
    if res.get_op is not None:
        for op in contract.operations:
            if (
                op.method == "post"
                and not op.path.startswith(res.get_op.path)
                and any(link.get("operationId") == res.get_op.op_id for link in op.links().values())
            ):
                return op
    return None


def load(api: str | None, spec: str | None = None) -> Contract:
    """From `--spec` (a file or URL) or `specs/<api>.yaml`."""
    raw: Any
    if spec and re.match(r"^https?://", spec):
        import httpx

        try:
            r = httpx.get(spec, timeout=30)
            r.raise_for_status()
        except httpx.HTTPError as exc:
            raise ContractError(f"cannot fetch the spec {spec}: {exc}") from None
        raw = yaml.safe_load(r.text)
    else:
        path = Path(spec) if spec else SPECS_DIR / f"{api}.yaml"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in SPECS_DIR.glob("*.yaml")))
            raise ContractError(f"no spec at {path} (known APIs: {known})")
        raw = yaml.safe_load(path.read_text())
    contract = build(raw)
    if api and contract.name != api:
        raise ContractError(f"the spec is for {contract.name!r}, not {api!r}")
    return contract
