"""CloudNexus (api.cloudnexus.io), written from document 003.

Documented, and done so: base path `/v1`; `Authorization: Bearer <personal access token>`;
`GET /instances` with `limit` (default 20, max 100), `offset` and `region`, answering `200`
`{"data": [...], "meta": {"total", "limit", "offset"}}` with the instances of the caller's
organisation; `POST /instances` (name, region, plan starter/pro/enterprise required; image
defaulting to ubuntu-22.04; ssh_keys) returning the instance object; `GET /regions` answering
`{"regions": [{slug, name, status, avg_latency_ms, capacity}]}`; the Instance schema (id a
UUID, name, status pending/provisioning/running/stopped/terminated, region, public_ip or null,
specs {cpu, ram_gb, disk_gb}, created_at ISO 8601) and the ErrorResponse schema
(`{"error": {"code", "message", "details": array | null}}`).

Choices where the document is silent:
- no permissions (a token can do everything: there is no 403) and no rate limit at all;
- validation errors are `422 VALIDATION_ERROR` with `details: [{"field", "message"}]`; an
  unknown region or one without capacity is `422 INVALID_REGION`;
- `limit` above 100 is capped to 100;
- `POST /instances` answers `201`; a new instance is `pending`, `provisioning` after `delay`
  seconds and `running` with a `public_ip` after twice that;
- `GET /instances/{id}` exists; `DELETE /instances/{id}` answers `200` with the instance,
  `terminated`, and it is gone afterwards (404).
"""

from __future__ import annotations

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
    Store,
    TestTokens,
    Token,
    Tokens,
    bearer,
    iso,
    json_body,
    json_response,
    merge_routes,
    query_int,
)

DEFECTS = ("total-counts-other-accounts", "ignored-filter", "enum-500")
PLANS = {"starter": (1, 2, 40), "pro": (2, 4, 80), "enterprise": (8, 32, 400)}
REGIONS = [
    {
        "slug": "us-east-1",
        "name": "Virginia, US",
        "status": "healthy",
        "avg_latency_ms": 12,
        "capacity": True,
    },
    {"slug": "eu-west-2", "name": "London, UK", "status": "healthy", "avg_latency_ms": 45, "capacity": True},
    {
        "slug": "ap-south-1",
        "name": "Mumbai, IN",
        "status": "degraded",
        "avg_latency_ms": 180,
        "capacity": False,
    },
]


@dataclass
class Backend:
    clock: Clock
    delay: float
    defect: str | None
    tokens: Tokens = field(default_factory=lambda: Tokens({"live": "pat_", "test": "pat_test_"}))
    store: Store = field(default_factory=Store)

    def mint(self, account: str = "acme", mode: str = "live") -> str:
        return self.tokens.mint(account, (), mode)

    def test_tokens(self, mode: str = "live") -> TestTokens:
        """The document has no permissions: the limited token can do what the full one can."""
        return TestTokens(self.mint("acme", mode), self.mint("acme", mode), self.mint("globex", mode))

    def coll(self, token: Token) -> dict[str, dict[str, Any]]:
        return self.store.coll(token.account, token.mode, "instances")

    def settle(self, record: dict[str, Any]) -> dict[str, Any]:
        age = self.clock() - record["_since"]
        if record["status"] == "pending" and age >= self.delay:
            record["status"] = "provisioning"
        if record["status"] == "provisioning" and age >= 2 * self.delay:
            record.update(status="running", public_ip=f"198.51.100.{secrets.randbelow(250) + 2}")
        return record

    def public(self, record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in self.settle(record).items() if not k.startswith("_")}


def error(exc: HttpError) -> Response:
    return json_response(
        {"error": {"code": exc.code, "message": exc.message, "details": exc.details}}, exc.status
    )


def invalid(field_name: str, message: str) -> HttpError:
    return HttpError(
        422, "VALIDATION_ERROR", "Request validation failed", [{"field": field_name, "message": message}]
    )


Handler = Callable[[Request, Backend, Token], Awaitable[Response]]


def endpoint(b: Backend, handler: Handler) -> Any:
    async def run(request: Request) -> Response:
        try:
            token = b.tokens.get(bearer(request))
            if token is None:
                raise HttpError(401, "UNAUTHORIZED", "Invalid or missing API key")
            return await handler(request, b, token)
        except HttpError as exc:
            return error(exc)
        except Exception:
            return error(HttpError(500, "INTERNAL_ERROR", "Internal server error"))

    return run


async def list_instances(request: Request, b: Backend, t: Token) -> Response:
    try:
        limit = min(query_int(request, "limit", 20, 1), 100)
        offset = query_int(request, "offset", 0, 0)
    except HttpError as exc:
        raise invalid(str((exc.details or {}).get("field")), exc.message) from None
    region = request.query_params.get("region")
    records = [b.settle(r) for r in b.coll(t).values()]
    if region is not None and b.defect != "ignored-filter":
        records = [r for r in records if r["region"] == region]
    total = len(records)
    if b.defect == "total-counts-other-accounts":
        total = len(b.store.everyone(t.mode, "instances"))
    data = [b.public(r) for r in records[offset : offset + limit]]
    return json_response({"data": data, "meta": {"total": total, "limit": limit, "offset": offset}})


async def create_instance(request: Request, b: Backend, t: Token) -> Response:
    body = await json_body(request, code="VALIDATION_ERROR", status=422)
    if not isinstance(body, dict):
        raise invalid("body", "must be a JSON object")
    for name in ("name", "region"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise invalid(name, "is required and must be a string")
    plan: Any = body.get("plan")
    if b.defect == "enum-500":
        plan = plan.lower()  # crashes on a non-string: the planted defect
    if not isinstance(plan, str) or plan not in PLANS:  # a dict is unhashable: refuse, never crash
        raise invalid("plan", "must be one of starter, pro, enterprise")
    image = body.get("image", "ubuntu-22.04")
    if not isinstance(image, str):
        raise invalid("image", "must be a string")
    keys = body.get("ssh_keys", [])
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise invalid("ssh_keys", "must be an array of strings")
    region = next((r for r in REGIONS if r["slug"] == body["region"]), None)
    if region is None or not region["capacity"]:
        reason = "unknown region" if region is None else "region has no capacity"
        raise HttpError(422, "INVALID_REGION", reason, [{"field": "region", "message": reason}])
    cpu, ram, disk = PLANS[plan]
    iid = str(uuid.uuid4())
    b.coll(t)[iid] = {
        "id": iid,
        "name": body["name"],
        "status": "pending",
        "region": body["region"],
        "public_ip": None,
        "specs": {"cpu": cpu, "ram_gb": ram, "disk_gb": disk},
        "created_at": iso(time.time()),
        "_plan": plan,
        "_image": image,
        "_ssh_keys": keys,
        "_since": b.clock(),
    }
    return json_response(b.public(b.coll(t)[iid]), 201)


def _find(b: Backend, t: Token, iid: str) -> dict[str, Any]:
    record = b.coll(t).get(iid)
    if record is None:
        raise HttpError(404, "NOT_FOUND", "Instance not found")
    return record


async def get_instance(request: Request, b: Backend, t: Token) -> Response:
    return json_response(b.public(_find(b, t, request.path_params["id"])))


async def delete_instance(request: Request, b: Backend, t: Token) -> Response:
    iid = request.path_params["id"]
    record = b.public(_find(b, t, iid))
    del b.coll(t)[iid]
    return json_response({**record, "status": "terminated", "public_ip": None})


async def list_regions(request: Request, b: Backend, t: Token) -> Response:
    return json_response({"regions": REGIONS})


def make_app(
    window: float = 60.0, *, clock: Clock | None = None, delay: float = 2.0, defect: str | None = None
) -> Starlette:
    """The backend; `app.state.backend.test_tokens()` mints tokens. `window` is accepted for a
    uniform signature and unused: the document states no rate limit and this backend has none."""
    if defect is not None and defect not in DEFECTS:
        raise ValueError(f"unknown defect {defect!r}")
    b = Backend(clock or time.monotonic, delay, defect)

    def r(path: str, handler: Handler, method: str) -> Route:
        return Route("/v1" + path, endpoint(b, handler), methods=[method])

    routes = [
        r("/instances", list_instances, "GET"),
        r("/instances", create_instance, "POST"),
        r("/instances/{id}", get_instance, "GET"),
        r("/instances/{id}", delete_instance, "DELETE"),
        r("/regions", list_regions, "GET"),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(status, "INTERNAL_ERROR")
        response = error(HttpError(status, code, "Not found" if status == 404 else "Method not allowed"))
        response.headers.update(getattr(exc, "headers", None) or {})  # 405 carries Allow
        return response

    app = Starlette(routes=merge_routes(routes), exception_handlers={HTTPException: http_error})
    app.state.backend = b
    return app
