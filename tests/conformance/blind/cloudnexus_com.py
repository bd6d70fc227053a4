"""CloudNexus API v1.4.2 (api.cloudnexus.com) -- an honest in-memory backend written BLIND.

How it was written: by a helper who never read specs/, mock_server/ or the
suites, from the vendor document 002 in shared/seeds alone.

What the document states and this backend does:
* Base path /v1, JSON everywhere; success envelope ``{"status": "success",
  "data": ..., "meta": {"request_id": "req_...", "timestamp": ISO-8601}}``
  with 2xx codes.
* API keys (``cn_live_sk_...``) as ``Authorization: Bearer``.
* POST /v1/servers: name, plan, region required; image optional, default
  ubuntu-22.04; ssh_keys optional string[]; answers 201 with id, name, plan,
  region, status "provisioning", ipv4, created_at; provisioned asynchronously
  (provisioning -> active after ``delay``).
* GET /v1/servers: paginated, page (default 1), per_page (default 20, max
  100), status filter active, provisioning, suspended.
* POST /v1/databases: engine (PostgreSQL, MySQL, Redis, MongoDB), version,
  plan, name, region.
* Error status codes 400 (missing or invalid parameters), 401 (invalid or
  missing key), 403 (insufficient permissions), 404, 429 (rate limit), 500.

Choices where the document is silent (deliberately not always the obvious):
* Error body ``{"status": "error", "error": {"code", "message"[, "param"]},
  "meta": {request_id, timestamp}}`` with lower-case codes: invalid_request
  (bad JSON / body), missing_parameter, invalid_parameter, unauthorized,
  forbidden, not_found, method_not_allowed, rate_limit_exceeded,
  internal_error.  Every validation problem is 400 (never 422); a non-JSON
  Content-Type is 400 invalid_request too (a missing one is taken as JSON);
  bodies > 1 MiB 413; lone surrogates / non-UTF-8 / too-deep JSON are 400.
* Keys carry scopes servers:read/write and databases:read/write; a read-only
  key gets 403 with ``required_scope``.  Keys are per account; another
  account's records are 404.  ``revoke_token`` (harness only) makes a key 401.
* Order of checks: 401, rate limit, route 404/405, 403, 404, 400.
* Rate limit (number not documented): 120 requests per window per API KEY,
  FIXED window aligned on multiples of ``window``; every authenticated
  response carries X-RateLimit-Limit, X-RateLimit-Remaining and
  X-RateLimit-Reset (Unix time of the window end); 429 adds Retry-After
  (integer seconds, at least 1); a 429 does not count.
* Pagination metadata lives in ``meta.pagination`` {page, per_page, total,
  total_pages}; lists are oldest first; per_page above 100, page < 1 or a
  non-integer is 400 invalid_parameter (no capping); an unknown status filter
  is 400.
* plan in {starter, basic, standard, pro, business, enterprise}; region like
  us-east-1; image a slug; ssh_keys at most 20 non-empty strings; name 1-100
  printable characters (any script).  ipv4 is assigned at creation.
* Databases: engine, name, plan, region required, version optional (engine
  default); provisioning -> active after ``delay``; host and port generated;
  list with status/engine filters; GET/DELETE by id.
* Extra endpoints: GET/DELETE /v1/servers/{id}, GET /v1/databases,
  GET/DELETE /v1/databases/{id}.  DELETE answers 200 with the record in
  status "deleted"; afterwards the id is 404.
* meta.request_id is always generated (an X-Request-ID header is ignored).
"""

from __future__ import annotations

import datetime
import json
import math
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

BASE = "/v1"

DEFECTS: dict[str, str] = {
    "cross_account_read": "GET /v1/servers/{id} shows another account's server",
    "cross_account_delete": "another account's key can DELETE your database",
    "readonly_can_write": "a read-only key can create and delete (403 never sent)",
    "unknown_key_accepted": "any key starting cn_live_sk_ is accepted",
    "unauthorized_is_403": "a missing or invalid key answers 403 instead of 401",
    "envelope_status_wrong": "success responses say status 'ok' instead of 'success'",
    "meta_missing": "success responses lack meta.request_id and meta.timestamp",
    "plan_optional": "POST /v1/servers without the required plan succeeds",
    "image_default_wrong": "image defaults to ubuntu-20.04 instead of ubuntu-22.04",
    "create_status_200": "POST /v1/servers answers 200 instead of 201 Created",
    "created_active": "servers are created active (not provisioned asynchronously)",
    "never_provisions": "servers stay provisioning forever",
    "status_filter_ignored": "the status filter on GET /v1/servers is ignored",
    "per_page_max_ignored": "per_page above the documented max 100 is honoured",
    "pagination_total_wrong": "meta.pagination.total counts every account's servers",
    "default_per_page_wrong": "per_page defaults to 10 instead of 20",
    "page_ignored": "the page parameter is ignored: every page is the first",
    "validation_is_422": "missing/invalid parameters answer 422 instead of 400",
    "rate_limit_10pct_over": "the limit is 132 instead of 120 per window",
    "retry_after_short": "Retry-After is half the real time left in the window",
    "engine_unchecked": "POST /v1/databases accepts engines other than PostgreSQL, MySQL, Redis, MongoDB",
    "non_ascii_500": "non-ASCII text in a name answers 500",
    "cross_account_list": "GET /v1/servers lists every account's servers",
    "full_key_forbidden": "POST /v1/databases needs a scope no key holds: 403 to every key",
    "unknown_id_found": "GET /v1/servers/{id} answers 200 with data null for an id that names nothing",
}

SCOPES = ("servers:read", "servers:write", "databases:read", "databases:write")
READ_ONLY = ("servers:read", "databases:read")
PLANS = ("starter", "basic", "standard", "pro", "business", "enterprise")
SERVER_STATUSES = ("active", "provisioning", "suspended")
DB_STATUSES = ("provisioning", "active")
ENGINES = {
    "postgresql": ("16.2", 5432),
    "mysql": ("8.0", 3306),
    "redis": ("7.2", 6379),
    "mongodb": ("7.0", 27017),
}
RATE_LIMIT = 120
MAX_BODY = 1 << 20

_CTRL = re.compile(r"[\x00-\x1f\x7f]")
_REGION = re.compile(r"^[a-z]{2}-[a-z]{2,12}-[0-9]{1,2}$")
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,63}$")
_VERSION = re.compile(r"^[0-9]{1,3}(\.[0-9]{1,3}){0,2}$")
_INT = re.compile(r"^[0-9]{1,9}$")
_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, extra: dict | None = None, headers: dict | None = None
    ):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.extra, self.headers = extra or {}, headers or {}


def _iso(ts: float) -> str:
    try:
        return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return "1970-01-01T00:00:00Z"


def _rand(n: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(n))


def _public(rec: dict) -> dict:
    return {k: (list(v) if isinstance(v, list) else v) for k, v in rec.items() if not k.startswith("_")}


class TokenSet:
    def __init__(self, backend: Backend, **kw: Any):
        self._backend = backend
        self.__dict__.update(kw)

    def revoke(self, token: str) -> None:
        self._backend.revoke_token(token)


class Backend:
    def __init__(self, window: float, delay: float, defect: str | None, clock: Callable[[], float]):
        if defect is not None and defect not in DEFECTS:
            raise ValueError(f"unknown defect {defect!r}")
        self.window, self.delay, self.defect, self.clock = float(window), float(delay), defect, clock
        self.keys: dict[str, dict] = {}
        self.servers: dict[str, dict] = {}
        self.databases: dict[str, dict] = {}
        self.counters: dict[str, list] = {}
        self.seq = 0
        self._tokens = TokenSet(
            self,
            full=self.create_token("acct_1", SCOPES),
            limited=self.create_token("acct_1", READ_ONLY),
            other=self.create_token("acct_2", SCOPES),
            same_account=self.create_token("acct_1", SCOPES),
        )

    def test_tokens(self) -> TokenSet:
        return self._tokens

    def create_token(self, account: str, scopes=SCOPES) -> str:
        key = "cn_live_sk_" + secrets.token_hex(16)
        self.keys[key] = {"account": account, "scopes": frozenset(scopes), "revoked": False}
        return key

    def revoke_token(self, token: str) -> None:
        if token in self.keys:
            self.keys[token]["revoked"] = True

    revoke = revoke_token

    def now(self) -> float:
        return float(self.clock())

    def tick(self) -> None:
        now = self.now()
        for store in (self.servers, self.databases):
            for rec in store.values():
                due = rec.get("_due")
                while due and due[0][0] <= now:
                    t, updates = due.pop(0)
                    rec.update(updates)
                    rec["updated_at"] = _iso(t)

    # ---- auth / limits ---------------------------------------------------
    def authenticate(self, request: Request) -> dict:
        parts = request.headers.get("authorization", "").split(None, 1)
        status = 403 if self.defect == "unauthorized_is_403" else 401
        fail = ApiError(status, "unauthorized", "Invalid or missing API key.")
        if len(parts) != 2 or parts[0].lower() != "bearer":
            raise fail
        key = parts[1].strip()
        info = self.keys.get(key)
        if info is None and self.defect == "unknown_key_accepted" and key.startswith("cn_live_sk_"):
            return {"key": key, "account": "acct_1", "scopes": frozenset(SCOPES)}
        if info is None or info["revoked"]:
            raise fail
        return {"key": key, "account": info["account"], "scopes": info["scopes"]}

    def rate_limit(self, key: str) -> dict:
        now = self.now()
        idx = math.floor(now / self.window)
        reset = (idx + 1) * self.window
        limit = 132 if self.defect == "rate_limit_10pct_over" else RATE_LIMIT
        c = self.counters.get(key)
        if c is None or c[0] != idx:
            c = self.counters[key] = [idx, 0]
        headers = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Reset": str(math.ceil(reset))}
        if c[1] >= limit:
            retry = max(1, math.ceil(reset - now - 1e-9))
            if self.defect == "retry_after_short":
                retry = max(1, retry // 2)
            raise ApiError(
                429,
                "rate_limit_exceeded",
                "Rate limit exceeded. Back off and retry.",
                headers={**headers, "X-RateLimit-Remaining": "0", "Retry-After": str(retry)},
            )
        c[1] += 1
        headers["X-RateLimit-Remaining"] = str(limit - c[1])
        return headers

    def require(self, p: dict, scope: str) -> None:
        if scope in p["scopes"] or (self.defect == "readonly_can_write" and scope.endswith(":write")):
            return
        raise ApiError(
            403, "forbidden", "Insufficient permissions for this action.", {"required_scope": scope}
        )

    # ---- helpers ---------------------------------------------------------
    def bad(self, code: str, message: str, param: str | None = None) -> ApiError:
        status = 422 if self.defect == "validation_is_422" else 400
        return ApiError(status, code, message, {"param": param} if param else None)

    def missing(self, param: str) -> ApiError:
        return self.bad("missing_parameter", f"Missing required parameter: {param}.", param)

    def invalid(self, param: str, why: str) -> ApiError:
        return self.bad("invalid_parameter", f"Invalid parameter {param}: {why}.", param)

    async def body(self, request: Request) -> dict:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            raise ApiError(413, "payload_too_large", "Request body is too large.")
        ctype = (request.headers.get("content-type") or "application/json").split(";")[0].strip().lower()
        if ctype != "application/json" and not ctype.endswith("+json"):
            raise self.bad("invalid_request", "Content-Type must be application/json.")
        if not raw.strip():
            raise self.bad("invalid_request", "A JSON request body is required.")
        try:
            data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
            json.dumps(data, ensure_ascii=False).encode("utf-8")  # rejects lone surrogates (\ud800)
        except (UnicodeError, ValueError, RecursionError):
            raise self.bad("invalid_request", "Request body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise self.bad("invalid_request", "Request body must be a JSON object.")
        return data

    def text(self, body: dict, field: str, required: bool, maxlen: int = 100) -> str | None:
        v = body.get(field)
        if v is None:
            if required:
                raise self.missing(field)
            return None
        if not isinstance(v, str) or not v.strip() or len(v) > maxlen or _CTRL.search(v):
            raise self.invalid(field, f"must be a string of 1-{maxlen} printable characters")
        if self.defect == "non_ascii_500" and not v.isascii():
            v.encode("ascii")  # the planted bug: UnicodeEncodeError -> 500
        return v.strip()

    def choice(self, body: dict, field: str, allowed, required: bool = True) -> str | None:
        v = body.get(field)
        if v is None:
            if required:
                raise self.missing(field)
            return None
        if not isinstance(v, str) or v not in allowed:
            raise self.invalid(field, "must be one of " + ", ".join(allowed))
        return v

    def pattern(self, body: dict, field: str, rx, example: str, required: bool = True) -> str | None:
        v = body.get(field)
        if v is None:
            if required:
                raise self.missing(field)
            return None
        if not isinstance(v, str) or not rx.fullmatch(v):
            raise self.invalid(field, f"must look like {example}")
        return v

    def int_param(self, request: Request, name: str, default: int, maximum: int | None = None) -> int:
        q = request.query_params
        if name not in q:
            return default
        raw = q.get(name) or ""
        if not _INT.fullmatch(raw) or int(raw) < 1:
            raise self.invalid(name, "must be a positive integer")
        v = int(raw)
        if maximum is not None and v > maximum and self.defect != "per_page_max_ignored":
            raise self.invalid(name, f"must be at most {maximum}")
        return v

    def paginate(self, request: Request, items: list, total_override: int | None = None):
        page = self.int_param(request, "page", 1)
        per_page = self.int_param(
            request, "per_page", 10 if self.defect == "default_per_page_wrong" else 20, 100
        )
        total = len(items) if total_override is None else total_override
        start = 0 if self.defect == "page_ignored" else (page - 1) * per_page
        return items[start : start + per_page], {
            "page": page,
            "per_page": per_page,
            "total": total,
            "total_pages": max(1, math.ceil(total / per_page)),
        }

    def filter_value(self, request: Request, name: str, allowed) -> str | None:
        if name not in request.query_params:
            return None
        v = request.query_params.get(name)
        if v not in allowed:
            raise self.invalid(name, "must be one of " + ", ".join(allowed))
        return v

    def find(self, store: dict, rid: str, p: dict, label: str, foreign_ok: bool = False) -> dict:
        rec = store.get(rid)
        if rec is None or (rec["_account"] != p["account"] and not foreign_ok):
            raise ApiError(404, "not_found", f"{label} not found.")
        return rec

    def ok(self, data: Any, status: int = 200, pagination: dict | None = None) -> JSONResponse:
        meta: dict = {"request_id": "req_" + _rand(12), "timestamp": _iso(self.now())}
        if pagination is not None:
            meta["pagination"] = pagination
        if self.defect == "meta_missing":
            meta.pop("request_id"), meta.pop("timestamp")
        st = "ok" if self.defect == "envelope_status_wrong" else "success"
        return JSONResponse({"status": st, "data": data, "meta": meta}, status)

    # ---- dispatch --------------------------------------------------------
    async def dispatch(self, request: Request) -> tuple[Response, dict]:
        path = request.url.path
        if path != BASE and not path.startswith(BASE + "/"):
            raise ApiError(404, "not_found", "Resource not found.")
        sub = path[len(BASE) :].rstrip("/") or "/"
        self.tick()
        p = self.authenticate(request)
        limit_headers = self.rate_limit(p["key"])
        method = request.method.upper()
        allowed = []
        try:
            for m, rx, name, scope in ROUTES:
                match = rx.fullmatch(sub)
                if match is None:
                    continue
                if m != method:
                    allowed.append(m)
                    continue
                if self.defect == "full_key_forbidden" and name == "create_database":
                    scope = "databases:create"  # the planted bug: a scope no key is ever given
                self.require(p, scope)
                return await getattr(self, name)(request, p, **match.groupdict()), limit_headers
            if allowed:
                raise ApiError(
                    405,
                    "method_not_allowed",
                    "Method not allowed.",
                    headers={"Allow": ", ".join(sorted(set(allowed)))},
                )
            raise ApiError(404, "not_found", "Resource not found.")
        except ApiError as e:
            e.headers = {**limit_headers, **e.headers}
            raise

    # ---- servers ---------------------------------------------------------
    async def create_server(self, request, p):
        body = await self.body(request)
        name = self.text(body, "name", True)
        plan = self.choice(body, "plan", PLANS, required=self.defect != "plan_optional")
        region = self.pattern(body, "region", _REGION, "us-east-1")
        default_image = "ubuntu-20.04" if self.defect == "image_default_wrong" else "ubuntu-22.04"
        image = self.pattern(body, "image", _IMAGE, "ubuntu-22.04", required=False) or default_image
        keys = body.get("ssh_keys")
        if keys is None:
            keys = []
        if (
            not isinstance(keys, list)
            or len(keys) > 20
            or any(not isinstance(k, str) or not k or len(k) > 64 or _CTRL.search(k) for k in keys)
        ):
            raise self.invalid("ssh_keys", "must be an array of at most 20 SSH key IDs")
        self.seq += 1
        now = self.now()
        rec = {
            "id": "srv_" + _rand(7),
            "name": name,
            "plan": plan,
            "region": region,
            "status": "active" if self.defect == "created_active" else "provisioning",
            "ipv4": f"192.168.{(self.seq >> 8) & 255}.{self.seq & 255}",
            "image": image,
            "ssh_keys": list(keys),
            "created_at": _iso(now),
            "updated_at": _iso(now),
            "_account": p["account"],
            "_seq": self.seq,
            "_due": [],
        }
        if self.defect not in ("never_provisions", "created_active"):
            rec["_due"].append((now + self.delay, {"status": "active"}))
        self.servers[rec["id"]] = rec
        return self.ok(_public(rec), 200 if self.defect == "create_status_200" else 201)

    async def list_servers(self, request, p):
        status = self.filter_value(request, "status", SERVER_STATUSES)
        if self.defect == "status_filter_ignored":
            status = None
        recs = sorted(
            (
                r
                for r in self.servers.values()
                if (r["_account"] == p["account"] or self.defect == "cross_account_list")
                and (status is None or r["status"] == status)
            ),
            key=lambda r: r["_seq"],
        )
        override = len(self.servers) if self.defect == "pagination_total_wrong" else None
        data, pag = self.paginate(request, recs, override)
        return self.ok([_public(r) for r in data], pagination=pag)

    async def get_server(self, request, p, id):
        if self.defect == "unknown_id_found" and id not in self.servers:
            return self.ok(None)  # the planted bug: a lookup's None served as the record
        return self.ok(
            _public(self.find(self.servers, id, p, "Server", foreign_ok=self.defect == "cross_account_read"))
        )

    async def delete_server(self, request, p, id):
        rec = self.find(self.servers, id, p, "Server")
        del self.servers[id]
        out = _public(rec)
        out["status"] = "deleted"
        return self.ok(out)

    # ---- databases -------------------------------------------------------
    async def create_database(self, request, p):
        body = await self.body(request)
        engine = body.get("engine")
        if engine is None:
            raise self.missing("engine")
        if not isinstance(engine, str) or not (
            engine in ENGINES or (self.defect == "engine_unchecked" and 0 < len(engine) <= 32)
        ):
            raise self.invalid("engine", "must be one of " + ", ".join(ENGINES))
        version = self.pattern(body, "version", _VERSION, "15.4", required=False)
        plan = self.choice(body, "plan", PLANS)
        name = self.text(body, "name", True, 63)
        region = self.pattern(body, "region", _REGION, "us-east-1")
        default_version, port = ENGINES.get(engine, ("1.0", 5000))
        self.seq += 1
        now = self.now()
        rid = "db_" + _rand(8)
        rec = {
            "id": rid,
            "name": name,
            "engine": engine,
            "version": version or default_version,
            "plan": plan,
            "region": region,
            "status": "provisioning",
            "host": f"{rid.replace('_', '-')}.{region}.db.cloudnexus.com",
            "port": port,
            "created_at": _iso(now),
            "updated_at": _iso(now),
            "_account": p["account"],
            "_seq": self.seq,
            "_due": [(now + self.delay, {"status": "active"})],
        }
        self.databases[rid] = rec
        return self.ok(_public(rec), 201)

    async def list_databases(self, request, p):
        status = self.filter_value(request, "status", DB_STATUSES)
        engine = self.filter_value(request, "engine", tuple(ENGINES))
        recs = sorted(
            (
                r
                for r in self.databases.values()
                if r["_account"] == p["account"]
                and (status is None or r["status"] == status)
                and (engine is None or r["engine"] == engine)
            ),
            key=lambda r: r["_seq"],
        )
        data, pag = self.paginate(request, recs)
        return self.ok([_public(r) for r in data], pagination=pag)

    async def get_database(self, request, p, id):
        return self.ok(_public(self.find(self.databases, id, p, "Database")))

    async def delete_database(self, request, p, id):
        rec = self.find(self.databases, id, p, "Database", foreign_ok=self.defect == "cross_account_delete")
        del self.databases[id]
        out = _public(rec)
        out["status"] = "deleted"
        return self.ok(out)


ROUTES = [
    (m, re.compile(rx.replace("{id}", r"(?P<id>[^/]+)")), name, scope)
    for m, rx, name, scope in (
        ("GET", "/servers", "list_servers", "servers:read"),
        ("POST", "/servers", "create_server", "servers:write"),
        ("GET", "/servers/{id}", "get_server", "servers:read"),
        ("DELETE", "/servers/{id}", "delete_server", "servers:write"),
        ("GET", "/databases", "list_databases", "databases:read"),
        ("POST", "/databases", "create_database", "databases:write"),
        ("GET", "/databases/{id}", "get_database", "databases:read"),
        ("DELETE", "/databases/{id}", "delete_database", "databases:write"),
    )
]


def _reject_constant(name: str):
    raise ValueError(f"invalid constant {name}")


def make_app(
    window: float = 60.0,
    delay: float = 5.0,
    defect: str | None = None,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    backend = Backend(window, delay, defect, clock)

    async def handle(request: Request) -> Response:
        try:
            resp, headers = await backend.dispatch(request)
            for k, v in headers.items():
                resp.headers[k] = v
            return resp
        except ApiError as e:
            err: dict = {"code": e.code, "message": e.message, **e.extra}
            status, headers = e.status, e.headers
        except Exception:  # safety net; honest code paths never get here
            err = {"code": "internal_error", "message": "Something went wrong on CloudNexus's end."}
            status, headers = 500, {}
        meta = {"request_id": "req_" + _rand(12), "timestamp": _iso(backend.now())}
        return JSONResponse({"status": "error", "error": err, "meta": meta}, status, headers=headers)

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    app = Starlette(routes=[Route("/{path:path}", handle, methods=methods)])
    app.state.backend = backend
    return app
