"""A Nurosentrix backend written from documents 000 (API reference) and 001 (authentication),
parameterised by the choices a vendor team makes where those documents are silent
(`nurosentrix_a` and `nurosentrix_b` pick two different sets).

What the documents fix, and every variant does: base path `/api/v1`; `Authorization: Bearer`
with `nsx_live_` / `nsx_test_` tokens (test tokens see a separate, sandboxed set of data) or the
JWT from `POST /auth/login`; the ten permissions, a missing one answering 403 `FORBIDDEN` "Token
does not have permission: <permission>"; 401 `UNAUTHORIZED` "Invalid or missing authentication
token"; revoked tokens invalid at once; `{success, data, meta}` responses and `{success: false,
error: {code, message, details: {field, reason}}}` errors; `GET /servers` with `page`, `per_page`
(default 20, max 100) and `status` (active, provisioning, offline); the servers, instances,
clone, actions (start, stop, restart, backup), backups and restore endpoints with the documented
bodies; clone from a completed backup, generating and returning `admin_password` when omitted;
100 requests per minute on everything and 20 per minute on create/delete operations.
"""

from __future__ import annotations

import math
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
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

SCOPES = (
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
READ_ONLY = ("servers:read", "instances:read", "backups:read", "settings:read")
SERVER_STATUSES = ("active", "provisioning", "offline")
ACTIONS = ("start", "stop", "restart", "backup")
SUPPORTED_DEFECTS = (
    "readonly-can-delete",
    "total-counts-other-accounts",
    "cross-account-restore",
    "ignored-filter",
    "enum-500",
)


@dataclass(frozen=True)
class Choices:
    """Where documents 000/001 are silent."""

    validation_status: int  # status of a VALIDATION_ERROR (the document shows the body, not the status)
    delete_status: int  # 204 (no body) or 200 (the envelope)
    per_page_above_max: str  # "cap" or "refuse"
    meta_extra: str  # "total_pages" or "has_more"
    meta_on_single: bool  # `meta: {request_id}` on single-object responses ("All responses ... meta")
    request_id_in_body: bool  # a top-level `request_id` key in every body
    not_found_code: str
    conflict_code: str
    rate_limited_code: str
    bad_json_code: str
    rate_headers: str  # "x-ratelimit-epoch" or "none"
    require_json_content_type: bool
    instance_initial: str  # first status of a new instance
    backup_initial: str  # first status of a new backup
    server_ip_while_provisioning: bool  # ip_address assigned at once, or null until active
    unique_instance_fields: tuple[str, ...]  # unique per account (409 on reuse)
    unique_server_name: bool
    delete_server_with_instances: str  # "cascade" or "refuse"
    instance_routes: tuple[str, ...]  # methods on /instances/{id} (inferred by our spec)
    backup_routes: tuple[str, ...]  # methods on /backups/{id} (inferred by our spec)
    settings_route: bool  # GET /settings (inferred by our spec)
    clone_needs_backups_read: bool
    restore_status: int
    action_status: int


@dataclass
class Backend:
    choices: Choices
    window: float
    clock: Clock
    delay: float
    defect: str | None
    tokens: Tokens = field(init=False)
    store: Store = field(default_factory=Store)
    limiter: MovingWindow = field(init=False)
    secret: str = field(default_factory=lambda: secrets.token_hex(32))
    users: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tokens = Tokens({"live": "nsx_live_", "test": "nsx_test_"}, SCOPES)
        self.limiter = MovingWindow(self.clock)
        self.users["user@example.com"] = {
            "id": "usr_abc123",
            "email": "user@example.com",
            "name": "John Doe",
            "password": "your-password",
            "account": "acme",
        }

    # ------------------------------------------------------------------ tokens for tests
    def mint(self, account: str = "acme", scopes: tuple[str, ...] | None = None, mode: str = "live") -> str:
        return self.tokens.mint(account, scopes, mode)

    def test_tokens(self, mode: str = "live") -> TestTokens:
        return TestTokens(
            self.mint("acme", mode=mode), self.mint("acme", READ_ONLY, mode), self.mint("globex", mode=mode)
        )

    # ------------------------------------------------------------------ envelopes
    def request_id(self, request: Request) -> str:
        rid: str = request.state.request_id
        return rid

    def ok(
        self, request: Request, data: Any, status: int = 200, meta: dict[str, Any] | None = None
    ) -> Response:
        body: dict[str, Any] = {"success": True, "data": data}
        if meta is not None:
            body["meta"] = meta
        elif self.choices.meta_on_single:
            body["meta"] = {"request_id": self.request_id(request)}
        if self.choices.request_id_in_body:
            body["request_id"] = self.request_id(request)
        return json_response(body, status)

    def error(self, request: Request, exc: HttpError) -> Response:
        err: dict[str, Any] = {"code": exc.code, "message": exc.message}
        if exc.details is not None:
            err["details"] = exc.details
            if isinstance(exc.details, dict) and "field" in exc.details:  # document 000: {field, reason}
                err["details"] = {"reason": exc.message, **exc.details}
        body: dict[str, Any] = {"success": False, "error": err}
        if self.choices.request_id_in_body:
            body["request_id"] = self.request_id(request)
        return json_response(body, exc.status, exc.headers)

    def invalid(self, field_name: str | None, reason: str) -> HttpError:
        return HttpError(
            self.choices.validation_status,
            "VALIDATION_ERROR",
            "Invalid request parameters",
            {"field": field_name, "reason": reason},
        )

    def not_found(self, what: str) -> HttpError:
        return HttpError(404, self.choices.not_found_code, f"{what} not found")

    # ------------------------------------------------------------------ auth and limits
    def principal(self, request: Request) -> Token:
        value = bearer(request)
        token = self.tokens.get(value) if value else None
        if token is None and value.count(".") == 2:
            try:
                claims = jwt.decode(
                    value, self.secret, algorithms=["HS256"], options={"require": ["exp", "iat", "sub"]}
                )
            except jwt.PyJWTError:
                claims = None
            if claims is not None:
                token = Token(value, str(claims["acc"]), "live", frozenset(SCOPES), str(claims["sub"]))
        if token is None:
            raise HttpError(401, "UNAUTHORIZED", "Invalid or missing authentication token")
        return token

    def require(self, token: Token, *scopes: str) -> None:
        for scope in scopes:
            if scope not in token.scopes:
                raise HttpError(403, "FORBIDDEN", f"Token does not have permission: {scope}")

    def limit(self, request: Request, who: str, write: bool) -> None:
        buckets = [("all", 100, self.window)] + ([("write", 20, self.window)] if write else [])
        tightest, refused = check_limits(self.limiter, who, buckets)
        request.state.rate = tightest
        if refused is not None:
            retry = ceil_seconds(refused.reset_in)
            headers = {"Retry-After": str(retry)}
            details = {"limit": refused.limit, "retry_after": retry}
            raise HttpError(429, self.choices.rate_limited_code, "Rate limit exceeded", details, headers)

    def rate_headers(self, request: Request) -> dict[str, str]:
        d = getattr(request.state, "rate", None)
        if d is None or self.choices.rate_headers == "none":
            return {}
        return {
            "X-RateLimit-Limit": str(d.limit),
            "X-RateLimit-Remaining": str(d.remaining),
            "X-RateLimit-Reset": str(int(time.time()) + math.ceil(d.reset_in)),  # Unix epoch (GitHub style)
        }

    # ------------------------------------------------------------------ records
    def coll(self, token: Token, name: str) -> dict[str, dict[str, Any]]:
        return self.store.coll(token.account, token.mode, name)

    def settle(self, record: dict[str, Any]) -> dict[str, Any]:
        """Asynchronous work finishes `delay` seconds (of the clock) after it started."""
        if self.clock() - record["_since"] < self.delay:
            return record
        kind, status = record["_kind"], record["status"]
        if kind == "server" and status == "provisioning":
            record.update(status="active", ip_address=record["ip_address"] or _ip(), _since=self.clock())
        elif kind == "instance" and status in (self.choices.instance_initial, "restarting", "restoring"):
            record.update(status="running", _since=self.clock())
        elif kind == "backup" and status in (self.choices.backup_initial, "in_progress"):
            record.update(status="completed", completed_at=iso(time.time()), size_mb=512, _since=self.clock())
        return record

    def public(self, record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in self.settle(record).items() if not k.startswith("_")}

    def page(self, request: Request, items: list[dict[str, Any]], total: int | None = None) -> Response:
        page = query_int(request, "page", 1, 1)
        per_page = query_int(request, "per_page", 20, 1)
        if per_page > 100:
            if self.choices.per_page_above_max == "refuse":
                raise self.invalid("per_page", "must be at most 100")
            per_page = 100
        count = len(items) if total is None else total
        chunk = items[(page - 1) * per_page : page * per_page]
        meta: dict[str, Any] = {"page": page, "per_page": per_page, "total": count}
        if self.choices.meta_extra == "total_pages":
            meta["total_pages"] = max(1, math.ceil(count / per_page))
        else:
            meta["has_more"] = page * per_page < count
        return self.ok(request, [self.public(r) for r in chunk], meta=meta)

    def get(self, token: Token, name: str, rid: str, what: str) -> dict[str, Any]:
        record = self.coll(token, name).get(rid)
        if record is None:
            raise self.not_found(what)
        return self.settle(record)


def _ip() -> str:
    return f"203.0.113.{secrets.randbelow(250) + 2}"


def _strings(body: Any, b: Backend, required: tuple[str, ...], optional: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise b.invalid(None, "Request body must be a JSON object")
    for name in required:
        if body.get(name) in (None, ""):
            raise b.invalid(name, f"{name.replace('_', ' ').capitalize()} is required")
    for name in (*required, *optional):
        if name in body and not isinstance(body[name], str):
            raise b.invalid(name, f"{name} must be a string")
        if isinstance(body.get(name), str) and len(body[name]) > 255:
            raise b.invalid(name, f"{name} is too long")
    return {k: body[k] for k in (*required, *optional) if k in body}


Handler = Callable[[Request, Backend, Token], Awaitable[Response]]


def endpoint(b: Backend, handler: Handler, *, write: bool = False, public: bool = False) -> Any:
    async def run(request: Request) -> Response:
        request.state.request_id = request.headers.get("x-request-id") or f"req_{uuid.uuid4().hex[:16]}"
        try:
            if public:
                b.limit(request, f"ip:{request.client.host if request.client else '-'}", write)
                response = await handler(request, b, None)  # type: ignore[arg-type]
            else:
                token = b.principal(request)
                b.limit(request, f"tok:{token.value}", write)
                response = await handler(request, b, token)
        except HttpError as exc:
            response = b.error(request, exc)
        except Exception:  # a crash is a 500 in the envelope, never a stack trace
            response = b.error(request, HttpError(500, "INTERNAL_ERROR", "Internal error"))
        response.headers.update(b.rate_headers(request))
        if not b.choices.request_id_in_body:
            response.headers["X-Request-ID"] = request.state.request_id
        return response

    return run


# ---------------------------------------------------------------------- handlers
async def login(request: Request, b: Backend, _t: Token) -> Response:
    body = await json_body(
        request, require_json_type=b.choices.require_json_content_type, code=b.choices.bad_json_code
    )
    fields = _strings(body, b, ("email", "password"), ())
    user = b.users.get(fields["email"].lower())
    if user is None or not secrets.compare_digest(user["password"].encode(), fields["password"].encode()):
        raise HttpError(401, "UNAUTHORIZED", "Invalid email or password")
    now = int(time.time())
    token = jwt.encode(
        {"sub": user["id"], "acc": user["account"], "iat": now, "exp": now + 86400}, b.secret, "HS256"
    )
    public_user = {k: user[k] for k in ("id", "email", "name")}
    return b.ok(request, {"token": token, "expires_at": iso(now + 86400), "user": public_user})


async def list_servers(request: Request, b: Backend, t: Token) -> Response:
    b.require(t, "servers:read")
    status = request.query_params.get("status")
    if status is not None and status not in SERVER_STATUSES:
        raise b.invalid("status", "must be one of active, provisioning, offline")
    records = [b.settle(r) for r in b.coll(t, "servers").values()]
    if status is not None and b.defect != "ignored-filter":
        records = [r for r in records if r["status"] == status]
    total = None
    if b.defect == "total-counts-other-accounts":
        total = len(b.store.everyone(t.mode, "servers"))
    return b.page(request, records, total)


async def create_server(request: Request, b: Backend, t: Token) -> Response:
    b.require(t, "servers:write")
    body = await json_body(
        request, require_json_type=b.choices.require_json_content_type, code=b.choices.bad_json_code
    )
    required = (
        ("name", "provider", "region", "size")
        if b.choices.validation_status == 422
        else ("name", "provider", "region")
    )
    fields = _strings(body, b, required, ("size", "ssh_key_id"))
    servers = b.coll(t, "servers")
    if b.choices.unique_server_name and any(s["name"] == fields["name"] for s in servers.values()):
        raise HttpError(409, b.choices.conflict_code, f"A server named {fields['name']} already exists")
    sid = new_id("srv_")
    servers[sid] = {
        "id": sid,
        "name": fields["name"],
        "ip_address": _ip() if b.choices.server_ip_while_provisioning else None,
        "status": "provisioning",
        "provider": fields["provider"],
        "region": fields["region"],
        "size": fields.get("size", "s-1vcpu-1gb"),
        "ssh_key_id": fields.get("ssh_key_id"),
        "specs": {"cpu": 4, "memory_gb": 8, "disk_gb": 160},
        "created_at": iso(time.time()),
        "_kind": "server",
        "_since": b.clock(),
    }
    return b.ok(request, b.public(servers[sid]), 201)


async def get_server(request: Request, b: Backend, t: Token) -> Response:
    b.require(t, "servers:read")
    return b.ok(request, b.public(b.get(t, "servers", request.path_params["id"], "Server")))


def _deleted(request: Request, b: Backend, rid: str) -> Response:
    if b.choices.delete_status == 204:
        return Response(status_code=204)
    return b.ok(request, {"id": rid, "deleted": True})


async def delete_server(request: Request, b: Backend, t: Token) -> Response:
    if not (b.defect == "readonly-can-delete" and "servers:read" in t.scopes):
        b.require(t, "servers:write")
    sid = request.path_params["id"]
    b.get(t, "servers", sid, "Server")
    instances = b.coll(t, "instances")
    children = [i for i, rec in instances.items() if rec["server_id"] == sid]
    if children and b.choices.delete_server_with_instances == "refuse":
        raise HttpError(409, b.choices.conflict_code, "Server still has instances; delete them first")
    for iid in children:
        _drop_instance(b, t, iid)
    del b.coll(t, "servers")[sid]
    return _deleted(request, b, sid)


def _drop_instance(b: Backend, t: Token, iid: str) -> None:
    backups = b.coll(t, "backups")
    for bid in [k for k, v in backups.items() if v["instance_id"] == iid]:
        del backups[bid]
    del b.coll(t, "instances")[iid]


async def list_instances(request: Request, b: Backend, t: Token) -> Response:
    b.require(t, "instances:read")
    return b.page(request, [b.settle(r) for r in b.coll(t, "instances").values()])


def _check_unique(b: Backend, t: Token, fields: dict[str, Any]) -> None:
    for name in b.choices.unique_instance_fields:
        value = fields.get(name)
        if value is not None and any(i.get(name) == value for i in b.coll(t, "instances").values()):
            raise HttpError(
                409,
                b.choices.conflict_code,
                f"An instance with this {name} already exists",
                {"field": name, "reason": "already in use"},
            )


def _edition(b: Backend, body: dict[str, Any]) -> str:
    edition = body.get("edition", "community")
    if b.defect == "enum-500":
        edition = edition.lower()  # crashes on a non-string: the planted defect
    if edition not in ("community", "enterprise"):
        raise b.invalid("edition", "must be community or enterprise")
    return str(edition)


async def create_instance(request: Request, b: Backend, t: Token) -> Response:
    b.require(t, "instances:write")
    body = await json_body(
        request, require_json_type=b.choices.require_json_content_type, code=b.choices.bad_json_code
    )
    if b.choices.validation_status == 422:
        required: tuple[str, ...] = (
            "name",
            "server_id",
            "odoo_version",
            "edition",
            "database_name",
            "admin_email",
        )
    else:
        required = ("name", "server_id", "odoo_version", "admin_email")
    if not isinstance(body, dict):
        raise b.invalid(None, "Request body must be a JSON object")
    edition = _edition(b, body) if "edition" in body or "edition" in required else "community"
    fields = _strings(body, b, required, ("database_name", "domain"))
    if "@" not in fields["admin_email"]:
        raise b.invalid("admin_email", "must be an email address")
    if fields["server_id"] not in b.coll(t, "servers"):
        if b.choices.validation_status == 422:
            raise HttpError(
                404,
                b.choices.not_found_code,
                "Server not found",
                {"field": "server_id", "reason": "not found"},
            )
        raise b.invalid("server_id", "no such server")
    fields.setdefault("database_name", fields["name"].replace("-", "_"))
    _check_unique(b, t, fields)
    iid = new_id("inst_")
    b.coll(t, "instances")[iid] = {
        "id": iid,
        **fields,
        "edition": edition,
        "domain": fields.get("domain"),
        "status": b.choices.instance_initial,
        "created_at": iso(time.time()),
        "_kind": "instance",
        "_since": b.clock(),
    }
    return b.ok(request, b.public(b.coll(t, "instances")[iid]), 201)


async def get_instance(request: Request, b: Backend, t: Token) -> Response:
    b.require(t, "instances:read")
    return b.ok(request, b.public(b.get(t, "instances", request.path_params["id"], "Instance")))


async def delete_instance(request: Request, b: Backend, t: Token) -> Response:
    b.require(t, "instances:write")
    iid = request.path_params["id"]
    b.get(t, "instances", iid, "Instance")
    _drop_instance(b, t, iid)
    return _deleted(request, b, iid)


def _new_backup(b: Backend, t: Token, instance_id: str) -> dict[str, Any]:
    bid = new_id("bkp_")
    record = {
        "id": bid,
        "instance_id": instance_id,
        "status": b.choices.backup_initial,
        "size_mb": None,
        "created_at": iso(time.time()),
        "completed_at": None,
        "_kind": "backup",
        "_since": b.clock(),
    }
    b.coll(t, "backups")[bid] = record
    return record


async def clone_instance(request: Request, b: Backend, t: Token) -> Response:
    b.require(t, "instances:write", *(("backups:read",) if b.choices.clone_needs_backups_read else ()))
    source = b.get(t, "instances", request.path_params["id"], "Instance")
    body = await json_body(
        request, require_json_type=b.choices.require_json_content_type, code=b.choices.bad_json_code
    )
    fields = _strings(body, b, ("name", "backup_id"), ("domain", "admin_password"))
    for flag in ("neutralize", "restore_database", "restore_filestore"):
        if flag in body and not isinstance(body[flag], bool):
            raise b.invalid(flag, f"{flag} must be a boolean")
    backup = b.coll(t, "backups").get(fields["backup_id"])
    if backup is None or backup["instance_id"] != source["id"]:
        raise HttpError(
            404, b.choices.not_found_code, "Backup not found", {"field": "backup_id", "reason": "not found"}
        )
    if b.settle(backup)["status"] != "completed":
        raise HttpError(409, b.choices.conflict_code, "Backup is not completed")
    _check_unique(b, t, {"domain": fields.get("domain"), "database_name": fields["name"].replace("-", "_")})
    iid = new_id("inst_")
    record = {
        "id": iid,
        "name": fields["name"],
        "server_id": source["server_id"],
        "odoo_version": source["odoo_version"],
        "edition": source["edition"],
        "database_name": fields["name"].replace("-", "_"),
        "admin_email": source["admin_email"],
        "domain": fields.get("domain"),
        "status": b.choices.instance_initial,
        "created_at": iso(time.time()),
        "_kind": "instance",
        "_since": b.clock(),
    }
    b.coll(t, "instances")[iid] = record
    data = b.public(record)
    if "admin_password" not in fields:
        data["admin_password"] = secrets.token_urlsafe(12)
    return b.ok(request, data, 201)


async def instance_action(request: Request, b: Backend, t: Token) -> Response:
    b.require(t, "instances:actions")
    instance = b.get(t, "instances", request.path_params["id"], "Instance")
    body = await json_body(
        request, require_json_type=b.choices.require_json_content_type, code=b.choices.bad_json_code
    )
    if not isinstance(body, dict) or "action" not in body:
        raise b.invalid("action", "Action is required")
    action = body["action"]
    if b.defect == "enum-500":
        action = action.strip()  # crashes on a non-string: the planted defect
    if action not in ACTIONS:
        raise b.invalid("action", "must be one of start, stop, restart, backup")
    status = instance["status"]
    state_code = b.choices.conflict_code
    if action == "start":
        if status != "stopped":
            raise HttpError(409, state_code, f"Instance is {status}; only a stopped instance can be started")
        instance.update(status="running", _since=b.clock())
    elif action == "stop":
        if status != "running":
            raise HttpError(409, state_code, f"Instance is {status}; only a running instance can be stopped")
        instance.update(status="stopped", _since=b.clock())
    elif action == "restart":
        if status not in ("running", "stopped"):
            raise HttpError(409, state_code, f"Instance is {status}")
        instance.update(status="restarting", _since=b.clock())
    else:
        backup = _new_backup(b, t, instance["id"])
        return b.ok(request, {"action": action, "backup": b.public(backup)}, b.choices.action_status)
    return b.ok(request, {"action": action, "instance": b.public(instance)}, b.choices.action_status)


async def list_backups(request: Request, b: Backend, t: Token) -> Response:
    b.require(t, "backups:read")
    iid = request.path_params["id"]
    b.get(t, "instances", iid, "Instance")
    return b.page(request, [b.settle(r) for r in b.coll(t, "backups").values() if r["instance_id"] == iid])


async def create_backup(request: Request, b: Backend, t: Token) -> Response:
    b.require(t, "backups:write")
    instance = b.get(t, "instances", request.path_params["id"], "Instance")
    return b.ok(request, b.public(_new_backup(b, t, instance["id"])), 201)


async def get_backup(request: Request, b: Backend, t: Token) -> Response:
    b.require(t, "backups:read")
    return b.ok(request, b.public(b.get(t, "backups", request.path_params["id"], "Backup")))


async def delete_backup(request: Request, b: Backend, t: Token) -> Response:
    b.require(t, "backups:write")
    bid = request.path_params["id"]
    b.get(t, "backups", bid, "Backup")
    del b.coll(t, "backups")[bid]
    return _deleted(request, b, bid)


async def restore_backup(request: Request, b: Backend, t: Token) -> Response:
    b.require(t, "backups:restore")
    bid = request.path_params["id"]
    backup = b.coll(t, "backups").get(bid)
    owner_instances = b.coll(t, "instances")
    if backup is None and b.defect == "cross-account-restore":
        backup = b.store.find_anywhere(t.mode, "backups", bid)  # the planted defect: any account's backup
        owner_instances = {}
    if backup is None:
        raise b.not_found("Backup")
    if b.settle(backup)["status"] != "completed":
        raise HttpError(409, b.choices.conflict_code, "Backup is not completed")
    instance = owner_instances.get(backup["instance_id"])
    if instance is not None:
        instance.update(status="restoring", _since=b.clock())
    data = {"backup_id": bid, "instance_id": backup["instance_id"], "status": "restoring"}
    return b.ok(request, data, b.choices.restore_status)


async def get_settings(request: Request, b: Backend, t: Token) -> Response:
    b.require(t, "settings:read")
    return b.ok(request, {"company_name": t.account.capitalize(), "timezone": "UTC"})


def build(
    choices: Choices, window: float, clock: Clock | None, delay: float, defect: str | None
) -> Starlette:
    if defect is not None and defect not in SUPPORTED_DEFECTS:
        raise ValueError(f"unknown defect {defect!r}")
    b = Backend(choices, window, clock or time.monotonic, delay, defect)

    def r(path: str, handler: Handler, methods: list[str], **kw: bool) -> Route:
        return Route("/api/v1" + path, endpoint(b, handler, **kw), methods=methods)

    routes = [
        r("/auth/login", login, ["POST"], public=True),
        r("/servers", list_servers, ["GET"]),
        r("/servers", create_server, ["POST"], write=True),
        r("/servers/{id}", get_server, ["GET"]),
        r("/servers/{id}", delete_server, ["DELETE"], write=True),
        r("/instances", list_instances, ["GET"]),
        r("/instances", create_instance, ["POST"], write=True),
        r("/instances/{id}/clone", clone_instance, ["POST"], write=True),
        r("/instances/{id}/actions", instance_action, ["POST"]),
        r("/instances/{id}/backups", list_backups, ["GET"]),
        r("/instances/{id}/backups", create_backup, ["POST"], write=True),
        r("/backups/{id}/restore", restore_backup, ["POST"]),
    ]
    if "GET" in choices.instance_routes:
        routes.append(r("/instances/{id}", get_instance, ["GET"]))
    if "DELETE" in choices.instance_routes:
        routes.append(r("/instances/{id}", delete_instance, ["DELETE"], write=True))
    if "GET" in choices.backup_routes:
        routes.append(r("/backups/{id}", get_backup, ["GET"]))
    if "DELETE" in choices.backup_routes:
        routes.append(r("/backups/{id}", delete_backup, ["DELETE"], write=True))
    if choices.settings_route:
        routes.append(r("/settings", get_settings, ["GET"]))

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        request.state.request_id = f"req_{uuid.uuid4().hex[:16]}"
        code = {404: choices.not_found_code, 405: "METHOD_NOT_ALLOWED"}.get(status, "INTERNAL_ERROR")
        response = b.error(
            request, HttpError(status, code, "No such endpoint" if status == 404 else "Method not allowed")
        )
        response.headers.update(getattr(exc, "headers", None) or {})  # 405 carries Allow
        return response

    app = Starlette(routes=merge_routes(routes), exception_handlers={HTTPException: http_error})
    app.state.backend = b
    return app
