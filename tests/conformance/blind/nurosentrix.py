"""Nurosentrix API v1 -- an honest in-memory backend written BLIND.

How it was written: by a helper who never read specs/, mock_server/ or the
suites, from the vendor documents 000 (API reference) and 001 (authentication)
in shared/seeds alone.

What the documents state and this backend does:
* Base path /api/v1; ``Authorization: Bearer <token>`` on every request;
  ``Content-Type: application/json`` on POST/PUT; optional ``X-Request-ID``.
* Envelope ``{"success": true, "data": ..., "meta": {page, per_page, total}}``
  and errors ``{"success": false, "error": {code, message, details{field,
  reason}}}`` with VALIDATION_ERROR for invalid parameters.
* 401 ``UNAUTHORIZED`` "Invalid or missing authentication token" for no or an
  invalid token; 403 ``FORBIDDEN`` "Token does not have permission: <perm>".
* Tokens ``nsx_live_...`` and ``nsx_test_...``: same permissions, test tokens
  work in a sandbox (their data is separate from live data).  The ten
  permissions servers/instances/backups/settings : read/write, plus
  instances:actions and backups:restore.  Revoked tokens are rejected at once.
* POST /auth/login {email, password} -> {token (JWT), expires_at, user{id,
  email, name}}.
* GET/POST /servers, GET/DELETE /servers/:id; page, per_page (default 20,
  max 100) and status (active, provisioning, offline) on the list; servers
  carry id, name, ip_address, status, provider, region, specs{cpu, memory_gb,
  disk_gb}, created_at.
* GET/POST /instances; POST /instances/:id/clone from a *completed* backup,
  generating admin_password when omitted and returning it; POST
  /instances/:id/actions with start, stop, restart, backup.
* GET/POST /instances/:id/backups; POST /backups/:id/restore.
* Rate limits: 100 requests per minute for all endpoints, 20 per minute for
  create/delete operations (``window`` replaces the minute).

Choices where the documents are silent (deliberately not always the obvious):
* Order of checks: 401, route (404/405), rate limit, 403, 404, 415, 400/422.
* Validation errors are 422 VALIDATION_ERROR (first bad field in details);
  malformed, too deep or non-UTF-8 JSON (or lone surrogates) is 400
  INVALID_JSON; bodies > 1 MiB 413;
  a non-empty POST/PUT body without application/json is 415
  UNSUPPORTED_MEDIA_TYPE (an empty body without Content-Type is accepted).
* Rate limits are FIXED windows aligned on multiples of ``window`` and shared
  by every token (and session) of one ACCOUNT, not per token; only
  authenticated requests count, a rejected (429) request does not count.
  Create/delete = POST /servers, /instances, /instances/:id/clone,
  /instances/:id/backups and every DELETE; they count in both limits.  429
  body code RATE_LIMIT_EXCEEDED with only a ``Retry-After`` header (integer
  seconds until the window ends, at least 1); no X-RateLimit-* headers.
  POST /auth/login is limited per client address by the 100 limit.
* Lists are newest first; per_page above 100 is capped to 100 (meta shows
  100); page/per_page must be integers 1..999999999 else 422; a page past the
  end is empty; an unknown status filter value is 422.
* Server create requires name, provider, region, size; size must look like
  ``s-<cpu>vcpu-<mem>gb`` and specs derive from it (disk_gb = 20 x memory);
  provider in a fixed list; ip_address is null until the server is active;
  status provisioning -> active after ``delay``.  Deleting a server that
  still hosts instances is 409 SERVER_HAS_INSTANCES.
* Instance create requires name and server_id (an unknown server is 422);
  odoo_version defaults 17.0 (14.0-18.0), edition community; provisioning ->
  running after ``delay``.  Create also generates admin_password when
  omitted.  A supplied admin_password is never echoed.
* Clone requires name and backup_id; the backup must belong to the source
  instance (else 422) and be completed (else 409 BACKUP_NOT_COMPLETED);
  neutralize defaults to true, restore_* to true.  Clone answers 201.
* Actions answer 202 {action, instance[, backup]}; start/stop are immediate,
  restart passes through "restarting" for ``delay``; an action the state does
  not allow is 409 INVALID_STATE; the backup action needs backups:write too.
* Backups: in_progress -> completed after ``delay``; restore answers 202 and
  puts the instance in "restoring" for ``delay``.  Extra endpoints
  GET/DELETE /instances/:id, GET/DELETE /backups/:id, GET/PUT /settings.
* DELETE answers 200 with {id, deleted: true}.  Another account's records
  (and live records seen with a test token) are 404 NOT_FOUND.
* A login JWT (HS256, 24 h) is also accepted as a Bearer token with every
  permission; a wrong login is 401 INVALID_CREDENTIALS.
* X-Request-ID is echoed in the response header (generated when absent).
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

import bcrypt
import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

BASE = "/api/v1"

DEFECTS: dict[str, str] = {
    "cross_account_restore": "another account's token can POST /backups/{id}/restore on your backup",
    "cross_account_subresources": (
        "another account's token can run actions, clone and list/create backups on your instance"
    ),
    "cross_account_read": "GET /servers/{id} returns another account's server",
    "revoked_token_works": "a revoked token is still accepted",
    "readonly_can_write": "write/delete/action permissions are not checked (read-only token can write)",
    "forbidden_wrong_body": "403 body does not name the missing permission",
    "forbidden_wrong_code": "403 body uses code PERMISSION_DENIED instead of FORBIDDEN",
    "unauthorized_wrong_body": "401 body uses code INVALID_TOKEN instead of UNAUTHORIZED",
    "test_token_not_sandboxed": "nsx_test_ tokens see and change live data",
    "login_any_password": "POST /auth/login accepts a wrong password",
    "status_filter_ignored": "the status filter on GET /servers is ignored",
    "pagination_total_wrong": "meta.total is the size of the page, not of the collection",
    "per_page_uncapped": "per_page above 100 is honoured",
    "provisioning_never_completes": "servers and instances stay provisioning forever",
    "server_status_running": "a provisioned server reports status running (000 lists active, provisioning, "
    "offline)",
    "backup_never_completes": "backups stay in_progress forever",
    "rate_limit_10pct_over": "limits are 110/22 per window instead of 100/20",
    "create_limit_missing": "create/delete operations are only held to the 100 limit",
    "retry_after_short": "Retry-After is half the real time left in the window",
    "clone_password_missing": "the generated admin_password is missing from the clone response",
    "clone_incomplete_backup": "a clone is accepted from a backup that is not completed",
    "server_name_optional": "POST /servers without name succeeds",
    "non_ascii_500": "non-ASCII text in a name answers 500",
    "error_envelope_wrong": "validation errors lack success:false",
    "no_auth_required": "requests without an Authorization header are served as the first full token",
    "content_type_any": "a POST/PUT body is read as JSON whatever its Content-Type",
    "stop_keeps_running": "the stop action answers 202 but the instance keeps running",
}

PERMISSIONS = (
    "servers:read",
    "servers:write",
    "instances:read",
    "instances:write",
    "instances:actions",
    "backups:read",
    "backups:write",
    "backups:restore",
    "settings:read",
    "settings:write",
)
READ_ONLY = tuple(p for p in PERMISSIONS if p.endswith(":read"))
PROVIDERS = ("digitalocean", "hetzner", "vultr", "linode", "aws", "gcp", "azure", "ovh")
SERVER_STATUSES = ("active", "provisioning", "offline")
INSTANCE_STATUSES = ("provisioning", "running", "stopped", "restarting", "restoring")
BACKUP_STATUSES = ("in_progress", "completed", "failed")
ODOO_VERSIONS = ("14.0", "15.0", "16.0", "17.0", "18.0")
EDITIONS = ("community", "enterprise")
ACTIONS = ("start", "stop", "restart", "backup")
MAX_BODY = 1 << 20
LIMIT_ALL, LIMIT_CD = 100, 20

_CTRL = re.compile(r"[\x00-\x1f\x7f]")
_SIZE = re.compile(r"^s-(\d{1,3})vcpu-(\d{1,4})gb$")
_REGION = re.compile(r"^[a-z0-9][a-z0-9-]{1,31}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{1,63}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_DBNAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_INT = re.compile(r"^[0-9]{1,9}$")
_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, details: dict | None = None, headers: dict | None = None
    ):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details, self.headers = details, headers or {}


def _invalid(field: str, reason: str) -> ApiError:
    return ApiError(422, "VALIDATION_ERROR", "Invalid request parameters", {"field": field, "reason": reason})


def _rid(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(10))


def _iso(ts: float) -> str:
    try:
        return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return "1970-01-01T00:00:00Z"


def _public(rec: dict) -> dict:
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in rec.items() if not k.startswith("_")}


class TokenSet:
    """Tokens (and login credentials) the tests use."""

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
        self.jwt_key = secrets.token_hex(32)
        self.tokens: dict[str, dict] = {}
        self.users: dict[str, dict] = {}
        self.servers: dict[str, dict] = {}
        self.instances: dict[str, dict] = {}
        self.backups: dict[str, dict] = {}
        self.settings: dict[tuple, dict] = {}
        self.counters: dict[tuple, list] = {}
        self.seq = 0
        self.ip_seq = 10
        self._add_user(
            "acc_alpha", "usr_alpha01", "alice@example.com", "Alice Example", "correct-horse-battery"
        )
        self._add_user("acc_bravo", "usr_bravo01", "bob@example.com", "Bob Example", "staple-lamp-orbit")
        self._tokens = TokenSet(
            self,
            full=self.create_token("acc_alpha", PERMISSIONS),
            limited=self.create_token("acc_alpha", READ_ONLY),
            other=self.create_token("acc_bravo", PERMISSIONS),
            same_account=self.create_token("acc_alpha", PERMISSIONS),
            test=self.create_token("acc_alpha", PERMISSIONS, live=False),
            email="alice@example.com",
            password="correct-horse-battery",
            other_email="bob@example.com",
            other_password="staple-lamp-orbit",
        )

    # ---- harness helpers -------------------------------------------------
    def test_tokens(self) -> TokenSet:
        return self._tokens

    def create_token(self, account: str, permissions=PERMISSIONS, live: bool = True) -> str:
        token = ("nsx_live_" if live else "nsx_test_") + secrets.token_hex(16)
        self.tokens[token] = {
            "account": account,
            "perms": frozenset(permissions),
            "env": "live" if live else "test",
            "revoked": False,
        }
        return token

    def revoke_token(self, token: str) -> None:
        if token in self.tokens:
            self.tokens[token]["revoked"] = True

    revoke = revoke_token

    def _add_user(self, account, uid, email, name, password):
        self.users[email] = {
            "id": uid,
            "account": account,
            "email": email,
            "name": name,
            "hash": bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)),
        }

    # ---- time ------------------------------------------------------------
    def now(self) -> float:
        return float(self.clock())

    def _schedule(self, rec: dict, after: float, updates: dict) -> None:
        rec.setdefault("_due", []).append((self.now() + after, updates))
        rec["_due"].sort(key=lambda x: x[0])

    def tick(self) -> None:
        now = self.now()
        for store in (self.servers, self.instances, self.backups):
            for rec in store.values():
                due = rec.get("_due")
                while due and due[0][0] <= now:
                    t, updates = due.pop(0)
                    rec.update(updates)
                    rec["updated_at"] = _iso(t)

    # ---- auth ------------------------------------------------------------
    def _unauthorized(self) -> ApiError:
        code = "INVALID_TOKEN" if self.defect == "unauthorized_wrong_body" else "UNAUTHORIZED"
        return ApiError(401, code, "Invalid or missing authentication token")

    def authenticate(self, request: Request) -> dict:
        header = request.headers.get("authorization", "")
        parts = header.split(None, 1)
        if len(parts) != 2 or parts[0].lower() != "bearer":
            if self.defect == "no_auth_required" and not header:
                parts = ["Bearer", self._tokens.full]
            else:
                raise self._unauthorized()
        token = parts[1].strip()
        if token.startswith(("nsx_live_", "nsx_test_")):
            info = self.tokens.get(token)
            if info is None or (info["revoked"] and self.defect != "revoked_token_works"):
                raise self._unauthorized()
            env = info["env"]
            if self.defect == "test_token_not_sandboxed":
                env = "live"
            return {"account": info["account"], "perms": info["perms"], "env": env}
        if token.count(".") == 2 and len(token) < 4096:
            try:
                claims = jwt.decode(
                    token,
                    self.jwt_key,
                    algorithms=["HS256"],
                    options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
                )
            except Exception:
                raise self._unauthorized() from None
            exp = claims.get("exp")
            if not isinstance(exp, (int, float)) or exp <= self.now() or claims.get("typ") != "session":
                raise self._unauthorized()
            return {"account": claims.get("acc"), "perms": frozenset(PERMISSIONS), "env": "live"}
        raise self._unauthorized()

    def require(self, principal: dict, perm: str) -> None:
        if perm in principal["perms"]:
            return
        if self.defect == "readonly_can_write" and not perm.endswith(":read"):
            return
        msg = (
            "Forbidden"
            if self.defect == "forbidden_wrong_body"
            else f"Token does not have permission: {perm}"
        )
        code = "PERMISSION_DENIED" if self.defect == "forbidden_wrong_code" else "FORBIDDEN"
        raise ApiError(403, code, msg)

    # ---- rate limit (fixed window, per account) --------------------------
    def rate_limit(self, key: str, create_delete: bool) -> None:
        now = self.now()
        idx = math.floor(now / self.window)
        reset = (idx + 1) * self.window
        lim_all, lim_cd = LIMIT_ALL, LIMIT_CD
        if self.defect == "rate_limit_10pct_over":
            lim_all, lim_cd = 110, 22
        buckets = [("all", lim_all)]
        if create_delete and self.defect != "create_limit_missing":
            buckets.append(("cd", lim_cd))
        for name, limit in buckets:
            c = self.counters.get((key, name))
            if c is None or c[0] != idx:
                c = self.counters[(key, name)] = [idx, 0]
            if c[1] >= limit:
                retry = max(1, math.ceil(reset - now - 1e-9))
                if self.defect == "retry_after_short":
                    retry = max(1, retry // 2)
                raise ApiError(
                    429,
                    "RATE_LIMIT_EXCEEDED",
                    f"Rate limit of {limit} requests per window exceeded",
                    headers={"Retry-After": str(retry)},
                )
        for name, _ in buckets:
            self.counters[(key, name)][1] += 1

    # ---- request helpers -------------------------------------------------
    async def body(self, request: Request, required: bool = True) -> dict:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            raise ApiError(413, "PAYLOAD_TOO_LARGE", "Request body is too large")
        ctype = request.headers.get("content-type")
        if not raw.strip():
            if ctype is not None and ctype.split(";")[0].strip().lower() != "application/json":
                raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type must be application/json")
            if required:
                raise _invalid("body", "Request body is required")
            return {}
        json_type = ctype is not None and ctype.split(";")[0].strip().lower() == "application/json"
        if not json_type and self.defect != "content_type_any":
            raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type must be application/json")
        try:
            data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
            json.dumps(data, ensure_ascii=False).encode("utf-8")  # rejects lone surrogates (\ud800)
        except (UnicodeError, ValueError, RecursionError):
            raise ApiError(400, "INVALID_JSON", "Request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise _invalid("body", "Request body must be a JSON object")
        return data

    def paginate(self, request: Request, items: list) -> tuple[list, dict]:
        q = request.query_params
        page = _int_param(q, "page", 1)
        per_page = _int_param(q, "per_page", 20)
        if per_page > 100 and self.defect != "per_page_uncapped":
            per_page = 100
        start = (page - 1) * per_page
        data = items[start : start + per_page]
        total = len(data) if self.defect == "pagination_total_wrong" else len(items)
        return data, {"page": page, "per_page": per_page, "total": total}

    def status_filter(self, request: Request, allowed: tuple) -> str | None:
        if "status" not in request.query_params:
            return None
        value = request.query_params.get("status")
        if value not in allowed:
            raise _invalid("status", "Status must be one of: " + ", ".join(allowed))
        return value

    def _scope(self, p: dict) -> tuple:
        return (p["account"], p["env"])

    def _find(self, store: dict, rid: str, p: dict, label: str, foreign_ok: bool = False) -> dict:
        rec = store.get(rid)
        if rec is None or (rec["_scope"] != self._scope(p) and not foreign_ok):
            raise ApiError(404, "NOT_FOUND", f"{label} not found")
        return rec

    def _list(self, store: dict, p: dict, pred=lambda r: True) -> list:
        recs = [r for r in store.values() if r["_scope"] == self._scope(p) and pred(r)]
        recs.sort(key=lambda r: r["_seq"], reverse=True)
        return recs

    def _new(self, prefix: str, p: dict, **fields) -> dict:
        self.seq += 1
        now = _iso(self.now())
        rec = {
            "id": _rid(prefix),
            **fields,
            "created_at": now,
            "updated_at": now,
            "_scope": self._scope(p),
            "_seq": self.seq,
        }
        return rec

    def _check_name(self, body: dict, field: str = "name", required: bool = True) -> str | None:
        value = body.get(field)
        if value is None:
            if required:
                raise _invalid(field, f"{field.capitalize()} is required")
            return None
        if not isinstance(value, str):
            raise _invalid(field, f"{field} must be a string")
        value = value.strip()
        if not value or len(value) > 64 or _CTRL.search(value):
            raise _invalid(field, f"{field} must be 1-64 printable characters")
        if self.defect == "non_ascii_500" and not value.isascii():
            value.encode("ascii")  # the planted bug: UnicodeEncodeError -> 500
        return value

    # ---- dispatch --------------------------------------------------------
    async def dispatch(self, request: Request) -> Response:
        path = request.url.path
        if path != BASE and not path.startswith(BASE + "/"):
            raise ApiError(404, "NOT_FOUND", "Resource not found")
        sub = path[len(BASE) :].rstrip("/") or "/"
        method = request.method.upper()
        self.tick()
        if sub == "/auth/login":
            if method != "POST":
                raise ApiError(405, "METHOD_NOT_ALLOWED", "Method not allowed", headers={"Allow": "POST"})
            host = request.client.host if request.client else "unknown"
            self.rate_limit("ip:" + host, False)
            return await self.login(request)
        p = self.authenticate(request)
        allowed = []
        for m, rx, name, perm, cd in ROUTES:
            match = rx.fullmatch(sub)
            if match is None:
                continue
            if m != method:
                allowed.append(m)
                continue
            self.rate_limit("acct:" + str(p["account"]), cd)
            self.require(p, perm)
            return await getattr(self, name)(request, p, **match.groupdict())
        if allowed:
            raise ApiError(
                405,
                "METHOD_NOT_ALLOWED",
                "Method not allowed",
                headers={"Allow": ", ".join(sorted(set(allowed)))},
            )
        raise ApiError(404, "NOT_FOUND", "Resource not found")

    # ---- auth endpoint ---------------------------------------------------
    async def login(self, request: Request) -> Response:
        body = await self.body(request)
        email, password = body.get("email"), body.get("password")
        if not isinstance(email, str) or not email:
            raise _invalid("email", "Email is required")
        if not isinstance(password, str) or not password:
            raise _invalid("password", "Password is required")
        user = self.users.get(email.strip().lower())
        good = False
        if user is not None and len(password) <= 1024:
            try:
                good = bcrypt.checkpw(password.encode("utf-8", "surrogatepass")[:72], user["hash"])
            except ValueError:
                good = False
            if self.defect == "login_any_password":
                good = True
        if not good:
            raise ApiError(401, "INVALID_CREDENTIALS", "Invalid email or password")
        now = self.now()
        exp = int(now) + 86400
        token = jwt.encode(
            {
                "sub": user["id"],
                "acc": user["account"],
                "iat": int(now),
                "exp": exp,
                "jti": secrets.token_hex(8),
                "typ": "session",
            },
            self.jwt_key,
            algorithm="HS256",
        )
        return _ok(
            {
                "token": token,
                "expires_at": _iso(exp),
                "user": {"id": user["id"], "email": user["email"], "name": user["name"]},
            }
        )

    # ---- servers ---------------------------------------------------------
    async def list_servers(self, request, p):
        status = self.status_filter(request, SERVER_STATUSES)
        if self.defect == "status_filter_ignored":
            status = None
        recs = self._list(self.servers, p, lambda r: status is None or r["status"] == status)
        data, meta = self.paginate(request, recs)
        return _ok([_public(r) for r in data], meta=meta)

    async def get_server(self, request, p, id):
        return _ok(
            _public(self._find(self.servers, id, p, "Server", foreign_ok=self.defect == "cross_account_read"))
        )

    async def create_server(self, request, p):
        body = await self.body(request)
        name = self._check_name(body, required=self.defect != "server_name_optional")
        provider = body.get("provider")
        if provider is None:
            raise _invalid("provider", "Provider is required")
        if provider not in PROVIDERS or not isinstance(provider, str):
            raise _invalid("provider", "Provider must be one of: " + ", ".join(PROVIDERS))
        region = body.get("region")
        if region is None:
            raise _invalid("region", "Region is required")
        if not isinstance(region, str) or not _REGION.fullmatch(region):
            raise _invalid("region", "Region must be a region slug such as nyc1")
        size = body.get("size")
        if size is None:
            raise _invalid("size", "Size is required")
        m = _SIZE.fullmatch(size) if isinstance(size, str) else None
        if m is None or not (1 <= int(m.group(1)) <= 64) or not (1 <= int(m.group(2)) <= 512):
            raise _invalid("size", "Size must look like s-4vcpu-8gb")
        ssh = body.get("ssh_key_id")
        if ssh is not None and (not isinstance(ssh, str) or not ssh or len(ssh) > 64 or _CTRL.search(ssh)):
            raise _invalid("ssh_key_id", "ssh_key_id must be a key id string")
        cpu, mem = int(m.group(1)), int(m.group(2))
        rec = self._new(
            "srv_",
            p,
            name=name or "server",
            ip_address=None,
            status="provisioning",
            provider=provider,
            region=region,
            size=size,
            ssh_key_id=ssh,
            specs={"cpu": cpu, "memory_gb": mem, "disk_gb": mem * 20},
        )
        self.servers[rec["id"]] = rec
        self.ip_seq += 1
        ip = f"10.{(self.ip_seq >> 16) & 255}.{(self.ip_seq >> 8) & 255}.{self.ip_seq & 255}"
        if self.defect != "provisioning_never_completes":
            done = "running" if self.defect == "server_status_running" else "active"
            self._schedule(rec, self.delay, {"status": done, "ip_address": ip})
        return _ok(_public(rec), 201)

    async def delete_server(self, request, p, id):
        rec = self._find(self.servers, id, p, "Server")
        if any(i["server_id"] == id and i["_scope"] == rec["_scope"] for i in self.instances.values()):
            raise ApiError(409, "SERVER_HAS_INSTANCES", "Delete the server's instances first")
        del self.servers[id]
        return _ok({"id": id, "deleted": True})

    # ---- instances -------------------------------------------------------
    async def list_instances(self, request, p):
        status = self.status_filter(request, INSTANCE_STATUSES)
        server_id = request.query_params.get("server_id")
        recs = self._list(
            self.instances,
            p,
            lambda r: (
                (status is None or r["status"] == status)
                and (server_id is None or r["server_id"] == server_id)
            ),
        )
        data, meta = self.paginate(request, recs)
        return _ok([_public(r) for r in data], meta=meta)

    async def get_instance(self, request, p, id):
        return _ok(_public(self._find(self.instances, id, p, "Instance")))

    def _password(self, body: dict) -> tuple[str, bool]:
        pw = body.get("admin_password")
        if pw is None:
            return secrets.token_urlsafe(18), True
        if not isinstance(pw, str) or not (8 <= len(pw) <= 128):
            raise _invalid("admin_password", "admin_password must be 8-128 characters")
        return pw, False

    def _opt_str(self, body, field, rx, reason, lower=False):
        v = body.get(field)
        if v is None:
            return None
        if not isinstance(v, str) or not rx.fullmatch(v.lower() if lower else v):
            raise _invalid(field, reason)
        return v.lower() if lower else v

    async def create_instance(self, request, p):
        body = await self.body(request)
        name = self._check_name(body)
        server_id = body.get("server_id")
        if server_id is None:
            raise _invalid("server_id", "server_id is required")
        server = self.servers.get(server_id) if isinstance(server_id, str) else None
        if server is None or server["_scope"] != self._scope(p):
            raise _invalid("server_id", "Server not found")
        if server["status"] == "offline":
            raise ApiError(409, "SERVER_OFFLINE", "The server is offline")
        version = body.get("odoo_version", "17.0")
        if version not in ODOO_VERSIONS or not isinstance(version, str):
            raise _invalid("odoo_version", "odoo_version must be one of: " + ", ".join(ODOO_VERSIONS))
        edition = body.get("edition", "community")
        if edition not in EDITIONS or not isinstance(edition, str):
            raise _invalid("edition", "edition must be community or enterprise")
        dbname = self._opt_str(
            body, "database_name", _DBNAME, "database_name must be lowercase letters, digits and _"
        )
        email = self._opt_str(body, "admin_email", _EMAIL, "admin_email must be an email address")
        domain = self._opt_str(body, "domain", _DOMAIN, "domain must be a host name", lower=True)
        pw, generated = self._password(body)
        rec = self._new(
            "ins_",
            p,
            name=name,
            server_id=server_id,
            odoo_version=version,
            edition=edition,
            database_name=dbname or _slug(name),
            admin_email=email,
            domain=domain,
            url=f"https://{domain}" if domain else None,
            status="provisioning",
            cloned_from=None,
            neutralized=False,
        )
        self.instances[rec["id"]] = rec
        if self.defect != "provisioning_never_completes":
            self._schedule(rec, self.delay, {"status": "running"})
        out = _public(rec)
        if generated:
            out["admin_password"] = pw
        return _ok(out, 201)

    async def delete_instance(self, request, p, id):
        self._find(self.instances, id, p, "Instance")
        del self.instances[id]
        for bid in [b for b, r in self.backups.items() if r["instance_id"] == id]:
            del self.backups[bid]
        return _ok({"id": id, "deleted": True})

    async def clone_instance(self, request, p, id):
        src = self._find(
            self.instances, id, p, "Instance", foreign_ok=self.defect == "cross_account_subresources"
        )
        body = await self.body(request)
        name = self._check_name(body)
        backup_id = body.get("backup_id")
        if backup_id is None:
            raise _invalid("backup_id", "backup_id is required")
        backup = self.backups.get(backup_id) if isinstance(backup_id, str) else None
        if backup is None or backup["_scope"] != src["_scope"] or backup["instance_id"] != id:
            raise _invalid("backup_id", "Backup not found for this instance")
        domain = self._opt_str(body, "domain", _DOMAIN, "domain must be a host name", lower=True)
        flags = {}
        for f, default in (("neutralize", True), ("restore_database", True), ("restore_filestore", True)):
            v = body.get(f, default)
            if not isinstance(v, bool):
                raise _invalid(f, f"{f} must be a boolean")
            flags[f] = v
        pw, generated = self._password(body)
        if backup["status"] != "completed" and self.defect != "clone_incomplete_backup":
            raise ApiError(409, "BACKUP_NOT_COMPLETED", "The backup is not completed")
        rec = self._new(
            "ins_",
            p,
            name=name,
            server_id=src["server_id"],
            odoo_version=src["odoo_version"],
            edition=src["edition"],
            database_name=_slug(name),
            admin_email=src["admin_email"],
            domain=domain,
            url=f"https://{domain}" if domain else None,
            status="provisioning",
            cloned_from={"instance_id": id, "backup_id": backup_id},
            neutralized=flags["neutralize"],
            restore_database=flags["restore_database"],
            restore_filestore=flags["restore_filestore"],
        )
        self.instances[rec["id"]] = rec
        if self.defect != "provisioning_never_completes":
            self._schedule(rec, self.delay, {"status": "running"})
        out = _public(rec)
        if generated and self.defect != "clone_password_missing":
            out["admin_password"] = pw
        return _ok(out, 201)

    async def instance_action(self, request, p, id):
        inst = self._find(
            self.instances, id, p, "Instance", foreign_ok=self.defect == "cross_account_subresources"
        )
        body = await self.body(request)
        action = body.get("action")
        if action is None:
            raise _invalid("action", "action is required")
        if action not in ACTIONS or not isinstance(action, str):
            raise _invalid("action", "action must be one of: " + ", ".join(ACTIONS))
        st = inst["status"]
        out: dict = {"action": action}
        if action == "backup":
            self.require(p, "backups:write")
            out["backup"] = _public(self._make_backup(inst, p, body))
        elif action == "start":
            if st != "stopped":
                raise ApiError(409, "INVALID_STATE", f"Cannot start an instance that is {st}")
            inst["status"] = "running"
        elif action == "stop":
            if st != "running":
                raise ApiError(409, "INVALID_STATE", f"Cannot stop an instance that is {st}")
            if self.defect != "stop_keeps_running":
                inst["status"] = "stopped"
        else:
            if st != "running":
                raise ApiError(409, "INVALID_STATE", f"Cannot restart an instance that is {st}")
            inst["status"] = "restarting"
            self._schedule(inst, self.delay, {"status": "running"})
        inst["updated_at"] = _iso(self.now())
        out["instance"] = _public(inst)
        return _ok(out, 202)

    # ---- backups ---------------------------------------------------------
    def _make_backup(self, inst: dict, p: dict, body: dict) -> dict:
        if inst["status"] not in ("running", "stopped"):
            raise ApiError(409, "INVALID_STATE", f"Cannot back up an instance that is {inst['status']}")
        label = body.get("label")
        if label is not None and (not isinstance(label, str) or len(label) > 128 or _CTRL.search(label)):
            raise _invalid("label", "label must be a string of at most 128 characters")
        rec = self._new(
            "bkp_",
            p,
            instance_id=inst["id"],
            label=label,
            status="in_progress",
            size_mb=None,
            completed_at=None,
        )
        rec["_scope"] = inst["_scope"]
        self.backups[rec["id"]] = rec
        if self.defect != "backup_never_completes":
            self._schedule(
                rec,
                self.delay,
                {
                    "status": "completed",
                    "size_mb": 128 + (self.seq * 37) % 900,
                    "completed_at": _iso(self.now() + self.delay),
                },
            )
        return rec

    async def list_backups(self, request, p, id):
        inst = self._find(
            self.instances, id, p, "Instance", foreign_ok=self.defect == "cross_account_subresources"
        )
        status = self.status_filter(request, BACKUP_STATUSES)
        recs = [
            r
            for r in self.backups.values()
            if r["instance_id"] == id
            and r["_scope"] == inst["_scope"]
            and (status is None or r["status"] == status)
        ]
        recs.sort(key=lambda r: r["_seq"], reverse=True)
        data, meta = self.paginate(request, recs)
        return _ok([_public(r) for r in data], meta=meta)

    async def create_backup(self, request, p, id):
        inst = self._find(
            self.instances, id, p, "Instance", foreign_ok=self.defect == "cross_account_subresources"
        )
        body = await self.body(request, required=False)
        return _ok(_public(self._make_backup(inst, p, body)), 201)

    async def get_backup(self, request, p, id):
        return _ok(_public(self._find(self.backups, id, p, "Backup")))

    async def delete_backup(self, request, p, id):
        self._find(self.backups, id, p, "Backup")
        del self.backups[id]
        return _ok({"id": id, "deleted": True})

    async def restore_backup(self, request, p, id):
        backup = self._find(self.backups, id, p, "Backup", foreign_ok=self.defect == "cross_account_restore")
        await self.body(request, required=False)
        if backup["status"] != "completed":
            raise ApiError(409, "BACKUP_NOT_COMPLETED", "The backup is not completed")
        inst = self.instances.get(backup["instance_id"])
        if inst is None:
            raise ApiError(409, "INSTANCE_GONE", "The backup's instance no longer exists")
        if inst["status"] not in ("running", "stopped"):
            raise ApiError(409, "INVALID_STATE", f"Cannot restore an instance that is {inst['status']}")
        inst["status"] = "restoring"
        inst["updated_at"] = _iso(self.now())
        self._schedule(inst, self.delay, {"status": "running"})
        return _ok(
            {"backup_id": id, "instance_id": inst["id"], "status": "restoring", "instance": _public(inst)},
            202,
        )

    # ---- settings --------------------------------------------------------
    def _settings(self, p: dict) -> dict:
        key = self._scope(p)
        if key not in self.settings:
            self.settings[key] = {
                "account_id": p["account"],
                "environment": p["env"],
                "timezone": "UTC",
                "notification_email": None,
            }
        return self.settings[key]

    async def get_settings(self, request, p):
        return _ok(dict(self._settings(p)))

    async def put_settings(self, request, p):
        body = await self.body(request)
        s = self._settings(p)
        tz = body.get("timezone", s["timezone"])
        if not isinstance(tz, str) or not re.fullmatch(r"[A-Za-z_+\-/0-9]{1,64}", tz):
            raise _invalid("timezone", "timezone must be an IANA zone name")
        email = body.get("notification_email", s["notification_email"])
        if email is not None and (not isinstance(email, str) or not _EMAIL.fullmatch(email)):
            raise _invalid("notification_email", "notification_email must be an email address")
        s.update(timezone=tz, notification_email=email)
        return _ok(dict(s))


ROUTES = [
    (m, re.compile(rx.replace("{id}", r"(?P<id>[^/]+)")), name, perm, cd)
    for m, rx, name, perm, cd in (
        ("GET", "/servers", "list_servers", "servers:read", False),
        ("POST", "/servers", "create_server", "servers:write", True),
        ("GET", "/servers/{id}", "get_server", "servers:read", False),
        ("DELETE", "/servers/{id}", "delete_server", "servers:write", True),
        ("GET", "/instances", "list_instances", "instances:read", False),
        ("POST", "/instances", "create_instance", "instances:write", True),
        ("GET", "/instances/{id}", "get_instance", "instances:read", False),
        ("DELETE", "/instances/{id}", "delete_instance", "instances:write", True),
        ("POST", "/instances/{id}/clone", "clone_instance", "instances:write", True),
        ("POST", "/instances/{id}/actions", "instance_action", "instances:actions", False),
        ("GET", "/instances/{id}/backups", "list_backups", "backups:read", False),
        ("POST", "/instances/{id}/backups", "create_backup", "backups:write", True),
        ("GET", "/backups/{id}", "get_backup", "backups:read", False),
        ("DELETE", "/backups/{id}", "delete_backup", "backups:write", True),
        ("POST", "/backups/{id}/restore", "restore_backup", "backups:restore", False),
        ("GET", "/settings", "get_settings", "settings:read", False),
        ("PUT", "/settings", "put_settings", "settings:write", False),
    )
]


def _reject_constant(name: str):
    raise ValueError(f"invalid constant {name}")


def _int_param(q, name: str, default: int) -> int:
    if name not in q:
        return default
    raw = q.get(name) or ""
    if not _INT.fullmatch(raw) or int(raw) < 1:
        raise _invalid(name, f"{name} must be a positive integer")
    return int(raw)


def _slug(name: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:60]
    return s if s and not s[0].isdigit() else "db_" + s[:59]


def _ok(data: Any, status: int = 200, meta: dict | None = None) -> JSONResponse:
    body: dict = {"success": True, "data": data}
    if meta is not None:
        body["meta"] = meta
    return JSONResponse(body, status)


def make_app(
    window: float = 60.0,
    delay: float = 5.0,
    defect: str | None = None,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    backend = Backend(window, delay, defect, clock)

    async def handle(request: Request) -> Response:
        rid = request.headers.get("x-request-id", "")
        if not rid or len(rid) > 128 or not rid.isprintable() or not rid.isascii():
            rid = _rid("req_")
        try:
            resp = await backend.dispatch(request)
        except ApiError as e:
            err: dict = {"code": e.code, "message": e.message}
            if e.details is not None:
                err["details"] = e.details
            body: dict = {"success": False, "error": err}
            if backend.defect == "error_envelope_wrong" and e.status == 422:
                body = {"error": err}
            resp = JSONResponse(body, e.status, headers=e.headers)
        except Exception:  # safety net; honest code paths never get here
            resp = JSONResponse(
                {"success": False, "error": {"code": "INTERNAL_ERROR", "message": "Internal server error"}},
                500,
            )
        resp.headers["X-Request-ID"] = rid
        return resp

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    app = Starlette(routes=[Route("/{path:path}", handle, methods=methods)])
    app.state.backend = backend
    return app
