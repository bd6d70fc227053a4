"""Nexos (api.nexos.dev/api), written from document 004.

Documented, and done so: base path `/api`; JSON in and out; API keys prefixed `nxs_`, sent as
`Authorization: Bearer`, stored as bcrypt hashes and shown once at creation (a single key can do
everything: no permissions, no 403); GitHub OAuth for the dashboard (`GET /auth/github`
redirects to GitHub) with a JWT in an HTTP-only cookie; every endpoint of the document's tables
(auth, projects, environments and their actions with `/restart` as an alias of `/rebuild`,
deployments and logs, env vars with masked values, nodes, quota, the GitHub webhook receiver for
push and delete events); the create-project and quota bodies exactly as shown.

Choices where the document is silent:
- bare JSON everywhere; errors `{"error": {"code", "message", "field"?}}` with lowercase codes
  (`invalid_request`, `unauthorized`, `not_found`, `conflict`, `invalid_state`,
  `quota_exceeded`, `rate_limited`); validation is `400 invalid_request`;
- lists are bare arrays, not paginated; DELETE answers `204`; `PUT env-vars` answers `200`
  whether it created or updated;
- a project's `slug` (from its name) is unique per account: 409 `conflict` on reuse; the 26th
  project is `403 quota_exceeded`; the create response adds `webhook_secret` (shown once), used to
  verify `X-Hub-Signature-256`;
- 600 requests per window per key, announced as `X-RateLimit-Limit/Remaining/Reset` with the
  reset in seconds (delta), `Retry-After` on 429;
- the quota adds `period_ends_at`; there is no node registration endpoint (nodes join out of
  band), so `GET /nodes` lists only what `backend.add_node()` put there;
- the OAuth callback cannot reach GitHub here: any code is refused (401).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import bcrypt
import jwt
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tests.conformance.honest.common import (
    Clock,
    HttpError,
    MovingWindow,
    Store,
    TestTokens,
    Token,
    bearer,
    ceil_seconds,
    check_limits,
    iso,
    json_body,
    json_response,
    merge_routes,
    new_id,
)

DEFECTS: tuple[str, ...] = ()
LIMIT = 600
MAX_PROJECTS = 25
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_KEY = re.compile(r"^[A-Z_][A-Z0-9_]*$")


@dataclass
class ApiKey:
    id: str
    name: str
    hashed: bytes
    masked: str
    account: str
    mode: str
    user_id: str
    created_at: str
    last_used_at: str | None = None


@dataclass
class Backend:
    window: float
    clock: Clock
    delay: float
    limit: int
    keys: dict[str, ApiKey] = field(default_factory=dict)  # by key id
    store: Store = field(default_factory=Store)
    limiter: MovingWindow = field(init=False)
    secret: str = field(default_factory=lambda: secrets.token_hex(32))

    def __post_init__(self) -> None:
        self.limiter = MovingWindow(self.clock)

    # ------------------------------------------------------------------ keys
    def new_key(self, account: str, name: str, mode: str = "live") -> tuple[ApiKey, str]:
        kid = secrets.token_hex(4)
        plain = f"nxs_{'test_' if mode == 'test' else ''}{kid}_{secrets.token_hex(16)}"
        hashed = bcrypt.hashpw(plain.encode(), bcrypt.gensalt(rounds=4))
        key = ApiKey(
            f"key_{kid}",
            name,
            hashed,
            plain[:12] + "…" + plain[-4:],
            account,
            mode,
            f"usr_{account}",
            iso(time.time()),
        )
        self.keys[kid] = key
        return key, plain

    def mint(self, account: str = "acme", mode: str = "live") -> str:
        return self.new_key(account, "test", mode)[1]

    def test_tokens(self, mode: str = "live") -> TestTokens:
        """The document has no permissions: the limited token can do what the full one can."""
        return TestTokens(self.mint("acme", mode), self.mint("acme", mode), self.mint("globex", mode))

    def session_cookie(self, account: str = "acme") -> str:
        now = int(time.time())
        return jwt.encode(
            {"sub": f"usr_{account}", "acc": account, "iat": now, "exp": now + 86400}, self.secret
        )

    def principal(self, request: Request) -> Token:
        value = bearer(request)
        m = re.fullmatch(r"nxs_(?:test_)?([0-9a-f]{8})_[0-9a-f]{32}", value)
        key = self.keys.get(m.group(1)) if m else None
        if key is not None and bcrypt.checkpw(value.encode(), key.hashed):
            key.last_used_at = iso(time.time())
            return Token(key.id, key.account, key.mode, frozenset(), key.user_id)
        cookie = request.cookies.get("nexos_session") or (value if value.count(".") == 2 else "")
        if cookie:
            try:
                claims = jwt.decode(
                    cookie, self.secret, algorithms=["HS256"], options={"require": ["exp", "iat", "sub"]}
                )
                return Token("session:" + claims["sub"], claims["acc"], "live", frozenset(), claims["sub"])
            except jwt.PyJWTError:
                pass
        raise HttpError(401, "unauthorized", "Missing or invalid API key")

    def coll(self, t: Token, name: str) -> dict[str, dict[str, Any]]:
        return self.store.coll(t.account, t.mode, name)

    def get(self, t: Token, name: str, rid: str, what: str) -> dict[str, Any]:
        record = self.coll(t, name).get(rid)
        if record is None:
            raise HttpError(404, "not_found", f"{what} {rid} not found")
        return self.settle(t, record) if name in ("environments", "deployments") else record

    def settle(self, t: Token, record: dict[str, Any]) -> dict[str, Any]:
        kind, status = record.get("_kind"), record["status"]
        if kind == "deployment" and status == "building" and self.clock() - record["_since"] >= self.delay:
            record.update(status="succeeded", finished_at=iso(time.time()))
        if record.get("_kind") == "environment" and record["status"] == "building":
            dep = self.coll(t, "deployments").get(record["current_deployment_id"] or "")
            if dep is None or self.settle(t, dep)["status"] == "succeeded":
                record["status"] = "running"
        return record

    def add_node(self, account: str = "acme", name: str = "node-1", mode: str = "live") -> str:
        nid = new_id("node_")
        self.store.coll(account, mode, "nodes")[nid] = {
            "id": nid,
            "name": name,
            "status": "online",
            "cpu": 8,
            "memory_mb": 32768,
            "created_at": iso(time.time()),
        }
        return nid


def public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if not k.startswith("_")}


def error(exc: HttpError) -> Response:
    err: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.details:
        err["field"] = exc.details
    return json_response({"error": err}, exc.status, exc.headers)


def invalid(field_name: str, message: str) -> HttpError:
    return HttpError(400, "invalid_request", message, field_name)


Handler = Callable[[Request, Backend, Token], Awaitable[Response]]


def endpoint(b: Backend, handler: Handler, public_op: bool = False) -> Any:
    async def run(request: Request) -> Response:
        decision = None
        try:
            if public_op:
                token = Token(
                    "ip:" + (request.client.host if request.client else "-"), "", "live", frozenset()
                )
            else:
                token = b.principal(request)
            decision, refused = check_limits(b.limiter, token.value, [("default", b.limit, b.window)])
            if refused is not None:
                raise HttpError(
                    429,
                    "rate_limited",
                    "Too many requests",
                    None,
                    {"Retry-After": str(ceil_seconds(refused.reset_in))},
                )
            response = await handler(request, b, token)
        except HttpError as exc:
            response = error(exc)
        except Exception:
            response = error(HttpError(500, "internal_error", "Something went wrong"))
        if decision is not None:
            response.headers["X-RateLimit-Limit"] = str(decision.limit)
            response.headers["X-RateLimit-Remaining"] = str(decision.remaining)
            response.headers["X-RateLimit-Reset"] = str(ceil_seconds(decision.reset_in))  # seconds from now
        return response

    return run


# ---------------------------------------------------------------------- auth
async def github_login(request: Request, b: Backend, t: Token) -> Response:
    query = urlencode({"client_id": "Iv1.nexos", "state": secrets.token_hex(8), "scope": "read:user repo"})
    return RedirectResponse(f"https://github.com/login/oauth/authorize?{query}", status_code=302)


async def github_callback(request: Request, b: Backend, t: Token) -> Response:
    if not request.query_params.get("code"):
        raise invalid("code", "code is required")
    raise HttpError(401, "unauthorized", "The OAuth code could not be verified")


async def me(request: Request, b: Backend, t: Token) -> Response:
    login = t.account
    return json_response(
        {"id": t.user_id, "login": login, "name": login.capitalize(), "email": f"{login}@example.com"}
    )


async def create_api_key(request: Request, b: Backend, t: Token) -> Response:
    body = await json_body(request, code="invalid_request")
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise invalid("name", "name is required")
    key, plain = b.new_key(t.account, name, t.mode)
    return json_response({"id": key.id, "name": key.name, "key": plain, "created_at": key.created_at}, 201)


def _key_view(k: ApiKey) -> dict[str, Any]:
    return {
        "id": k.id,
        "name": k.name,
        "key": k.masked,
        "created_at": k.created_at,
        "last_used_at": k.last_used_at,
    }


async def list_api_keys(request: Request, b: Backend, t: Token) -> Response:
    return json_response(
        [_key_view(k) for k in b.keys.values() if (k.account, k.mode) == (t.account, t.mode)]
    )


async def revoke_api_key(request: Request, b: Backend, t: Token) -> Response:
    kid = request.path_params["id"].removeprefix("key_")
    key = b.keys.get(kid)
    if key is None or (key.account, key.mode) != (t.account, t.mode):
        raise HttpError(404, "not_found", "API key not found")
    del b.keys[kid]
    return Response(status_code=204)


# ---------------------------------------------------------------------- projects
def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "project"


def _project_fields(body: Any, partial: bool) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid("body", "body must be a JSON object")
    out: dict[str, Any] = {}
    for name in ("name", "github_repo", "dockerfile", "build_context"):
        if name in body:
            if not isinstance(body[name], str) or not body[name]:
                raise invalid(name, f"{name} must be a non-empty string")
            out[name] = body[name]
        elif not partial and name in ("name", "github_repo"):
            raise invalid(name, f"{name} is required")
    if "github_repo" in out and not _REPO.match(out["github_repo"]):
        raise invalid("github_repo", "github_repo must look like owner/repo")
    if "services" in body:
        services = body["services"]
        if not isinstance(services, dict) or not all(isinstance(v, bool) for v in services.values()):
            raise invalid("services", "services must map service names to booleans")
        out["services"] = {s: bool(services.get(s, False)) for s in ("postgres", "redis", "s3")}
    return out


async def list_projects(request: Request, b: Backend, t: Token) -> Response:
    return json_response([public(p) for p in b.coll(t, "projects").values()])


async def create_project(request: Request, b: Backend, t: Token) -> Response:
    body = await json_body(request, code="invalid_request")
    fields = _project_fields(body, partial=False)
    projects = b.coll(t, "projects")
    slug = _slug(fields["name"])
    if any(p["slug"] == slug for p in projects.values()):
        raise HttpError(409, "conflict", f"A project with slug {slug} already exists", "name")
    if len(projects) >= MAX_PROJECTS:
        raise HttpError(403, "quota_exceeded", f"Your plan allows {MAX_PROJECTS} projects")
    pid = new_id("proj_", 8)
    secret = "whsec_" + secrets.token_hex(12)
    projects[pid] = {
        "id": pid,
        "name": fields["name"],
        "slug": slug,
        "github_repo": fields["github_repo"],
        "dockerfile": fields.get("dockerfile", "Dockerfile"),
        "build_context": fields.get("build_context", "."),
        "services": fields.get("services", {"postgres": False, "redis": False, "s3": False}),
        "created_at": iso(time.time()),
        "_webhook_secret": secret,
    }
    return json_response({**public(projects[pid]), "webhook_secret": secret}, 201)


async def get_project(request: Request, b: Backend, t: Token) -> Response:
    return json_response(public(b.get(t, "projects", request.path_params["id"], "Project")))


async def update_project(request: Request, b: Backend, t: Token) -> Response:
    project = b.get(t, "projects", request.path_params["id"], "Project")
    body = await json_body(request, code="invalid_request")
    project.update(_project_fields(body, partial=True))
    return json_response(public(project))


async def delete_project(request: Request, b: Backend, t: Token) -> Response:
    pid = request.path_params["id"]
    b.get(t, "projects", pid, "Project")
    for name in ("environments", "deployments", "env_vars"):
        coll = b.coll(t, name)
        for rid in [k for k, v in coll.items() if v["project_id"] == pid]:
            del coll[rid]
    del b.coll(t, "projects")[pid]
    return Response(status_code=204)


# ---------------------------------------------------------------------- environments and deployments
def _deploy(b: Backend, t: Token, env: dict[str, Any], sha: str) -> None:
    did = new_id("dep_", 8)
    b.coll(t, "deployments")[did] = {
        "id": did,
        "environment_id": env["id"],
        "project_id": env["project_id"],
        "commit_sha": sha,
        "status": "building",
        "created_at": iso(time.time()),
        "finished_at": None,
        "_kind": "deployment",
        "_since": b.clock(),
    }
    env.update(status="building", current_deployment_id=did, _sha=sha)


async def list_environments(request: Request, b: Backend, t: Token) -> Response:
    pid = request.path_params["id"]
    b.get(t, "projects", pid, "Project")
    envs = [b.settle(t, e) for e in b.coll(t, "environments").values() if e["project_id"] == pid]
    return json_response([public(e) for e in envs])


async def get_environment(request: Request, b: Backend, t: Token) -> Response:
    return json_response(public(b.get(t, "environments", request.path_params["id"], "Environment")))


ALLOWED = {  # action: (statuses it may start from, status after)
    "rebuild": (("running", "paused", "failed", "building"), None),
    "restart": (("running", "paused", "failed", "building"), None),
    "pause": (("running",), "paused"),
    "resume": (("paused",), "running"),
    "reset": (("running", "paused"), None),
    "destroy": (("building", "running", "paused", "failed"), "destroyed"),
}


def env_action(action: str) -> Handler:
    async def run(request: Request, b: Backend, t: Token) -> Response:
        env = b.get(t, "environments", request.path_params["id"], "Environment")
        allowed, after = ALLOWED[action]
        if env["status"] not in allowed:
            raise HttpError(409, "invalid_state", f"Cannot {action} an environment that is {env['status']}")
        if action in ("rebuild", "restart"):
            _deploy(b, t, env, env["_sha"])
        elif action == "reset":
            env["last_reset_at"] = iso(time.time())
        else:
            env["status"] = after
        env["updated_at"] = iso(time.time())
        return json_response(public(env))

    return run


async def get_deployment(request: Request, b: Backend, t: Token) -> Response:
    return json_response(public(b.get(t, "deployments", request.path_params["id"], "Deployment")))


async def deployment_logs(request: Request, b: Backend, t: Token) -> Response:
    dep = b.get(t, "deployments", request.path_params["id"], "Deployment")
    lines = [f"Building {dep['commit_sha'][:7]}", "Step 1/2 : FROM node:20-alpine"]
    if dep["status"] == "succeeded":
        lines.append("Build succeeded")
    return json_response({"deployment_id": dep["id"], "logs": "\n".join(lines)})


# ---------------------------------------------------------------------- env vars
def _masked(var: dict[str, Any]) -> dict[str, Any]:
    return {**public(var), "value": "••••••••"}


async def list_env_vars(request: Request, b: Backend, t: Token) -> Response:
    pid = request.path_params["id"]
    b.get(t, "projects", pid, "Project")
    return json_response([_masked(v) for v in b.coll(t, "env_vars").values() if v["project_id"] == pid])


async def put_env_var(request: Request, b: Backend, t: Token) -> Response:
    pid = request.path_params["id"]
    b.get(t, "projects", pid, "Project")
    body = await json_body(request, code="invalid_request")
    if not isinstance(body, dict) or not isinstance(body.get("key"), str) or not _KEY.match(body["key"]):
        raise invalid("key", "key must be an upper-case environment variable name")
    if not isinstance(body.get("value"), str):
        raise invalid("value", "value must be a string")
    coll = b.coll(t, "env_vars")
    var = next((v for v in coll.values() if v["project_id"] == pid and v["key"] == body["key"]), None)
    if var is None:
        vid = new_id("var_", 8)
        var = coll[vid] = {"id": vid, "project_id": pid, "key": body["key"], "created_at": iso(time.time())}
    var.update(value=body["value"], updated_at=iso(time.time()))
    return json_response(_masked(var))


async def delete_env_var(request: Request, b: Backend, t: Token) -> Response:
    pid, vid = request.path_params["id"], request.path_params["varId"]
    b.get(t, "projects", pid, "Project")
    var = b.coll(t, "env_vars").get(vid)
    if var is None or var["project_id"] != pid:
        raise HttpError(404, "not_found", "Environment variable not found")
    del b.coll(t, "env_vars")[vid]
    return Response(status_code=204)


# ---------------------------------------------------------------------- nodes, quota
async def list_nodes(request: Request, b: Backend, t: Token) -> Response:
    return json_response(list(b.coll(t, "nodes").values()))


async def join_token(request: Request, b: Backend, t: Token) -> Response:
    token = "njt_" + secrets.token_hex(12)
    return json_response(
        {
            "token": token,
            "expires_at": iso(time.time() + 3600),
            "command": f"nexos-agent join --token {token}",
        },
        201,
    )


async def get_node(request: Request, b: Backend, t: Token) -> Response:
    return json_response(b.get(t, "nodes", request.path_params["id"], "Node"))


async def delete_node(request: Request, b: Backend, t: Token) -> Response:
    nid = request.path_params["id"]
    b.get(t, "nodes", nid, "Node")
    del b.coll(t, "nodes")[nid]
    return Response(status_code=204)


async def quota(request: Request, b: Backend, t: Token) -> Response:
    running = [e for e in b.coll(t, "environments").values() if b.settle(t, e)["status"] == "running"]
    return json_response(
        {
            "plan": "pro",
            "usage": {
                "projects": len(b.coll(t, "projects")),
                "total_cpu": 0.5 * len(running),
                "total_memory_mb": 1024 * len(running),
                "build_minutes_used": len(b.coll(t, "deployments")),
            },
            "limits": {
                "max_projects": MAX_PROJECTS,
                "max_cpu": 64,
                "max_memory_mb": 131072,
                "build_minutes": 5000,
            },
            "period_ends_at": iso(time.time() + 30 * 86400),
        }
    )


# ---------------------------------------------------------------------- webhooks
async def github_webhook(request: Request, b: Backend, t: Token) -> Response:
    raw = await request.body()
    event = request.headers.get("x-github-event", "")
    body = await json_body(request, code="invalid_request")
    repository = body.get("repository") if isinstance(body, dict) else None
    repo = repository.get("full_name") if isinstance(repository, dict) else None
    if not isinstance(repo, str):
        raise invalid("repository.full_name", "repository.full_name is required")
    found = [
        (acc_mode, p)
        for acc_mode, colls in b.store.data.items()
        for p in colls.get("projects", {}).values()
        if p["github_repo"] == repo
    ]
    if not found:
        raise HttpError(404, "not_found", f"No project for repository {repo}")
    (account, mode), project = found[0]
    sent = request.headers.get("x-hub-signature-256", "")
    expected = "sha256=" + hmac.new(project["_webhook_secret"].encode(), raw, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(sent, expected):
        raise HttpError(401, "unauthorized", "Invalid webhook signature")
    owner = Token("webhook", account, mode, frozenset())
    envs = b.coll(owner, "environments")
    if event == "push" and isinstance(body.get("ref"), str) and body["ref"].startswith("refs/heads/"):
        branch = body["ref"].removeprefix("refs/heads/")
        env = next(
            (e for e in envs.values() if e["project_id"] == project["id"] and e["branch"] == branch), None
        )
        if env is None:
            eid = new_id("env_", 8)
            env = envs[eid] = {
                "id": eid,
                "project_id": project["id"],
                "branch": branch,
                "status": "building",
                "url": f"https://{branch}-{project['slug']}.nexos.dev",
                "current_deployment_id": None,
                "last_reset_at": None,
                "created_at": iso(time.time()),
                "updated_at": iso(time.time()),
                "_kind": "environment",
            }
        _deploy(b, owner, env, str(body.get("after", "0" * 40)))
        return json_response({"accepted": True, "environment_id": env["id"]}, 202)
    if event == "delete" and body.get("ref_type") == "branch":
        for env in envs.values():
            if env["project_id"] == project["id"] and env["branch"] == body.get("ref"):
                env["status"] = "destroyed"
        return json_response({"accepted": True}, 202)
    return json_response({"accepted": False}, 202)


def make_app(
    window: float = 60.0,
    *,
    clock: Clock | None = None,
    delay: float = 60.0,
    defect: str | None = None,
    limit: int = LIMIT,
) -> Starlette:
    """The backend; `app.state.backend.test_tokens()` mints API keys. `window`: the rate-limit
    window in seconds and `limit` the requests a key may make in it (the document states
    none); `delay`: seconds a build takes."""
    if defect is not None and defect not in DEFECTS:
        raise ValueError(f"unknown defect {defect!r}")
    b = Backend(window, clock or time.monotonic, delay, limit)

    def r(path: str, handler: Handler, method: str, public_op: bool = False) -> Route:
        return Route("/api" + path, endpoint(b, handler, public_op), methods=[method])

    routes = [
        r("/auth/github", github_login, "GET", True),
        r("/auth/github/callback", github_callback, "GET", True),
        r("/auth/me", me, "GET"),
        r("/auth/api-keys", create_api_key, "POST"),
        r("/auth/api-keys", list_api_keys, "GET"),
        r("/auth/api-keys/{id}", revoke_api_key, "DELETE"),
        r("/projects", list_projects, "GET"),
        r("/projects", create_project, "POST"),
        r("/projects/{id}", get_project, "GET"),
        r("/projects/{id}", update_project, "PATCH"),
        r("/projects/{id}", delete_project, "DELETE"),
        r("/projects/{id}/environments", list_environments, "GET"),
        r("/environments/{id}", get_environment, "GET"),
        *(r(f"/environments/{{id}}/{a}", env_action(a), "POST") for a in ALLOWED),
        r("/deployments/{id}", get_deployment, "GET"),
        r("/deployments/{id}/logs", deployment_logs, "GET"),
        r("/projects/{id}/env-vars", list_env_vars, "GET"),
        r("/projects/{id}/env-vars", put_env_var, "PUT"),
        r("/projects/{id}/env-vars/{varId}", delete_env_var, "DELETE"),
        r("/nodes", list_nodes, "GET"),
        r("/nodes/join-token", join_token, "POST"),
        r("/nodes/{id}", get_node, "GET"),
        r("/nodes/{id}", delete_node, "DELETE"),
        r("/quota", quota, "GET"),
        r("/webhooks/github", github_webhook, "POST", True),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        code = {404: "not_found", 405: "method_not_allowed"}.get(status, "internal_error")
        response = error(HttpError(status, code, "Not found" if status == 404 else "Method not allowed"))
        response.headers.update(getattr(exc, "headers", None) or {})  # 405 carries Allow
        return response

    app = Starlette(routes=merge_routes(routes), exception_handlers={HTTPException: http_error})
    app.state.backend = b
    return app
