"""The compiled contract of one API: what the engine serves, the conformance suite checks and
the load suite drives, read once from the spec (see `compile.py`). Every element carries its
provenance: documented, or inferred with the spec's reason."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .envelope import MISSING, Template
from .extensions import (
    ActionSet,
    Counter,
    Credential,
    Event,
    Lifecycle,
    Parent,
    Requirement,
    ResourceOp,
    Signature,
)
from .extensions import cascade as _cascade
from .extensions import lifecycle as _lifecycle
from .extensions import masked as _masked
from .provenance import DOCUMENTED, Provenance


@dataclass(frozen=True)
class Param:
    name: str
    location: str  # path | query | header | cookie
    required: bool
    schema: dict[str, Any] = field(hash=False, compare=False)
    provenance: Provenance = DOCUMENTED


@dataclass(frozen=True)
class Header:
    name: str  # as the spec spells it
    schema: dict[str, Any] = field(hash=False, compare=False)
    required: bool = False
    provenance: Provenance = DOCUMENTED


@dataclass(frozen=True, eq=False)
class Response:
    """One documented response of an operation (`status` as the spec keys it: `201`, `4XX`, `default`)."""

    status: str
    description: str
    media_types: tuple[str, ...]
    schema: dict[str, Any] | None  # the application/json schema
    headers: Mapping[str, Header]  # by lower-case name
    examples: tuple[Any, ...]  # application/json `example` then `examples.*.value`
    links: Mapping[str, dict[str, Any]]
    provenance: Provenance = DOCUMENTED
    # the same examples by name: `examples.<name>.value` by its key, a lone `example` as "example"
    named_examples: Mapping[str, Any] = field(default_factory=dict)
    # x-stated-code: the document shows this very body for this very status, so the error code of
    # its examples is a promise, not an illustration (the documented view keeps it)
    stated_code: bool = False

    @property
    def has_body(self) -> bool:
        return bool(self.media_types)


@dataclass(frozen=True)
class Bucket:
    """A named rate limit (`x-sandbox.rate-limits`): at most `limit` requests in any `window` s."""

    name: str
    limit: int
    window: float
    provenance: Provenance = DOCUMENTED
    algorithm: str = "sliding-window"  # | fixed-window | token-bucket (refill limit/window, burst)
    burst: int | None = None  # token-bucket: its capacity (default: limit)

    def describe(self) -> str:
        return f"{self.limit} per {format_seconds(self.window)}"


def format_seconds(x: float) -> str:
    return f"{int(x)} s" if float(x).is_integer() else f"{x:g} s"


@dataclass(frozen=True)
class Pagination:
    """`x-sandbox.pagination`: page (page/per_page) | offset (limit/offset) | none."""

    style: str
    default: int | None = None
    max: int | None = None
    provenance: Provenance = DOCUMENTED

    @property
    def size_param(self) -> str | None:
        return {"page": "per_page", "offset": "limit"}.get(self.style)

    def params(self, page_index: int, size: int) -> dict[str, int]:
        """Query parameters of the `page_index`-th (0-based) page of `size` items."""
        if self.style == "page":
            return {"page": page_index + 1, "per_page": size}
        if self.style == "offset":
            return {"limit": size, "offset": page_index * size}
        return {}


@dataclass(eq=False)
class Operation:
    """One operation: routing, auth, limits, validation, dispatch, documented responses."""

    operation_id: str
    method: str
    path: str
    regex: re.Pattern[str]
    params: tuple[Param, ...]
    body_schema: dict[str, Any] | None
    body_required: bool
    body_examples: tuple[Any, ...]
    body_media: tuple[str, ...]  # requestBody.content: the media types a body may be sent as
    public: bool
    scopes: tuple[str, ...]
    buckets: tuple[Bucket, ...]
    resource: ResourceOp | None  # `x-resource`
    handler: str | None  # `x-handler`
    responses: dict[str, Response]
    description: str
    provenance: Provenance = DOCUMENTED
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    signature: Signature | None = None  # `x-signature`
    credential: Credential | None = None  # `x-credential`
    quota: tuple[Counter, ...] = ()  # `x-quota`
    generated: tuple[str, ...] = ()  # `x-generated`
    identity: str | None = None  # `x-identity`: the response field naming the caller
    requires: Mapping[str, Requirement] = field(default_factory=dict)  # `x-requires`
    action: ActionSet | None = None  # `x-action`
    events: tuple[Event, ...] = ()  # `x-events`: what a delivery of each body example does

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.path}"

    @cached_property
    def rate_buckets(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.buckets)

    @cached_property
    def path_params(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if p.location == "path")

    def response(self, status: int | str) -> Response | None:
        code = str(status)
        r = self.responses
        return r.get(code) or r.get(f"{code[0]}XX") or r.get(f"{code[0]}xx") or r.get("default")

    def response_schema(self, status: int | str) -> dict[str, Any] | None:
        resp = self.response(status)
        return resp.schema if resp is not None else None

    def response_examples(self, status: int | str) -> list[Any]:
        resp = self.response(status)
        return list(resp.examples) if resp is not None else []

    def response_headers(self, status: int | str) -> set[str]:
        resp = self.response(status)
        return set(resp.headers) if resp is not None else set()

    def documents(self, status: int) -> bool:
        """Whether this operation documents `status`: exactly, or in a range (`4XX`)."""
        code = str(status)
        r = self.responses
        return code in r or f"{code[0]}XX" in r or f"{code[0]}xx" in r

    @cached_property
    def documented_statuses(self) -> frozenset[int]:
        return frozenset(int(c) for c in self.responses if c.isdigit())

    @cached_property
    def success_statuses(self) -> list[int]:
        return sorted(int(c) for c in self.responses if c.isdigit() and c.startswith("2"))

    @property
    def success_status(self) -> int:
        return self.success_statuses[0] if self.success_statuses else 200

    def body_example(self) -> Any:
        """The documented request example (the first one), MISSING when there is none."""
        return self.body_examples[0] if self.body_examples else MISSING

    def links(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for code, resp in self.responses.items():
            if code.startswith("2"):
                out.update(resp.links)
        return out


@dataclass(eq=False)
class Resource:
    """One `x-resources` collection (its extension entry, validated) and the operations on it."""

    name: str
    config: dict[str, Any]
    schema: dict[str, Any]
    list_op: Operation | None = None
    get_op: Operation | None = None
    create_op: Operation | None = None
    update_op: Operation | None = None
    delete_op: Operation | None = None
    actions: list[Operation] = field(default_factory=list)  # every other operation under get_op's path

    @cached_property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.schema.get("properties") or {})

    @property
    def id_prefix(self) -> str | None:
        return (self.config.get("id") or {}).get("prefix")

    @property
    def id_style(self) -> str:
        return str((self.config.get("id") or {}).get("style", "short"))

    @property
    def filters(self) -> dict[str, str]:
        return dict(self.config.get("filters") or {})

    @property
    def unique(self) -> list[str]:
        return list(self.config.get("unique") or [])

    @property
    def belongs_to(self) -> dict[str, str]:
        return dict(self.config.get("belongs-to") or {})

    @property
    def defaults(self) -> dict[str, Any]:
        """Set on create when the body omits them."""
        return dict(self.config.get("defaults") or {})

    @property
    def generate(self) -> dict[str, Any]:
        """Field -> how the sandbox generates it on create (ipv4, now, uuid, secret, hostname, null)."""
        return dict(self.config.get("generate") or {})

    @cached_property
    def lifecycle(self) -> Lifecycle | None:
        return _lifecycle(self.config.get("lifecycle"))

    @cached_property
    def masked(self) -> Mapping[str, str]:
        """`masked`: field -> what every response shows in its place."""
        return _masked(self.config.get("masked"))

    @cached_property
    def cascade(self) -> tuple[str, ...]:
        """`cascade`: the child collections a delete is documented to delete."""
        return _cascade(self.config.get("cascade"))

    @property
    def parent(self) -> Parent | None:
        for op in (self.create_op, self.list_op):
            if op is not None and op.resource is not None and op.resource.parent is not None:
                return op.resource.parent
        return None

    @property
    def status_field(self) -> str:
        return self.lifecycle.field if self.lifecycle else "status"

    @property
    def transient_states(self) -> set[str]:
        return {t.source for t in self.lifecycle.transitions} if self.lifecycle else set()

    def status_enum(self) -> list[Any]:
        prop = (self.schema.get("properties") or {}).get(self.status_field) or {}
        return list(prop.get("enum") or [])


@dataclass(eq=False)
class Contract:
    """One API's spec, compiled: the engine, the conformance suite and the load suite all read
    this object (and nothing else of the spec)."""

    name: str  # x-sandbox.api: the sandbox's mount name
    title: str
    version: str
    server_url: str  # servers[0].url, the vendor's base URL
    base_path: str  # where the sandbox serves it: /<api> + the server URL's path
    raw: dict[str, Any] = field(repr=False)  # the spec as written (Schemathesis loads it)
    schemas: dict[str, dict[str, Any]] = field(repr=False)  # components/schemas, $refs inlined
    token_prefixes: dict[str, str] = field(default_factory=dict)
    scopes: tuple[str, ...] = ()
    scopes_provenance: Provenance = DOCUMENTED  # x-sandbox.scopes-inferred: the names are our choice
    media_provenance: Provenance = DOCUMENTED  # x-sandbox.media-inferred: refusing other body types is ours
    status_table: dict[int, str] = field(default_factory=dict)  # x-sandbox.status-table: status -> meaning
    modes_provenance: Provenance = DOCUMENTED  # x-sandbox.modes-inferred: test/live data apart is ours
    buckets: dict[str, Bucket] = field(default_factory=dict)
    pagination: Pagination = field(default_factory=lambda: Pagination("none"))
    single: Template = field(default_factory=lambda: Template("$data"))
    listing: Template = field(default_factory=lambda: Template("$items"))
    error: Template = field(default_factory=lambda: Template({"code": "$code", "message": "$message"}))
    auth_cookie: str | None = None
    bearer_schemes: tuple[str, ...] = ()  # components.securitySchemes of type http, scheme bearer
    operations: list[Operation] = field(default_factory=list)
    resources: dict[str, Resource] = field(default_factory=dict)
    vocabulary: frozenset[str] = frozenset()  # every error code the spec names (enums, examples)
    status_codes: dict[int, frozenset[str]] = field(default_factory=dict)  # error codes per status
    view: str = "full"  # or "documented": only what the vendor documents say (`documented.py`)

    compile_view: Callable[[], Contract] | None = field(default=None, repr=False)  # set by compile

    @cached_property
    def documented(self) -> Contract:
        """This contract's documented view: judge a backend by it, and by nothing inferred."""
        if self.view == "documented" or self.compile_view is None:
            return self
        return self.compile_view()

    # -- lookup ---------------------------------------------------------------------------
    @cached_property
    def _by_id(self) -> dict[str, Operation]:
        return {o.operation_id: o for o in self.operations}

    def by_id(self, operation_id: str) -> Operation | None:
        return self._by_id.get(operation_id)

    def op(self, method: str, path: str) -> Operation | None:
        for o in self.operations:
            if o.method == method.lower() and o.path == path:
                return o
        return None

    def schema(self, name: str) -> dict[str, Any]:
        return self.schemas[name]

    def status_for(self, meaning: str) -> int | None:
        """The status the documents' table gives a refusal (`invalid-parameters`, ...), if any."""
        return next((code for code, m in self.status_table.items() if m == meaning), None)

    @cached_property
    def paths(self) -> list[tuple[str, list[Operation]]]:
        """Operations grouped by path template, most specific (fewest parameters) first."""
        grouped: dict[str, list[Operation]] = {}
        for op in sorted(self.operations, key=lambda o: o.path.count("{")):
            grouped.setdefault(op.path, []).append(op)
        return list(grouped.items())

    @cached_property
    def _static_paths(self) -> dict[str, list[Operation]]:
        return {t: ops for t, ops in self.paths if "{" not in t}

    @cached_property
    def _templated_paths(self) -> list[tuple[str, list[Operation]]]:
        return [(t, ops) for t, ops in self.paths if "{" in t]

    def match(self, method: str, path: str) -> tuple[Operation | None, dict[str, str], list[str]]:
        """Find the operation; returns (op, path params, allowed methods of the path if any).

        The most specific path template that matches decides (`/nodes/join-token` before
        `/nodes/{id}`), so a 405's `Allow` lists exactly that path's methods."""
        ops = self._static_paths.get(path)
        if ops is not None:  # a template without parameters is matched by its text alone
            for op in ops:
                if op.method == method:
                    return op, {}, []
            return None, {}, [op.method.upper() for op in ops]
        for _template, ops in self._templated_paths:
            m = ops[0].regex.fullmatch(path)
            if m is None:
                continue
            for op in ops:
                if op.method == method:
                    return op, m.groupdict(), []
            return None, {}, [op.method.upper() for op in ops]
        return None, {}, []

    # -- envelopes --------------------------------------------------------------------------
    @property
    def templates(self) -> dict[str, Template]:
        return {"single": self.single, "list": self.listing, "error": self.error}

    def template_for(self, op: Operation | None, status: int) -> Template | None:
        """The envelope a response should have; None when the operation documents its own shape."""
        if status >= 400:  # None: the documents never promise this status a body
            return None if status in self.error.unpromised else self.error
        if op is not None and op.resource is not None and op.resource.op == "list":
            return self.listing
        tpl = self.single
        if op is not None and tpl.top_keys:
            schema = op.response_schema(status) or {}
            if schema and not tpl.top_keys <= set(schema.get("properties") or {}):
                return None  # e.g. a raw `{regions: [...]}` reply, documented as such
        return tpl

    def data(self, body: Any) -> Any:
        value = self.single.extract(body, "data")
        return None if value is MISSING else value

    def items(self, body: Any) -> list[Any]:
        value = self.listing.extract(body, "items")
        return value if isinstance(value, list) else []

    def total(self, body: Any) -> int | None:
        value = self.listing.extract(body, "total")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def error_code(self, body: Any) -> Any:
        return self.error.extract(body, "code")

    def error_message(self, body: Any) -> Any:
        return self.error.extract(body, "message")

    def codes_for(self, op: Operation | None, status: int) -> frozenset[str]:
        """Error codes the spec's examples show for `status` on `op` (or anywhere), empty if none.
        The documented view expects none (the documents' examples illustrate, they close no list)
        but where the response is `x-stated-code`: the document shows that body for that status."""
        exact = op.responses.get(str(status)) if op is not None else None
        if self.view == "documented":  # only where the document states the body for this status
            if exact is None or not exact.stated_code:
                return frozenset()
            return frozenset(c for ex in exact.examples if isinstance(c := self.error_code(ex), str))
        if exact is not None:  # a range (4XX) or default response documents no code for one status
            codes = {c for ex in exact.examples if isinstance(c := self.error_code(ex), str)}
            if codes:
                return frozenset(codes)
        return self.status_codes.get(status, frozenset())

    def buckets_of(self, op: Operation) -> tuple[Bucket, ...]:
        return op.buckets
