"""Honest in-memory backend of the CloudNexus (.io) API, written BLIND.

Written from document 003 (shared/seeds/003_*.txt, base URL
https://api.cloudnexus.io/v1) alone, by a helper who never read specs/,
mock_server/ or the suites.  Served at the root, it answers under /v1.

What the document states, and this backend does
- Every request is authenticated with ``Authorization: Bearer <API key>``.
- GET /v1/instances: paginated list of the caller's organisation's instances,
  ``limit`` (default 20, max 100), ``offset`` (items skipped) and ``region``
  (filter by region slug); body ``{"data": [...], "meta": {"total", "limit",
  "offset"}}``.
- POST /v1/instances: ``name``, ``region``, ``plan`` required; ``plan`` is one of
  starter / pro / enterprise; ``image`` optional, default ``ubuntu-22.04``;
  ``ssh_keys`` optional array of strings.  Returns the instance object.
- GET /v1/regions: ``{"regions": [{slug, name, status, avg_latency_ms,
  capacity}]}`` with at least us-east-1 (Virginia, US) and eu-west-2 (London, UK).
- Instance schema: id, name, status (pending, provisioning, running, stopped,
  terminated), region, public_ip (string or null), specs {cpu, ram_gb,
  disk_gb}, created_at (ISO 8601).
- Errors use ErrorResponse: ``{"error": {"code", "message", "details"}}`` with
  e.g. ``VALIDATION_ERROR``.

Choices made where the document is silent
- Status codes: POST -> 201; malformed JSON / non-UTF-8 / non-object body -> 400
  ``INVALID_JSON``; any field or query validation failure -> 422
  ``VALIDATION_ERROR`` with ``details`` = [{"field", "issue"}]; missing or unknown
  key -> 401 ``UNAUTHORIZED`` (with WWW-Authenticate); unknown path -> 404
  ``NOT_FOUND``; wrong method -> 405 ``METHOD_NOT_ALLOWED``; body > 1 MiB -> 413.
- ``limit`` above 100 is clamped to 100 (meta.limit says 100); limit < 1,
  offset < 0 or non-integers -> 422.  An offset past the end gives ``data: []``.
- An unknown ``region`` filter gives an empty list; an unknown region on create
  is 422.  Regions: us-east-1, eu-west-2 and (extra) us-west-2, ap-southeast-1.
- Ids are UUID4 strings (the schema says "Unique UUID identifier"; the example
  ``inst_8x92j1k0`` is taken as illustrative).
- Newest instance first in lists (ties broken by creation sequence).
- Lifecycle: created ``pending``; ``provisioning`` from 20% of ``delay``;
  ``running`` at ``delay`` seconds; public_ip is null until running.
- Extra fields in instances: plan, image, ssh_keys.  specs by plan: starter
  1/2/50, pro 4/16/200, enterprise 16/64/800 (cpu/ram_gb/disk_gb).
- null for ``image`` means the default, null ``ssh_keys`` means []; unknown body
  fields are ignored; name: 1..255 characters, any Unicode, duplicates allowed.
- Extra endpoints: GET /v1/instances/{id}; DELETE /v1/instances/{id} answers 200
  with the instance now ``terminated`` (public_ip null); it stays listed and
  readable; deleting it again is 409 ``CONFLICT``.  Another organisation's
  instance is 404.
- There is no permission model in 003, so the "limited" test token is full.
- A fixed-window rate limiter of 3000 requests per ``window`` per key (429
  ``RATE_LIMITED`` + Retry-After); every response carries X-Request-Id.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from types import SimpleNamespace

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

DEFECTS: dict[str, str] = {
    "region_filter_ignored": "GET /instances ignores the ?region= filter",
    "pagination_ignored": "GET /instances ignores limit and offset (returns every instance)",
    "offset_off_by_one": "GET /instances skips offset+1 items",
    "limit_max_ignored": "GET /instances honours limit above 100",
    "default_limit_wrong": "GET /instances defaults to 50 items instead of 20",
    "meta_total_page": "meta.total counts the returned page, not every matching instance",
    "cross_account_visible": "another organisation's instances are listed and readable",
    "plan_optional": "POST /instances accepts a body without the required plan",
    "plan_enum_unchecked": "POST /instances accepts any plan value",
    "non_ascii_500": "POST /instances answers 500 when the name has non-ASCII text",
    "no_auth_required": "requests without an API key are served",
    "error_shape_flat": "errors are {code, message} without the ErrorResponse 'error' object",
    "never_running": "instances never leave provisioning",
    "image_no_default": "image stays null when omitted instead of ubuntu-22.04",
    "regions_shape": "GET /regions returns the regions under 'data' instead of 'regions'",
}

PLANS = {
    "starter": {"cpu": 1, "ram_gb": 2, "disk_gb": 50},
    "pro": {"cpu": 4, "ram_gb": 16, "disk_gb": 200},
    "enterprise": {"cpu": 16, "ram_gb": 64, "disk_gb": 800},
}
REGIONS = [
    {
        "slug": "us-east-1",
        "name": "Virginia, US",
        "status": "healthy",
        "avg_latency_ms": 12,
        "capacity": True,
    },
    {"slug": "eu-west-2", "name": "London, UK", "status": "healthy", "avg_latency_ms": 45, "capacity": True},
    {"slug": "us-west-2", "name": "Oregon, US", "status": "healthy", "avg_latency_ms": 38, "capacity": True},
    {
        "slug": "ap-southeast-1",
        "name": "Singapore",
        "status": "healthy",
        "avg_latency_ms": 120,
        "capacity": True,
    },
]
REGION_SLUGS = {r["slug"] for r in REGIONS}
MAX_BODY = 1 << 20
RATE_LIMIT = 3000


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details=None, headers=None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details
        self.headers = headers or {}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Backend:
    def __init__(self, window: float, delay: float, defect: str | None, clock: Callable[[], float]):
        if defect is not None and defect not in DEFECTS:
            raise ValueError(f"unknown defect {defect!r}")
        self.window, self.delay, self.defect, self.clock = float(window), float(delay), defect, clock
        self.lock = threading.RLock()
        self.keys: dict[str, str] = {}  # api key -> org id
        self.instances: dict[str, dict] = {}  # id -> record (with private "_org", "_seq", "_t")
        self.seq = 0
        self.ip_seq = 0
        self.rate: dict[str, tuple[int, int]] = {}  # key -> (window index, count)
        self._tokens = None

    # -- test hook -------------------------------------------------------
    def mint_key(self, org: str) -> str:
        key = "cnio_" + secrets.token_hex(20)
        with self.lock:
            self.keys[key] = org
        return key

    def test_tokens(self):
        if self._tokens is None:
            full = self.mint_key("org_a")
            self._tokens = SimpleNamespace(
                full=full, limited=full, other=self.mint_key("org_b"), same_account=self.mint_key("org_a")
            )
        return self._tokens

    # -- helpers ---------------------------------------------------------
    def on(self, name: str) -> bool:
        return self.defect == name

    def status_of(self, inst: dict, now: float) -> str:
        if inst["_terminated_at"] is not None:
            return "terminated"
        age = now - inst["_t"]
        if self.on("never_running"):
            return "pending" if age < 0.2 * self.delay else "provisioning"
        if age >= self.delay:
            return "running"
        if age >= 0.2 * self.delay:
            return "provisioning"
        return "pending"

    def view(self, inst: dict) -> dict:
        now = self.clock()
        status = self.status_of(inst, now)
        if status == "running" and inst["_ip"] is None:
            self.ip_seq += 1
            n = self.ip_seq
            inst["_ip"] = f"203.0.{113 + (n // 250) % 100}.{n % 250 + 2}"
        return {
            "id": inst["id"],
            "name": inst["name"],
            "status": status,
            "region": inst["region"],
            "plan": inst["plan"],
            "image": inst["image"],
            "ssh_keys": list(inst["ssh_keys"]),
            "public_ip": inst["_ip"] if status == "running" else None,
            "specs": dict(inst["specs"]),
            "created_at": _iso(inst["_t"]),
        }

    def authenticate(self, request: Request) -> str:
        header = request.headers.get("authorization", "")
        parts = header.split(None, 1)
        key = parts[1].strip() if len(parts) == 2 and parts[0].lower() == "bearer" else None
        org = self.keys.get(key) if key else None
        if org is None:
            if self.on("no_auth_required") and not header:
                return "org_a"
            raise ApiError(
                401,
                "UNAUTHORIZED",
                "A valid API key is required: Authorization: Bearer <key>",
                headers={"WWW-Authenticate": 'Bearer realm="cloudnexus"'},
            )
        widx = int(self.clock() // self.window) if self.window > 0 else 0
        w, count = self.rate.get(key, (widx, 0))
        if w != widx:
            w, count = widx, 0
        if count >= RATE_LIMIT:
            retry = max(1, math.ceil((widx + 1) * self.window - self.clock()))
            raise ApiError(429, "RATE_LIMITED", "Too many requests", headers={"Retry-After": str(retry)})
        self.rate[key] = (w, count + 1)
        return org

    def visible(self, inst: dict, org: str) -> bool:
        return inst["_org"] == org or self.on("cross_account_visible")


def _int_param(request: Request, name: str):
    raw = request.query_params.get(name)
    if raw is None:
        return None
    raw = raw.strip()
    if not re.fullmatch(r"[+-]?\d{1,400}", raw):
        raise ApiError(
            422,
            "VALIDATION_ERROR",
            f"'{name}' must be an integer",
            [{"field": name, "issue": "must be an integer"}],
        )
    return int(raw)


async def _json_body(request: Request) -> dict:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise ApiError(413, "PAYLOAD_TOO_LARGE", "Request body exceeds 1 MiB")
    try:
        text = raw.decode("utf-8")
        body = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ApiError(400, "INVALID_JSON", "Request body must be valid UTF-8 JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "INVALID_JSON", "Request body must be a JSON object")
    return body


def _list_instances(b: Backend, request: Request, org: str):
    limit = _int_param(request, "limit")
    offset = _int_param(request, "offset")
    details = []
    if limit is not None and limit < 1:
        details.append({"field": "limit", "issue": "must be between 1 and 100"})
    if offset is not None and offset < 0:
        details.append({"field": "offset", "issue": "must be 0 or greater"})
    if details:
        raise ApiError(422, "VALIDATION_ERROR", "Invalid query parameters", details)
    if limit is None:
        limit = 50 if b.on("default_limit_wrong") else 20
    if limit > 100 and not b.on("limit_max_ignored"):
        limit = 100
    offset = offset or 0
    region = request.query_params.get("region")
    items = [i for i in b.instances.values() if b.visible(i, org)]
    if region is not None and not b.on("region_filter_ignored"):
        items = [i for i in items if i["region"] == region]
    items.sort(key=lambda i: -i["_seq"])
    total = len(items)
    if b.on("pagination_ignored"):
        page = items
    elif b.on("offset_off_by_one"):
        page = items[offset + 1 : offset + 1 + limit]
    else:
        page = items[offset : offset + limit]
    if b.on("meta_total_page"):
        total = len(page)
    return JSONResponse(
        {"data": [b.view(i) for i in page], "meta": {"total": total, "limit": limit, "offset": offset}}
    )


async def _create_instance(b: Backend, request: Request, org: str):
    body = await _json_body(request)
    details = []
    name = body.get("name")
    if name is None:
        details.append({"field": "name", "issue": "is required"})
    elif not isinstance(name, str) or not name.strip():
        details.append({"field": "name", "issue": "must be a non-empty string"})
    elif len(name) > 255:
        details.append({"field": "name", "issue": "must be at most 255 characters"})
    region = body.get("region")
    if region is None:
        details.append({"field": "region", "issue": "is required"})
    elif not isinstance(region, str) or region not in REGION_SLUGS:
        details.append({"field": "region", "issue": "must be one of " + ", ".join(sorted(REGION_SLUGS))})
    plan = body.get("plan")
    if plan is None:
        if b.on("plan_optional"):
            plan = "starter"
        else:
            details.append({"field": "plan", "issue": "is required"})
    elif not isinstance(plan, str) or (plan not in PLANS and not b.on("plan_enum_unchecked")):
        details.append({"field": "plan", "issue": "must be one of starter, pro, enterprise"})
    image = body.get("image")
    if image is None:
        image = None if b.on("image_no_default") else "ubuntu-22.04"
    elif not isinstance(image, str) or not image.strip() or len(image) > 255:
        details.append({"field": "image", "issue": "must be a non-empty string"})
    ssh_keys = body.get("ssh_keys")
    if ssh_keys is None:
        ssh_keys = []
    elif (
        not isinstance(ssh_keys, list)
        or not all(isinstance(k, str) and k for k in ssh_keys)
        or len(ssh_keys) > 100
    ):
        details.append({"field": "ssh_keys", "issue": "must be an array of SSH key ID strings"})
    if details:
        raise ApiError(422, "VALIDATION_ERROR", "The request body is invalid", details)
    if b.on("non_ascii_500") and not name.isascii():
        return Response("Internal Server Error", status_code=500, media_type="text/plain")
    b.seq += 1
    inst = {
        "id": str(uuid.uuid4()),
        "name": name,
        "region": region,
        "plan": plan,
        "image": image,
        "ssh_keys": list(ssh_keys),
        "specs": dict(PLANS.get(plan, PLANS["starter"])),
        "_org": org,
        "_seq": b.seq,
        "_t": b.clock(),
        "_ip": None,
        "_terminated_at": None,
    }
    b.instances[inst["id"]] = inst
    return JSONResponse(b.view(inst), status_code=201, headers={"Location": f"/v1/instances/{inst['id']}"})


def _find(b: Backend, org: str, inst_id: str) -> dict:
    inst = b.instances.get(inst_id)
    if inst is None or not b.visible(inst, org):
        raise ApiError(404, "NOT_FOUND", f"Instance '{inst_id}' not found")
    return inst


async def _dispatch(b: Backend, request: Request) -> Response:
    path = request.url.path
    method = request.method
    if method == "HEAD":
        method = "GET"
    routes = [
        (r"/v1/instances/?", {"GET": "list", "POST": "create"}),
        (r"/v1/instances/([^/]+)/?", {"GET": "get", "DELETE": "delete"}),
        (r"/v1/regions/?", {"GET": "regions"}),
    ]
    for pattern, methods in routes:
        m = re.fullmatch(pattern, path)
        if not m:
            continue
        op = methods.get(method)
        if op is None:
            raise ApiError(
                405,
                "METHOD_NOT_ALLOWED",
                f"{request.method} is not allowed on {path}",
                headers={"Allow": ", ".join(methods)},
            )
        org = b.authenticate(request)
        with b.lock:
            if op == "list":
                return _list_instances(b, request, org)
            if op == "create":
                return await _create_instance(b, request, org)
            if op == "regions":
                regions = [dict(r) for r in REGIONS]
                return JSONResponse({"data": regions} if b.on("regions_shape") else {"regions": regions})
            inst = _find(b, org, m.group(1))
            if op == "get":
                return JSONResponse(b.view(inst))
            if inst["_terminated_at"] is not None:
                raise ApiError(409, "CONFLICT", "Instance is already terminated")
            inst["_terminated_at"] = b.clock()
            return JSONResponse(b.view(inst))
    raise ApiError(404, "NOT_FOUND", f"No route for {path}")


def _error_response(b: Backend, e: ApiError) -> Response:
    if b.on("error_shape_flat"):
        body = {"code": e.code, "message": e.message}
    else:
        body = {"error": {"code": e.code, "message": e.message, "details": e.details}}
    return JSONResponse(body, status_code=e.status, headers=e.headers)


def make_app(
    window: float = 60.0,
    delay: float = 5.0,
    defect: str | None = None,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    backend = Backend(window, delay, defect, clock)

    async def endpoint(request: Request) -> Response:
        rid = "req_" + secrets.token_hex(8)
        try:
            resp = await _dispatch(backend, request)
        except ApiError as e:
            resp = _error_response(backend, e)
        except Exception:  # never a 500 for client input
            resp = _error_response(
                backend, ApiError(400, "BAD_REQUEST", "The request could not be processed")
            )
        resp.headers["X-Request-Id"] = rid
        return resp

    app = Starlette(
        routes=[
            Route(
                "/{path:path}", endpoint, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
            )
        ]
    )
    app.state.backend = backend
    return app
