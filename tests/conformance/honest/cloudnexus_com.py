"""CloudNexus v1.4.2 (api.cloudnexus.com), written from document 002.

Documented, and done so: base path `/v1`; `Authorization: Bearer cn_live_sk_...` API keys;
`{"status": "success", "data": ..., "meta": {"request_id", "timestamp"}}` on every success;
`POST /servers` (name, plan, region required; image defaults to ubuntu-22.04; ssh_keys) answering
`201` with the server `provisioning` and an `ipv4`, provisioned asynchronously (`active` after
`delay` seconds); `GET /servers` with `page`, `per_page` (default 20, max 100) and `status`
(active, provisioning, suspended); `POST /databases` (engine postgresql/mysql/redis/mongodb,
version, plan, name, region); the status codes of the error table: 400 for missing or invalid
parameters, 401, 403 "Insufficient permissions for this action.", 404, 429, 500.

Choices where the document is silent:
- keys carry a role: `full` or `read_only` (403 for a write with a read-only key); test keys are
  `cn_test_sk_` and see their own data;
- errors are `{"status": "error", "error": {"code", "message", "param"?}, "meta"}` with lowercase
  codes (`invalid_parameter`, `unauthorized`, `forbidden`, `not_found`, `conflict`,
  `rate_limited`, `server_error`);
- `per_page` above 100 is capped; list `meta` adds `total_pages`;
- 300 requests per minute per key, announced with the IETF draft headers
  `RateLimit-Policy: "default";q=300;w=60` and `RateLimit: "default";r=..;t=..`, `Retry-After` on 429;
- the response to `POST /servers` leaves out `ssh_keys`, as the document's example does;
- `GET` and `DELETE /servers/{id}` exist; DELETE answers `200` with `{id, deleted: true}` in the envelope;
- databases: `creating` then `available` with an `endpoint`; versions postgresql 14-16, mysql 8.0,
  redis 7, mongodb 6.0/7.0 (`15.4` runs under 15), others 400 on `version`; a database `name` is
  unique per account (409 `conflict`); `GET /databases` and `GET /databases/{id}` exist, DELETE is 405.
"""

from __future__ import annotations

import math
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.conformance.honest.common import (
    Clock,
    HttpError,
    MovingWindow,
    Store,
    TestTokens,
    Token,
    Tokens,
    bearer,
    ceil_seconds,
    check_limits,
    iso,
    json_body,
    json_response,
    merge_routes,
    new_id,
    query_int,
)

DEFECTS = ("readonly-can-delete", "total-counts-other-accounts", "ignored-filter", "enum-500")
ROLES = ("read", "write")
SERVER_STATUSES = ("active", "provisioning", "suspended")
VERSIONS = {
    "postgresql": ("14", "15", "16"),
    "mysql": ("8.0",),
    "redis": ("7",),
    "mongodb": ("6.0", "7.0"),
}
LIMIT = 300


@dataclass
class Backend:
    window: float
    clock: Clock
    delay: float
    limit: int
    defect: str | None
    tokens: Tokens = field(
        default_factory=lambda: Tokens({"live": "cn_live_sk_", "test": "cn_test_sk_"}, ROLES)
    )
    store: Store = field(default_factory=Store)
    limiter: MovingWindow = field(init=False)

    def __post_init__(self) -> None:
        self.limiter = MovingWindow(self.clock)

    def mint(self, account: str = "acme", read_only: bool = False, mode: str = "live") -> str:
        return self.tokens.mint(account, ("read",) if read_only else ROLES, mode)

    def test_tokens(self, mode: str = "live") -> TestTokens:
        return TestTokens(
            self.mint("acme", mode=mode), self.mint("acme", True, mode), self.mint("globex", mode=mode)
        )

    def meta(self, request: Request) -> dict[str, Any]:
        return {"request_id": request.state.request_id, "timestamp": iso(time.time())}

    def ok(self, request: Request, data: Any, status: int = 200, **extra: Any) -> Response:
        return json_response(
            {"status": "success", "data": data, "meta": {**self.meta(request), **extra}}, status
        )

    def error(self, request: Request, exc: HttpError) -> Response:
        err: dict[str, Any] = {"code": exc.code, "message": exc.message}
        if exc.details:
            err["param"] = exc.details
        return json_response(
            {"status": "error", "error": err, "meta": self.meta(request)}, exc.status, exc.headers
        )

    def principal(self, request: Request) -> Token:
        token = self.tokens.get(bearer(request))
        if token is None:
            raise HttpError(401, "unauthorized", "Invalid or missing API key.")
        return token

    def write(self, token: Token) -> None:
        if "write" not in token.scopes:
            raise HttpError(403, "forbidden", "Insufficient permissions for this action.")

    def coll(self, token: Token, name: str) -> dict[str, dict[str, Any]]:
        return self.store.coll(token.account, token.mode, name)

    def settle(self, record: dict[str, Any]) -> dict[str, Any]:
        if self.clock() - record["_since"] >= self.delay:
            if record["_kind"] == "server" and record["status"] == "provisioning":
                record["status"] = "active"
            elif record["_kind"] == "database" and record["status"] == "creating":
                record.update(status="available", endpoint=f"{record['id']}.db.cloudnexus.com")
        return record

    def public(self, record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in self.settle(record).items() if not k.startswith("_")}

    def get(self, token: Token, name: str, rid: str) -> dict[str, Any]:
        record = self.coll(token, name).get(rid)
        if record is None:
            raise HttpError(404, "not_found", "The requested resource does not exist.")
        return record

    def page(self, request: Request, records: list[dict[str, Any]], total: int | None = None) -> Response:
        page = query_int(request, "page", 1, 1)
        per_page = min(query_int(request, "per_page", 20, 1), 100)
        count = len(records) if total is None else total
        chunk = [self.public(r) for r in records[(page - 1) * per_page : page * per_page]]
        pages = max(1, math.ceil(count / per_page))
        return self.ok(request, chunk, page=page, per_page=per_page, total=count, total_pages=pages)


def invalid(param: str, message: str) -> HttpError:
    return HttpError(400, "invalid_parameter", message, param)


def strings(body: Any, required: tuple[str, ...], optional: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid("body", "Missing or invalid parameters.")
    for name in required:
        if not isinstance(body.get(name), str) or not body[name].strip():
            raise invalid(name, f"{name} is required and must be a non-empty string.")
    for name in optional:
        if name in body and not isinstance(body[name], str):
            raise invalid(name, f"{name} must be a string.")
    return {k: body[k] for k in (*required, *optional) if k in body}


Handler = Callable[[Request, Backend, Token], Awaitable[Response]]


def endpoint(b: Backend, handler: Handler) -> Any:
    async def run(request: Request) -> Response:
        request.state.request_id = f"req_{uuid.uuid4().hex[:12]}"
        decision = None
        try:
            token = b.principal(request)
            decision, refused = check_limits(b.limiter, token.value, [("default", b.limit, b.window)])
            if refused is not None:
                retry = ceil_seconds(refused.reset_in)
                raise HttpError(
                    429,
                    "rate_limited",
                    "Rate limit exceeded. Back off and retry.",
                    None,
                    {"Retry-After": str(retry)},
                )
            response = await handler(request, b, token)
        except HttpError as exc:
            response = b.error(request, exc)
        except Exception:
            response = b.error(
                request, HttpError(500, "server_error", "Something went wrong on CloudNexus's end.")
            )
        if decision is not None:
            response.headers["RateLimit-Policy"] = f'"default";q={b.limit};w={math.ceil(b.window)}'
            response.headers["RateLimit"] = (
                f'"default";r={decision.remaining};t={math.ceil(decision.reset_in)}'
            )
        return response

    return run


async def create_server(request: Request, b: Backend, t: Token) -> Response:
    b.write(t)
    body = await json_body(request, code="invalid_parameter")
    fields = strings(body, ("name", "plan", "region"), ("image",))
    keys = body.get("ssh_keys", [])
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise invalid("ssh_keys", "ssh_keys must be an array of strings.")
    sid = new_id("srv_", 7)
    b.coll(t, "servers")[sid] = {
        "id": sid,
        "name": fields["name"],
        "plan": fields["plan"],
        "region": fields["region"],
        "image": fields.get("image", "ubuntu-22.04"),
        "status": "provisioning",
        "ipv4": f"192.168.10.{secrets.randbelow(250) + 2}",
        "created_at": iso(time.time()),
        "_ssh_keys": keys,
        "_kind": "server",
        "_since": b.clock(),
    }
    return b.ok(request, b.public(b.coll(t, "servers")[sid]), 201)


async def list_servers(request: Request, b: Backend, t: Token) -> Response:
    status = request.query_params.get("status")
    if status is not None and status not in SERVER_STATUSES:
        raise invalid("status", "status must be one of active, provisioning, suspended.")
    records = [b.settle(r) for r in b.coll(t, "servers").values()]
    if status is not None and b.defect != "ignored-filter":
        records = [r for r in records if r["status"] == status]
    total = len(b.store.everyone(t.mode, "servers")) if b.defect == "total-counts-other-accounts" else None
    return b.page(request, records, total)


async def get_server(request: Request, b: Backend, t: Token) -> Response:
    return b.ok(request, b.public(b.get(t, "servers", request.path_params["id"])))


async def delete_server(request: Request, b: Backend, t: Token) -> Response:
    if b.defect != "readonly-can-delete":
        b.write(t)
    sid = request.path_params["id"]
    b.get(t, "servers", sid)
    del b.coll(t, "servers")[sid]
    return b.ok(request, {"id": sid, "deleted": True})


async def create_database(request: Request, b: Backend, t: Token) -> Response:
    b.write(t)
    body = await json_body(request, code="invalid_parameter")
    if not isinstance(body, dict):
        raise invalid("body", "Missing or invalid parameters.")
    engine: Any = body.get("engine")
    if b.defect == "enum-500":
        engine = engine.lower()  # crashes on a non-string: the planted defect
    if not isinstance(engine, str) or engine not in VERSIONS:  # a dict is unhashable: refuse, never crash
        raise invalid("engine", "engine must be one of postgresql, mysql, redis, mongodb.")
    fields = strings(body, ("version", "plan", "name", "region"), ())
    version = fields["version"]
    if not any(version == v or version.startswith(v + ".") for v in VERSIONS[engine]):
        raise invalid("version", f"{engine} {version} is not offered.")
    databases = b.coll(t, "databases")
    if any(d["name"] == fields["name"] for d in databases.values()):
        raise HttpError(409, "conflict", f"A database named {fields['name']} already exists.", "name")
    did = new_id("db_", 8)
    databases[did] = {
        "id": did,
        **fields,
        "engine": engine,
        "status": "creating",
        "endpoint": None,
        "created_at": iso(time.time()),
        "_kind": "database",
        "_since": b.clock(),
    }
    return b.ok(request, b.public(databases[did]), 201)


async def list_databases(request: Request, b: Backend, t: Token) -> Response:
    return b.page(request, [b.settle(r) for r in b.coll(t, "databases").values()])


async def get_database(request: Request, b: Backend, t: Token) -> Response:
    return b.ok(request, b.public(b.get(t, "databases", request.path_params["id"])))


def make_app(
    window: float = 60.0,
    *,
    clock: Clock | None = None,
    delay: float = 5.0,
    defect: str | None = None,
    limit: int = LIMIT,
) -> Starlette:
    """The backend; `app.state.backend.test_tokens()` mints keys. `window`: the rate-limit window
    in seconds and `limit` the requests a key may make in it (a choice: the
    document gives no number); `delay`: seconds until provisioning settles."""
    if defect is not None and defect not in DEFECTS:
        raise ValueError(f"unknown defect {defect!r}")
    b = Backend(window, clock or time.monotonic, delay, limit, defect)

    def r(path: str, handler: Handler, method: str) -> Route:
        return Route("/v1" + path, endpoint(b, handler), methods=[method])

    routes = [
        r("/servers", create_server, "POST"),
        r("/servers", list_servers, "GET"),
        r("/servers/{id}", get_server, "GET"),
        r("/servers/{id}", delete_server, "DELETE"),
        r("/databases", create_database, "POST"),
        r("/databases", list_databases, "GET"),
        r("/databases/{id}", get_database, "GET"),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        request.state.request_id = f"req_{uuid.uuid4().hex[:12]}"
        code = {404: "not_found", 405: "method_not_allowed"}.get(status, "server_error")
        response = b.error(
            request,
            HttpError(
                status,
                code,
                "The requested resource does not exist." if status == 404 else "Method not allowed.",
            ),
        )
        response.headers.update(getattr(exc, "headers", None) or {})  # 405 carries Allow
        return response

    app = Starlette(routes=merge_routes(routes), exception_handlers={HTTPException: http_error})
    app.state.backend = b
    return app
