"""Honest in-memory backend of the Nexos API, written BLIND.

Written from document 004 (shared/seeds/004_*.txt, base URL
https://api.nexos.dev/api) alone, by a helper who never read specs/,
mock_server/ or the suites.  Served at the root, it answers under /api.

What the document states, and this backend does
- JSON in, JSON out.  Two auth methods: a JWT in an HTTP-only cookie, obtained
  through GitHub OAuth (GET /auth/github -> redirect, GET /auth/github/callback),
  and API keys prefixed ``nxs_`` sent as ``Authorization: Bearer nxs_...``.
  Keys are stored only as bcrypt hashes; the plaintext is returned once, by
  POST /auth/api-keys; GET /auth/api-keys lists them masked; DELETE
  /auth/api-keys/:id revokes one (it stops working at once).  GET /auth/me.
- Projects: list, create (name, github_repo, dockerfile, build_context,
  services{postgres, redis, s3}; answer has id, name, slug, ..., created_at),
  get, PATCH, DELETE (deletes the project and all its environments).
- Environments: list per project, get, rebuild from the latest commit (alias
  /restart), pause (stops every container, and the shared Postgres/Redis when it
  was the last active environment), resume (restarts paused containers, no
  rebuild), reset (empties the environment's database), destroy.
- Deployments: get, build logs.
- Env vars: list with masked values, PUT create-or-update, DELETE.
- Nodes: list, join token, get (details and status), DELETE (removed).
- GET /quota: {plan, usage{projects, total_cpu, total_memory_mb,
  build_minutes_used}, limits{max_projects, max_cpu, max_memory_mb,
  build_minutes}}.
- POST /webhooks/github receives GitHub push and delete events.

Choices made where the document is silent
- Errors: ``{"error": "<snake_code>", "message": "...", "details": {...}}``;
  validation -> 400 ``validation_error`` (also unknown/read-only fields in PATCH,
  and null for optional fields); bad JSON / non-UTF-8 -> 400 ``invalid_json``;
  401 ``unauthorized``; 404 ``not_found`` (also for another account's records);
  405; 409 ``conflict`` (duplicate project name, wrong state for an action);
  403 ``quota_exceeded``; 413 over 1 MiB.
- Lists are bare JSON arrays, newest first (env vars: by key); no pagination.
- A present Authorization header must be a valid live API key (a cookie is
  then ignored); the JWT is accepted only from the ``nexos_token`` cookie
  (HttpOnly, SameSite=Lax, not Secure as the test server is plain HTTP), HS256,
  7-day expiry.  API keys can manage API keys.
- Key format ``nxs_`` + 48 hex; ``masked_key`` = ``nxs_`` + 8 chars + 24 ``*``;
  key records: id, name, prefix, masked_key, created_at, last_used_at.
  POST /auth/api-keys: name optional (default "API key") -> 201 with ``key``.
  DELETE -> 200 {id, revoked: true, revoked_at}; revoked keys leave the list;
  deleting again -> 404.
- OAuth offline: /auth/github answers 302 to github.com with a ``state`` (also
  set as cookie ``nexos_oauth_state``); the callback needs code and matching
  state (else 400); exchanging an unknown code is 502 ``github_unreachable``;
  codes registered with ``backend.register_github_code(code, login)`` log in:
  302 to ``/`` with the ``nexos_token`` cookie.
- Projects: name (1..63 chars, slugifiable, unique per account -> 409) and
  github_repo (``owner/repo``) required; dockerfile default ``Dockerfile``,
  build_context default ``.``, services default all false; extra fields
  default_branch ("main"), updated_at, shared_services {postgres, redis:
  running|stopped|disabled}.  The slug is fixed at creation.  POST -> 201.
  Creating a project creates its ``main`` environment with a first deployment.
  DELETE -> 200 {id, deleted: true, environments_deleted}; also drops its
  deployments and env vars.
- Environment: id, project_id, name/branch, kind (production|preview), status
  (building -> running after ``delay``; paused; destroyed), url, cpu (0.5),
  memory_mb (512), commit_sha, latest_deployment_id, database (null without
  postgres, else {engine, name, size_bytes, reset_at}), created_at, updated_at.
  Actions answer 200 with the environment, rebuild 202 {environment,
  deployment}; wrong state -> 409 (pause when paused, resume when not paused,
  reset without postgres).  Destroy removes the environment (then 404) and its
  deployments, answering 200 with status "destroyed".
- Deployment: queued (first 10% of ``delay``) -> building -> succeeded at
  ``delay``; trigger create|push|rebuild; logs: {deployment_id, status, lines:
  [{ts, message}]} growing as the build goes.  Each finished build costs
  ceil(delay/60) (min 1) build minutes.
- Quota: both test accounts are on "pro" with the limits of the example.
  usage.total_cpu / total_memory_mb add up non-paused environments.  Creating a
  project beyond max_projects, or an environment beyond max_cpu /
  max_memory_mb, is 403 ``quota_exceeded``; build minutes are counted, not
  enforced.
- Env vars: key ``[A-Za-z_][A-Za-z0-9_]*`` (<= 256), value string (<= 64 KiB);
  PUT -> 201 when created, 200 when updated; value always masked as ``********``
  (also in PUT answers); DELETE -> 204.
- Nodes: POST /nodes/join-token -> 201 {token ``nxj_...``, expires_at (15 min),
  command}; an agent joins with the undocumented POST /api/nodes/join {token,
  hostname, cpu_cores, memory_mb} (token single use); node status joining ->
  online after ``delay``.  DELETE -> 200 {id, removed: true}.
- Webhooks: HMAC-SHA256 ``X-Hub-Signature-256`` over the raw body with
  ``backend.webhook_secret`` (one secret for the installation); missing or bad
  -> 401.  push to refs/heads/<b> deploys (creating the environment if needed)
  in every project whose github_repo matches; delete (ref_type branch) or a
  push with deleted=true destroys that branch's environments; ping and other
  events -> 200 ignored; answers 202 {event, deployments|destroyed}.
- No permission model in 004: the "limited" test token is the full one.
  No rate limit is documented, none is applied.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from urllib.parse import parse_qs, urlencode

import bcrypt
import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

DEFECTS: dict[str, str] = {
    "revoked_key_works": "a revoked API key still authenticates",
    "key_no_prefix": "API keys are issued without the nxs_ prefix",
    "api_keys_list_unmasked": "GET /auth/api-keys lists the plaintext keys",
    "no_auth_required": "requests without credentials are served as account A",
    "env_values_clear": "GET /projects/:id/env-vars lists values in clear",
    "project_delete_keeps_envs": "DELETE /projects/:id keeps the project's environments",
    "quota_not_updated": "GET /quota usage is not updated after creating projects",
    "project_quota_unenforced": "projects can be created beyond limits.max_projects",
    "cross_account_subresources": (
        "another account can act on your project's env vars, environments, deployments"
    ),
    "cross_account_project": "another account's project is readable and deletable",
    "restart_alias_missing": "POST /environments/:id/restart is 404 (alias of rebuild missing)",
    "resume_rebuilds": "resume starts a new deployment (documented: no rebuild)",
    "pause_keeps_shared_services": "pausing the last active environment leaves Postgres/Redis running",
    "pause_stops_shared_early": "pausing any environment stops the shared Postgres/Redis",
    "reset_keeps_data": "reset leaves the environment's database as it was",
    "webhook_signature_unchecked": "GitHub webhooks are accepted without a valid signature",
    "webhook_delete_ignored": "a GitHub delete event is answered 202 but the branch's environment stays",
    "node_delete_noop": "DELETE /nodes/:id answers success but the node stays registered",
    "env_var_put_duplicates": "a second PUT of the same key adds another variable instead of updating",
    "me_first_user": "GET /auth/me returns the first user ever created, whoever calls",
    "nodes_text_plain": "GET /nodes is served as text/plain (JSON text in a plain response)",
    "pause_keeps_running": "pause answers 200 but the environment's containers keep running",
    "destroy_keeps_environment": "destroy answers 200 (status destroyed) but the environment stays as it was",
}

PLAN_LIMITS = {"max_projects": 25, "max_cpu": 64, "max_memory_mb": 131072, "build_minutes": 5000}
ENV_CPU, ENV_MEM = 0.5, 512
MAX_BODY = 1 << 20
JOIN_TTL = 900.0
MASK = "********"
NAME_RE = re.compile(r"^[^\x00-\x1f]{1,63}$")
REPO_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
VAR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,255}$")
BRANCH_RE = re.compile(r"^[^\x00-\x20~^:?*\[\\]{1,200}$")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details=None, headers=None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details
        self.headers = headers or {}


def _iso(ts: float | None):
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63]


def _nid(prefix: str) -> str:
    return prefix + "_" + secrets.token_hex(6)


class Backend:
    def __init__(self, window: float, delay: float, defect: str | None, clock: Callable[[], float]):
        if defect is not None and defect not in DEFECTS:
            raise ValueError(f"unknown defect {defect!r}")
        self.window, self.delay, self.defect, self.clock = float(window), float(delay), defect, clock
        self.lock = threading.RLock()
        self.jwt_secret = secrets.token_bytes(32)
        self.webhook_secret = "whsec_" + secrets.token_hex(16)
        self.users: dict[str, dict] = {}
        self.github_codes: dict[str, str] = {}  # code -> github login
        self.oauth_states: dict[str, float] = {}
        self.keys: dict[str, dict] = {}  # key id -> record
        self.key_cache: dict[str, str] = {}  # sha256(plaintext) -> key id, after a bcrypt check
        self.projects: dict[str, dict] = {}
        self.envs: dict[str, dict] = {}
        self.deps: dict[str, dict] = {}
        self.vars: dict[str, dict] = {}
        self.nodes: dict[str, dict] = {}
        self.join_tokens: dict[str, dict] = {}
        self.seq = 0
        self._orphans: dict[str, str] = {}  # deleted project id -> owner
        self._tokens = None

    def on(self, name: str) -> bool:
        return self.defect == name

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    # -- users & keys ----------------------------------------------------
    def user_for_login(self, login: str) -> dict:
        for u in self.users.values():
            if u["github_login"] == login:
                return u
        uid = _nid("usr")
        u = {
            "id": uid,
            "github_login": login,
            "name": login.title(),
            "email": f"{login}@users.noreply.github.com",
            "avatar_url": f"https://avatars.githubusercontent.com/{login}",
            "plan": "pro",
            "created_at": _iso(self.clock()),
            "_build_minutes": 0,
        }
        self.users[uid] = u
        return u

    def mint_key(self, user_id: str, name: str = "API key") -> tuple[dict, str]:
        secret = secrets.token_hex(24)
        plaintext = ("sk_" if self.on("key_no_prefix") else "nxs_") + secret
        kid = _nid("key")
        rec = {
            "id": kid,
            "user_id": user_id,
            "name": name,
            "prefix": plaintext[:12],
            "hash": bcrypt.hashpw(plaintext.encode(), bcrypt.gensalt(rounds=6)),
            "created_at": self.clock(),
            "last_used_at": None,
            "revoked_at": None,
            "_plain": plaintext if self.on("api_keys_list_unmasked") else None,
        }
        self.keys[kid] = rec
        return rec, plaintext

    def key_view(self, rec: dict) -> dict:
        v = {
            "id": rec["id"],
            "name": rec["name"],
            "prefix": rec["prefix"],
            "masked_key": rec["prefix"] + "*" * 24,
            "created_at": _iso(rec["created_at"]),
            "last_used_at": _iso(rec["last_used_at"]),
        }
        if rec["_plain"]:
            v["key"] = rec["_plain"]
        return v

    def test_tokens(self):
        if self._tokens is None:
            a = self.user_for_login("alice")
            b = self.user_for_login("bob")
            full = self.mint_key(a["id"], "test full")[1]
            self._tokens = SimpleNamespace(
                full=full,
                limited=full,
                other=self.mint_key(b["id"], "test other")[1],
                same_account=self.mint_key(a["id"], "test second")[1],
            )
        return self._tokens

    def register_github_code(self, code: str, login: str) -> None:
        self.github_codes[code] = login

    def session_cookie(self, user_id: str) -> str:
        now = int(self.clock())
        return jwt.encode(
            {"sub": user_id, "iat": now, "exp": now + 7 * 86400}, self.jwt_secret, algorithm="HS256"
        )

    def authenticate(self, request: Request) -> tuple[dict, str]:
        header = request.headers.get("authorization")
        if header is not None:
            parts = header.split(None, 1)
            token = parts[1].strip() if len(parts) == 2 and parts[0].lower() == "bearer" else ""
            rec = self.check_key(token)
            if rec is None:
                raise ApiError(
                    401, "unauthorized", "Invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"}
                )
            rec["last_used_at"] = self.clock()
            return self.users[rec["user_id"]], "api_key"
        cookie = request.cookies.get("nexos_token")
        if cookie:
            try:
                claims = jwt.decode(
                    cookie,
                    self.jwt_secret,
                    algorithms=["HS256"],
                    options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
                )
            except Exception:
                claims = None
            if (
                claims
                and isinstance(claims.get("exp"), (int, float))
                and claims["exp"] > self.clock()
                and claims.get("sub") in self.users
            ):
                return self.users[claims["sub"]], "cookie"
        if self.on("no_auth_required"):
            return self.user_for_login("alice"), "none"
        raise ApiError(401, "unauthorized", "Authentication required", headers={"WWW-Authenticate": "Bearer"})

    def check_key(self, token: str):
        if not token or len(token.encode("utf-8", "replace")) > 72:
            return None
        digest = hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()
        kid = self.key_cache.get(digest)
        if kid is None:
            for rec in self.keys.values():
                if rec["prefix"] == token[:12] and bcrypt.checkpw(
                    token.encode("utf-8", "replace"), rec["hash"]
                ):
                    kid = rec["id"]
                    self.key_cache[digest] = kid
                    break
        rec = self.keys.get(kid) if kid else None
        if rec is None:
            return None
        if rec["revoked_at"] is not None and not self.on("revoked_key_works"):
            return None
        return rec

    # -- state -----------------------------------------------------------
    def dep_status(self, dep: dict) -> str:
        age = self.clock() - dep["created_at"]
        if age >= self.delay:
            return "succeeded"
        return "queued" if age < 0.1 * self.delay else "building"

    def env_status(self, env: dict) -> str:
        if env["_state"] != "active":
            return env["_state"]
        dep = self.deps.get(env["latest_deployment_id"])
        return "building" if dep and self.dep_status(dep) != "succeeded" else "running"

    def env_view(self, env: dict) -> dict:
        p = self.projects.get(env["project_id"])
        return {
            "id": env["id"],
            "project_id": env["project_id"],
            "name": env["branch"],
            "branch": env["branch"],
            "kind": "production" if p and env["branch"] == p["default_branch"] else "preview",
            "status": self.env_status(env),
            "url": env["url"],
            "cpu": ENV_CPU,
            "memory_mb": ENV_MEM,
            "commit_sha": env["commit_sha"],
            "latest_deployment_id": env["latest_deployment_id"],
            "database": dict(env["database"]) if env["database"] else None,
            "created_at": _iso(env["created_at"]),
            "updated_at": _iso(env["updated_at"]),
        }

    def dep_view(self, dep: dict) -> dict:
        st = self.dep_status(dep)
        return {
            "id": dep["id"],
            "environment_id": dep["environment_id"],
            "project_id": dep["project_id"],
            "branch": dep["branch"],
            "commit_sha": dep["commit_sha"],
            "commit_message": dep["message"],
            "trigger": dep["trigger"],
            "status": st,
            "created_at": _iso(dep["created_at"]),
            "finished_at": _iso(dep["created_at"] + self.delay) if st == "succeeded" else None,
        }

    def shared_services(self, p: dict) -> dict:
        return {
            svc: (p["_shared"] if p["services"].get(svc) else "disabled") for svc in ("postgres", "redis")
        }

    def project_view(self, p: dict) -> dict:
        return {
            "id": p["id"],
            "name": p["name"],
            "slug": p["slug"],
            "github_repo": p["github_repo"],
            "dockerfile": p["dockerfile"],
            "build_context": p["build_context"],
            "services": dict(p["services"]),
            "default_branch": p["default_branch"],
            "shared_services": self.shared_services(p),
            "created_at": _iso(p["created_at"]),
            "updated_at": _iso(p["updated_at"]),
        }

    def usage(self, user_id: str) -> dict:
        self.settle_minutes()
        projects = [p for p in self.projects.values() if p["user_id"] == user_id]
        nproj = 0 if self.on("quota_not_updated") else len(projects)
        pids = {p["id"] for p in projects}
        active = [e for e in self.envs.values() if e["project_id"] in pids and e["_state"] == "active"]
        if self.on("quota_not_updated"):
            active = []
        return {
            "projects": nproj,
            "total_cpu": round(len(active) * ENV_CPU, 2),
            "total_memory_mb": len(active) * ENV_MEM,
            "build_minutes_used": self.users[user_id]["_build_minutes"],
        }

    def settle_minutes(self):
        per = max(1, math.ceil(self.delay / 60.0))
        for d in self.deps.values():
            if not d["_billed"] and self.dep_status(d) == "succeeded":
                d["_billed"] = True
                u = self.users.get(d["user_id"])
                if u is not None:
                    u["_build_minutes"] += per

    def check_env_capacity(self, user_id: str, extra: int = 1):
        u = self.usage(user_id)
        if (
            u["total_cpu"] + extra * ENV_CPU > PLAN_LIMITS["max_cpu"]
            or u["total_memory_mb"] + extra * ENV_MEM > PLAN_LIMITS["max_memory_mb"]
        ):
            raise ApiError(
                403,
                "quota_exceeded",
                "CPU or memory quota exceeded",
                {"limits": dict(PLAN_LIMITS), "usage": u},
            )

    def deploy(self, env: dict, trigger: str, sha: str | None = None, message: str | None = None) -> dict:
        now = self.clock()
        p = self.projects[env["project_id"]]
        if sha:
            env["commit_sha"] = sha
        dep = {
            "id": _nid("dep"),
            "environment_id": env["id"],
            "project_id": env["project_id"],
            "user_id": p["user_id"],
            "branch": env["branch"],
            "commit_sha": env["commit_sha"],
            "message": message,
            "trigger": trigger,
            "created_at": now,
            "_seq": self.next_seq(),
            "_billed": False,
        }
        self.deps[dep["id"]] = dep
        env["latest_deployment_id"] = dep["id"]
        env["_state"] = "active"
        env["updated_at"] = now
        p["_shared"] = "running"
        return dep

    def new_env(
        self, p: dict, branch: str, trigger: str, sha: str | None = None, message=None
    ) -> tuple[dict, dict]:
        now = self.clock()
        env = {
            "id": _nid("env"),
            "project_id": p["id"],
            "branch": branch,
            "url": f"https://{_slug(branch) or 'branch'}--{p['slug']}.nexos.app",
            "commit_sha": sha or secrets.token_hex(20),
            "latest_deployment_id": None,
            "_state": "active",
            "database": (
                {
                    "engine": "postgres",
                    "name": f"{p['slug']}_{_slug(branch)}".replace("-", "_"),
                    "size_bytes": 8 * 1024 * 1024,
                    "reset_at": None,
                }
                if p["services"].get("postgres")
                else None
            ),
            "created_at": now,
            "updated_at": now,
            "_seq": self.next_seq(),
        }
        self.envs[env["id"]] = env
        return env, self.deploy(env, trigger, sha, message)

    def remove_env(self, env: dict):
        self.envs.pop(env["id"], None)
        for did in [d for d, dep in self.deps.items() if dep["environment_id"] == env["id"]]:
            self.settle_minutes()
            self.deps.pop(did)
        self.after_state_change(env["project_id"])

    def after_state_change(self, project_id: str):
        p = self.projects.get(project_id)
        if p is None:
            return
        active = any(e["project_id"] == project_id and e["_state"] == "active" for e in self.envs.values())
        p["_shared"] = "running" if active else "stopped"

    # -- lookups ---------------------------------------------------------
    def project(self, user: dict, pid: str, sub: bool = False) -> dict:
        p = self.projects.get(pid)
        if p is None or (
            p["user_id"] != user["id"]
            and not self.on("cross_account_project")
            and not (sub and self.on("cross_account_subresources"))
        ):
            raise ApiError(404, "not_found", "Project not found")
        return p

    def env(self, user: dict, eid: str) -> dict:
        e = self.envs.get(eid)
        if e is None:
            raise ApiError(404, "not_found", "Environment not found")
        self.project_or_404(user, e["project_id"], "Environment not found")
        return e

    def dep(self, user: dict, did: str) -> dict:
        d = self.deps.get(did)
        if d is None:
            raise ApiError(404, "not_found", "Deployment not found")
        self.project_or_404(user, d["project_id"], "Deployment not found")
        return d

    def project_or_404(self, user: dict, pid: str, msg: str):
        p = self.projects.get(pid)
        owner = p["user_id"] if p else self._orphans.get(pid)
        if (
            owner != user["id"]
            and not self.on("cross_account_subresources")
            and not self.on("cross_account_project")
        ):
            raise ApiError(404, "not_found", msg)


# ---------------------------------------------------------------- request helpers
async def _raw_body(request: Request) -> bytes:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise ApiError(413, "payload_too_large", "Request body exceeds 1 MiB")
    return raw


def _parse_json(raw: bytes, allow_empty: bool = False) -> dict:
    if allow_empty and not raw.strip():
        return {}
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ApiError(400, "invalid_json", "Request body must be valid UTF-8 JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "Request body must be a JSON object")
    return body


def _validation(fields: dict):
    if fields:
        raise ApiError(
            400, "validation_error", "Invalid request: " + ", ".join(sorted(fields)), {"fields": fields}
        )


def _check_project_fields(body: dict, partial: bool) -> dict:
    f = {}
    allowed = {"name", "github_repo", "dockerfile", "build_context", "services"}
    if partial:
        for k in body:
            if k not in allowed:
                f[k] = "unknown or read-only field"
    for k in ("name", "github_repo"):
        if k in body or not partial:
            v = body.get(k)
            if v is None:
                f[k] = "is required" if not partial or k in body else f.get(k)
            elif not isinstance(v, str):
                f[k] = "must be a string"
    name = body.get("name")
    if isinstance(name, str) and (not NAME_RE.match(name) or not _slug(name)):
        f["name"] = "must be 1-63 characters and contain letters or digits"
    repo = body.get("github_repo")
    if isinstance(repo, str) and not REPO_RE.match(repo):
        f["github_repo"] = "must look like owner/repo"
    for k in ("dockerfile", "build_context"):
        if k in body:
            v = body[k]
            if not isinstance(v, str) or not v or len(v) > 255 or "\x00" in v or ".." in v.split("/"):
                f[k] = "must be a relative path string"
    if "services" in body:
        s = body["services"]
        if not isinstance(s, dict):
            f["services"] = "must be an object"
        else:
            for k, v in s.items():
                if k not in ("postgres", "redis", "s3"):
                    f[f"services.{k}"] = "unknown service"
                elif not isinstance(v, bool):
                    f[f"services.{k}"] = "must be a boolean"
    return {k: v for k, v in f.items() if v}


# ---------------------------------------------------------------- handlers
async def h_github(b, request, m):
    state = secrets.token_urlsafe(16)
    b.oauth_states[state] = b.clock()
    cb = str(request.url.replace(path="/api/auth/github/callback", query=""))
    q = urlencode(
        {"client_id": "nexos-dev", "redirect_uri": cb, "scope": "read:user user:email repo", "state": state}
    )
    resp = RedirectResponse("https://github.com/login/oauth/authorize?" + q, status_code=302)
    resp.set_cookie("nexos_oauth_state", state, max_age=600, httponly=True, samesite="lax")
    return resp


async def h_callback(b, request, m):
    qp = request.query_params
    if qp.get("error"):
        raise ApiError(400, "oauth_denied", "GitHub authorisation was denied: " + qp.get("error")[:100])
    code, state = qp.get("code"), qp.get("state")
    if not code or not state:
        raise ApiError(400, "validation_error", "code and state are required")
    issued = b.oauth_states.get(state)
    if (
        issued is None
        or b.clock() - issued > 600
        or request.cookies.get("nexos_oauth_state") not in (None, state)
    ):
        raise ApiError(400, "invalid_state", "Unknown or expired OAuth state")
    login = b.github_codes.pop(code, None)
    if login is None:
        raise ApiError(502, "github_unreachable", "Could not exchange the code with GitHub")
    b.oauth_states.pop(state, None)
    user = b.user_for_login(login)
    resp = RedirectResponse("/", status_code=302)
    resp.set_cookie(
        "nexos_token", b.session_cookie(user["id"]), max_age=7 * 86400, httponly=True, samesite="lax"
    )
    resp.delete_cookie("nexos_oauth_state")
    return resp


async def h_me(b, request, m, user, how):
    if b.on("me_first_user"):
        user = next(iter(b.users.values()))
    v = {k: user[k] for k in ("id", "github_login", "name", "email", "avatar_url", "plan", "created_at")}
    v["auth_method"] = how
    return JSONResponse(v)


async def h_keys_create(b, request, m, user, how):
    body = _parse_json(await _raw_body(request), allow_empty=True)
    name = body.get("name", "API key")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        _validation({"name": "must be a non-empty string of at most 100 characters"})
    rec, plain = b.mint_key(user["id"], name)
    v = b.key_view(rec)
    v["key"] = plain
    return JSONResponse(v, status_code=201)


async def h_keys_list(b, request, m, user, how):
    recs = [r for r in b.keys.values() if r["user_id"] == user["id"] and r["revoked_at"] is None]
    recs.sort(key=lambda r: r["created_at"], reverse=True)
    return JSONResponse([b.key_view(r) for r in recs])


async def h_keys_delete(b, request, m, user, how):
    rec = b.keys.get(m[0])
    if rec is None or rec["user_id"] != user["id"] or rec["revoked_at"] is not None:
        raise ApiError(404, "not_found", "API key not found")
    rec["revoked_at"] = b.clock()
    return JSONResponse({"id": rec["id"], "revoked": True, "revoked_at": _iso(rec["revoked_at"])})


async def h_projects_list(b, request, m, user, how):
    ps = [p for p in b.projects.values() if p["user_id"] == user["id"]]
    ps.sort(key=lambda p: -p["_seq"])
    return JSONResponse([b.project_view(p) for p in ps])


async def h_projects_create(b, request, m, user, how):
    body = _parse_json(await _raw_body(request))
    _validation(_check_project_fields(body, partial=False))
    mine = [p for p in b.projects.values() if p["user_id"] == user["id"]]
    slug = _slug(body["name"])
    if any(p["slug"] == slug or p["name"] == body["name"] for p in mine):
        raise ApiError(409, "conflict", f"A project named '{body['name']}' already exists")
    if len(mine) >= PLAN_LIMITS["max_projects"] and not b.on("project_quota_unenforced"):
        raise ApiError(
            403,
            "quota_exceeded",
            "Project quota reached",
            {"limit": PLAN_LIMITS["max_projects"], "used": len(mine)},
        )
    b.check_env_capacity(user["id"])
    now = b.clock()
    services = {"postgres": False, "redis": False, "s3": False}
    services.update(body.get("services") or {})
    p = {
        "id": _nid("proj"),
        "user_id": user["id"],
        "name": body["name"],
        "slug": slug,
        "github_repo": body["github_repo"],
        "dockerfile": body.get("dockerfile", "Dockerfile"),
        "build_context": body.get("build_context", "."),
        "services": services,
        "default_branch": "main",
        "created_at": now,
        "updated_at": now,
        "_seq": b.next_seq(),
        "_shared": "running",
    }
    b.projects[p["id"]] = p
    b.new_env(p, "main", "create")
    return JSONResponse(b.project_view(p), status_code=201, headers={"Location": f"/api/projects/{p['id']}"})


async def h_project_get(b, request, m, user, how):
    return JSONResponse(b.project_view(b.project(user, m[0])))


async def h_project_patch(b, request, m, user, how):
    p = b.project(user, m[0])
    body = _parse_json(await _raw_body(request))
    _validation(_check_project_fields(body, partial=True))
    if "name" in body and any(
        q["id"] != p["id"]
        and q["user_id"] == p["user_id"]
        and (q["name"] == body["name"] or q["slug"] == _slug(body["name"]))
        for q in b.projects.values()
    ):
        raise ApiError(409, "conflict", f"A project named '{body['name']}' already exists")
    for k in ("name", "github_repo", "dockerfile", "build_context"):
        if k in body:
            p[k] = body[k]
    if "services" in body:
        p["services"].update(body["services"])
        for e in b.envs.values():
            if e["project_id"] == p["id"]:
                if p["services"]["postgres"] and e["database"] is None:
                    e["database"] = {
                        "engine": "postgres",
                        "name": f"{p['slug']}_{_slug(e['branch'])}".replace("-", "_"),
                        "size_bytes": 0,
                        "reset_at": None,
                    }
                elif not p["services"]["postgres"]:
                    e["database"] = None
    p["updated_at"] = b.clock()
    return JSONResponse(b.project_view(p))


async def h_project_delete(b, request, m, user, how):
    p = b.project(user, m[0])
    envs = [e for e in b.envs.values() if e["project_id"] == p["id"]]
    b.settle_minutes()
    del b.projects[p["id"]]
    b._orphans[p["id"]] = p["user_id"]
    if not b.on("project_delete_keeps_envs"):
        for e in envs:
            b.remove_env(e)
        for vid in [v for v, rec in b.vars.items() if rec["project_id"] == p["id"]]:
            del b.vars[vid]
    return JSONResponse({"id": p["id"], "deleted": True, "environments_deleted": len(envs)})


async def h_envs_list(b, request, m, user, how):
    p = b.project(user, m[0], sub=True)
    es = [e for e in b.envs.values() if e["project_id"] == p["id"]]
    es.sort(key=lambda e: -e["_seq"])
    return JSONResponse([b.env_view(e) for e in es])


async def h_env_get(b, request, m, user, how):
    return JSONResponse(b.env_view(b.env(user, m[0])))


async def h_env_action(b, request, m, user, how):
    action = m[1]
    if action == "restart" and b.on("restart_alias_missing"):
        raise ApiError(404, "not_found", "No such route")
    e = b.env(user, m[0])
    if e["project_id"] not in b.projects:
        raise ApiError(404, "not_found", "Environment not found")
    p = b.projects[e["project_id"]]
    st = b.env_status(e)
    if action in ("rebuild", "restart"):
        if e["_state"] == "paused":
            b.check_env_capacity(p["user_id"])
        dep = b.deploy(e, "rebuild")
        return JSONResponse({"environment": b.env_view(e), "deployment": b.dep_view(dep)}, status_code=202)
    if action == "pause":
        if st == "paused":
            raise ApiError(409, "conflict", "Environment is already paused")
        if not b.on("pause_keeps_running"):
            e["_state"] = "paused"
        e["updated_at"] = b.clock()
        if b.on("pause_stops_shared_early"):
            p["_shared"] = "stopped"
        elif not b.on("pause_keeps_shared_services"):
            b.after_state_change(p["id"])
        return JSONResponse(b.env_view(e))
    if action == "resume":
        if st != "paused":
            raise ApiError(409, "conflict", f"Environment is {st}, not paused")
        b.check_env_capacity(p["user_id"])
        e["_state"] = "active"
        e["updated_at"] = b.clock()
        if b.on("resume_rebuilds"):
            b.deploy(e, "rebuild")
        b.after_state_change(p["id"])
        return JSONResponse(b.env_view(e))
    if action == "reset":
        if e["database"] is None:
            raise ApiError(409, "conflict", "This project has no Postgres database to reset")
        if not b.on("reset_keeps_data"):
            e["database"]["size_bytes"] = 0
        e["database"]["reset_at"] = _iso(b.clock())
        e["updated_at"] = b.clock()
        return JSONResponse(b.env_view(e))
    # destroy
    v = b.env_view(e)
    if not b.on("destroy_keeps_environment"):
        b.remove_env(e)
    v["status"] = "destroyed"
    return JSONResponse(v)


async def h_dep_get(b, request, m, user, how):
    return JSONResponse(b.dep_view(b.dep(user, m[0])))


async def h_dep_logs(b, request, m, user, how):
    d = b.dep(user, m[0])
    st = b.dep_status(d)
    t0 = d["created_at"]
    steps = [
        (0.0, f"Cloning {d['branch']} at {d['commit_sha'][:7]}"),
        (0.1, "Building image from Dockerfile"),
        (0.3, "Step 1/4 : FROM base"),
        (0.5, "Step 2/4 : COPY . ."),
        (0.7, "Step 3/4 : RUN build"),
        (0.9, "Pushing image"),
        (1.0, "Deployment succeeded"),
    ]
    now = b.clock()
    lines = [{"ts": _iso(t0 + f * b.delay), "message": msg} for f, msg in steps if now >= t0 + f * b.delay]
    return JSONResponse({"deployment_id": d["id"], "status": st, "lines": lines})


def _var_view(b, v, clear=False):
    return {
        "id": v["id"],
        "project_id": v["project_id"],
        "key": v["key"],
        "value": v["value"] if clear else MASK,
        "created_at": _iso(v["created_at"]),
        "updated_at": _iso(v["updated_at"]),
    }


async def h_vars_list(b, request, m, user, how):
    p = b.project(user, m[0], sub=True)
    vs = sorted((v for v in b.vars.values() if v["project_id"] == p["id"]), key=lambda v: v["key"])
    return JSONResponse([_var_view(b, v, clear=b.on("env_values_clear")) for v in vs])


async def h_vars_put(b, request, m, user, how):
    p = b.project(user, m[0], sub=True)
    body = _parse_json(await _raw_body(request))
    f = {}
    key, value = body.get("key"), body.get("value")
    if not isinstance(key, str) or not VAR_RE.match(key):
        f["key"] = "required; letters, digits and _ (not starting with a digit), at most 256"
    if not isinstance(value, str) or len(value) > 65536:
        f["value"] = "required; a string of at most 65536 characters"
    _validation(f)
    now = b.clock()
    for v in b.vars.values():
        if v["project_id"] == p["id"] and v["key"] == key and not b.on("env_var_put_duplicates"):
            v["value"], v["updated_at"] = value, now
            return JSONResponse(_var_view(b, v))
    v = {
        "id": _nid("var"),
        "project_id": p["id"],
        "key": key,
        "value": value,
        "created_at": now,
        "updated_at": now,
    }
    b.vars[v["id"]] = v
    return JSONResponse(_var_view(b, v), status_code=201)


async def h_vars_delete(b, request, m, user, how):
    p = b.project(user, m[0], sub=True)
    v = b.vars.get(m[1])
    if v is None or v["project_id"] != p["id"]:
        raise ApiError(404, "not_found", "Environment variable not found")
    del b.vars[v["id"]]
    return Response(status_code=204)


def _node_view(b, n):
    status = "online" if b.clock() - n["joined_at"] >= b.delay else "joining"
    return {
        "id": n["id"],
        "hostname": n["hostname"],
        "status": status,
        "cpu_cores": n["cpu_cores"],
        "memory_mb": n["memory_mb"],
        "ip_address": n["ip_address"],
        "joined_at": _iso(n["joined_at"]),
        "last_heartbeat_at": _iso(b.clock()) if status == "online" else None,
    }


async def h_nodes_list(b, request, m, user, how):
    ns = sorted((n for n in b.nodes.values() if n["user_id"] == user["id"]), key=lambda n: -n["_seq"])
    if b.on("nodes_text_plain"):
        return Response(json.dumps([_node_view(b, n) for n in ns]), media_type="text/plain")
    return JSONResponse([_node_view(b, n) for n in ns])


async def h_join_token(b, request, m, user, how):
    _parse_json(await _raw_body(request), allow_empty=True)
    tok = "nxj_" + secrets.token_hex(20)
    exp = b.clock() + JOIN_TTL
    b.join_tokens[tok] = {"user_id": user["id"], "expires_at": exp}
    return JSONResponse(
        {
            "token": tok,
            "expires_at": _iso(exp),
            "command": f"curl -fsSL https://get.nexos.dev/agent | sh -s -- join --token {tok}",
        },
        status_code=201,
    )


async def h_node_join(b, request, m):
    body = _parse_json(await _raw_body(request))
    tok = body.get("token")
    rec = b.join_tokens.get(tok) if isinstance(tok, str) else None
    if rec is None or rec["expires_at"] <= b.clock():
        raise ApiError(401, "unauthorized", "Invalid or expired join token")
    f = {}
    host = body.get("hostname")
    if not isinstance(host, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}", host):
        f["hostname"] = "required hostname"
    cpu, mem = body.get("cpu_cores", 1), body.get("memory_mb", 1024)
    if not isinstance(cpu, int) or isinstance(cpu, bool) or not 1 <= cpu <= 1024:
        f["cpu_cores"] = "integer 1..1024"
    if not isinstance(mem, int) or isinstance(mem, bool) or not 128 <= mem <= 16 * 1024 * 1024:
        f["memory_mb"] = "integer 128..16777216"
    _validation(f)
    del b.join_tokens[tok]
    n = {
        "id": _nid("node"),
        "user_id": rec["user_id"],
        "hostname": host,
        "cpu_cores": cpu,
        "memory_mb": mem,
        "ip_address": request.client.host if request.client else None,
        "joined_at": b.clock(),
        "_seq": b.next_seq(),
    }
    b.nodes[n["id"]] = n
    return JSONResponse(_node_view(b, n), status_code=201)


def _node(b, user, nid):
    n = b.nodes.get(nid)
    if n is None or n["user_id"] != user["id"] or n.get("_removed"):
        raise ApiError(404, "not_found", "Node not found")
    return n


async def h_node_get(b, request, m, user, how):
    return JSONResponse(_node_view(b, _node(b, user, m[0])))


async def h_node_delete(b, request, m, user, how):
    n = _node(b, user, m[0])
    if not b.on("node_delete_noop"):
        del b.nodes[n["id"]]
    return JSONResponse({"id": n["id"], "removed": True})


async def h_quota(b, request, m, user, how):
    return JSONResponse({"plan": user["plan"], "usage": b.usage(user["id"]), "limits": dict(PLAN_LIMITS)})


async def h_webhook(b, request, m):
    raw = await _raw_body(request)
    if not b.on("webhook_signature_unchecked"):
        sig = request.headers.get("x-hub-signature-256", "")
        want = "sha256=" + hmac.new(b.webhook_secret.encode(), raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(sig.encode("utf-8", "replace"), want.encode()):
            raise ApiError(401, "invalid_signature", "Missing or invalid X-Hub-Signature-256")
    event = request.headers.get("x-github-event")
    if not event:
        raise ApiError(400, "validation_error", "X-GitHub-Event header is required")
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        try:
            payload = parse_qs(raw.decode("utf-8")).get("payload", [""])[0].encode()
        except UnicodeDecodeError:
            raise ApiError(400, "invalid_json", "Body must be UTF-8") from None
        body = _parse_json(payload)
    else:
        body = _parse_json(raw)
    if event not in ("push", "delete"):
        return JSONResponse({"event": event, "ignored": True})
    repo = body.get("repository")
    full = repo.get("full_name") if isinstance(repo, dict) else None
    if not isinstance(full, str):
        _validation({"repository.full_name": "required"})
    projects = [p for p in b.projects.values() if p["github_repo"].lower() == full.lower()]
    if event == "push":
        ref = body.get("ref")
        if not isinstance(ref, str):
            _validation({"ref": "required"})
        if not ref.startswith("refs/heads/"):
            return JSONResponse({"event": event, "ignored": True})
        branch = ref[len("refs/heads/") :]
        if not BRANCH_RE.match(branch):
            _validation({"ref": "invalid branch name"})
        if body.get("deleted") is True:
            return _destroy_branch(b, projects, branch, event)
        sha = body.get("after")
        sha = sha if isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{7,64}", sha) else secrets.token_hex(20)
        head = body.get("head_commit")
        msg = head.get("message") if isinstance(head, dict) and isinstance(head.get("message"), str) else None
        out = []
        for p in projects:
            env = next(
                (e for e in b.envs.values() if e["project_id"] == p["id"] and e["branch"] == branch), None
            )
            try:
                if env is None or env["_state"] != "active":
                    b.check_env_capacity(p["user_id"])
                if env is None:
                    env, dep = b.new_env(p, branch, "push", sha, msg)
                else:
                    dep = b.deploy(env, "push", sha, msg)
            except ApiError:
                continue
            out.append({"project_id": p["id"], "environment_id": env["id"], "deployment_id": dep["id"]})
        return JSONResponse({"event": event, "deployments": out}, status_code=202)
    if body.get("ref_type") != "branch":
        return JSONResponse({"event": event, "ignored": True})
    ref = body.get("ref")
    if not isinstance(ref, str):
        _validation({"ref": "required"})
    return _destroy_branch(b, projects, ref, event)


def _destroy_branch(b, projects, branch, event):
    gone = []
    for p in [] if b.on("webhook_delete_ignored") else projects:
        for e in [e for e in b.envs.values() if e["project_id"] == p["id"] and e["branch"] == branch]:
            gone.append(e["id"])
            b.remove_env(e)
    return JSONResponse({"event": event, "destroyed": gone}, status_code=202)


ID = r"([A-Za-z0-9_-]{1,100})"
ROUTES = [  # (regex, {method: handler}, needs auth)
    (r"/api/auth/github", {"GET": h_github}, False),
    (r"/api/auth/github/callback", {"GET": h_callback}, False),
    (r"/api/auth/me", {"GET": h_me}, True),
    (r"/api/auth/api-keys", {"GET": h_keys_list, "POST": h_keys_create}, True),
    (rf"/api/auth/api-keys/{ID}", {"DELETE": h_keys_delete}, True),
    (r"/api/projects", {"GET": h_projects_list, "POST": h_projects_create}, True),
    (
        rf"/api/projects/{ID}",
        {"GET": h_project_get, "PATCH": h_project_patch, "DELETE": h_project_delete},
        True,
    ),
    (rf"/api/projects/{ID}/environments", {"GET": h_envs_list}, True),
    (rf"/api/projects/{ID}/env-vars", {"GET": h_vars_list, "PUT": h_vars_put}, True),
    (rf"/api/projects/{ID}/env-vars/{ID}", {"DELETE": h_vars_delete}, True),
    (rf"/api/environments/{ID}", {"GET": h_env_get}, True),
    (rf"/api/environments/{ID}/(rebuild|restart|pause|resume|reset|destroy)", {"POST": h_env_action}, True),
    (rf"/api/deployments/{ID}", {"GET": h_dep_get}, True),
    (rf"/api/deployments/{ID}/logs", {"GET": h_dep_logs}, True),
    (r"/api/nodes", {"GET": h_nodes_list}, True),
    (r"/api/nodes/join-token", {"POST": h_join_token}, True),
    (r"/api/nodes/join", {"POST": h_node_join}, False),
    (rf"/api/nodes/{ID}", {"GET": h_node_get, "DELETE": h_node_delete}, True),
    (r"/api/quota", {"GET": h_quota}, True),
    (r"/api/webhooks/github", {"POST": h_webhook}, False),
]
COMPILED = [(re.compile(p + "/?"), ms, auth) for p, ms, auth in ROUTES]


async def _dispatch(b: Backend, request: Request) -> Response:
    path = request.url.path
    method = "GET" if request.method == "HEAD" else request.method
    matches = [(rx.fullmatch(path), ms, auth) for rx, ms, auth in COMPILED]
    matches = [(mm, ms, auth) for mm, ms, auth in matches if mm]
    if not matches:
        raise ApiError(404, "not_found", "No such route")
    for mm, ms, auth in matches:
        h = ms.get(method)
        if h is None:
            continue
        if auth:
            user, how = b.authenticate(request)
            return await h(b, request, mm.groups(), user, how)
        return await h(b, request, mm.groups())
    allow = sorted({k for _, ms, _ in matches for k in ms})
    raise ApiError(
        405, "method_not_allowed", f"{request.method} not allowed", headers={"Allow": ", ".join(allow)}
    )


def make_app(
    window: float = 60.0,
    delay: float = 5.0,
    defect: str | None = None,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    backend = Backend(window, delay, defect, clock)

    async def endpoint(request: Request) -> Response:
        try:
            with backend.lock:
                return await _dispatch(backend, request)
        except ApiError as e:
            body = {"error": e.code, "message": e.message}
            if e.details is not None:
                body["details"] = e.details
            return JSONResponse(body, status_code=e.status, headers=e.headers)
        except Exception:  # never a 500 for client input
            return JSONResponse(
                {"error": "bad_request", "message": "The request could not be processed"}, status_code=400
            )

    app = Starlette(
        routes=[
            Route(
                "/{path:path}", endpoint, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
            )
        ]
    )
    app.state.backend = backend
    return app
