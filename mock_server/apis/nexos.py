"""Nexos behaviour the spec cannot declare: GitHub OAuth, API keys, projects, the GitHub
webhook that drives per-branch environments, the rebuild's deployment (the environment actions
themselves are declared: `x-action`), build logs, env vars, node joining and the quota.

Documented decisions (also in specs/nexos.yaml):
- GitHub OAuth is mocked end to end on loopback: `GET /auth/github` skips GitHub's consent
  screen and redirects straight to our own callback with a one-time `code` (10 minutes of the
  engine clock) and its `state`. `?login=` picks the GitHub user (created in account `default`
  when unknown); without it the first Nexos user, else a default `octocat`. Any callback
  attempt consumes the code, so a wrong `state` burns it. The callback sets the session JWT in
  `nexos_session` and redirects to `next` (a same-site path, default `/`).
- API keys are `nxs_[test_]<key id>_<secret>`: the non-secret key id finds the record, then
  one `bcrypt.checkpw` verifies it (inputs over 72 bytes are refused before bcrypt). Its
  principal is the key's account and mode, subject the key id, user the key's creator.
- `/auth/me` for a sandbox token (no user behind it) returns a synthetic user for the account:
  id = the token id, login = the account name, no name or email.
- Every account is on plan `pro` with the document's example limits.
- Usage: projects = projects of the account; CPU/memory = what running environments use
  (0.5 CPU / 1024 MB each, plus each enabled shared service once per project with a running
  environment); nodes are capacity the customer brings and are not usage. Build minutes =
  each deployment's time in `building`, rounded up to whole minutes per deployment.
- Deployments move queued → building → succeeded, environments building → running, by the
  lifecycles declared in the spec (so `--async-delay` applies); build logs are derived from the
  deployment's snapshot of the project (repository, branch, commit, Dockerfile, context,
  services, env var keys) and grow as the build progresses on the engine clock.
- Node join tokens live one hour, are stored as SHA-256 digests and are single-use.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import bcrypt

from contract import Action, Contract

from ..calls import Call, Reply
from ..clock import iso
from ..errors import ApiError, Problem, validation
from ..resources import Resources
from ..sessions import SESSION_SECONDS, issue, principal_for, verify
from ..store import Record
from ..tokens import Principal
from ..users import TABLE as USERS
from ..users import find_user, save_user

if TYPE_CHECKING:
    from ..services import Services

OAUTH_CODE_SECONDS = 600
JOIN_TOKEN_SECONDS = 3600
BCRYPT_ROUNDS = 10
MAX_KEY_BYTES = 72  # bcrypt's limit; longer input is refused before hashing
DEFAULT_GITHUB_USER = {"login": "octocat", "name": "The Octocat", "email": "octocat@github.com"}
PLANS: dict[str, dict[str, int]] = {
    "pro": {"max_projects": 25, "max_cpu": 64, "max_memory_mb": 131072, "build_minutes": 5000},
}
ACCOUNT_PLAN = "pro"
ENV_ALLOCATION = (0.5, 1024)  # CPU cores, memory MB of one running environment's containers
SERVICE_ALLOCATION = {"postgres": (0.5, 1024), "redis": (0.25, 256), "s3": (0.0, 0)}
ZERO_SHA = "0" * 40

_KEY = re.compile(r"nxs_(test_)?([a-z0-9]{12})_([A-Za-z0-9]{32})")
_JOIN = re.compile(r"njt_[A-Za-z0-9]{32}")


# -- helpers ----------------------------------------------------------------------------------
def _table(call: Call, name: str) -> str:
    return f"{call.spec.name}:{name}"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _owner_of(record: Record) -> dict[str, str]:
    return {"_account": record["_account"], "_mode": record["_mode"]}


def _slug(text: str, limit: int = 63) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-")


def _phases(r: Resources) -> tuple[float, float]:
    """Seconds a deployment spends queued and building: its declared lifecycle, as applied."""
    times = r.lifecycles.durations("deployments")
    return times.get("queued", 0.0), times.get("building", 0.0)


# -- authentication ---------------------------------------------------------------------------
def authenticate(sandbox: Services, spec: Contract, token: str) -> Principal | None:
    """Session JWTs (cookie or bearer) and `nxs_` API keys; the token book is tried first."""
    m = _KEY.fullmatch(token) if len(token.encode()) <= MAX_KEY_BYTES else None
    if m is None:
        user = verify(sandbox, spec.name, token)
        return principal_for(sandbox, spec.name, user) if user else None
    table = f"{spec.name}:api_keys"
    record = sandbox.store.get(table, f"key_{m.group(2)}")
    mode = "test" if m.group(1) else "live"
    if record is None or record.get("_mode") != mode or "_hash" not in record:
        return None
    if not bcrypt.checkpw(token.encode(), record["_hash"].encode()):
        return None
    now = sandbox.clock.isoformat()
    if record.get("last_used_at") != now:  # at most one write per key per second
        sandbox.store.update(table, record["id"], {"last_used_at": now})
    return Principal(
        api=spec.name,
        account=record["_account"],
        mode=mode,
        scopes=frozenset(spec.scopes),
        subject=record["id"],
        user_id=record.get("_user_id"),
    )


# -- GitHub OAuth ----------------------------------------------------------------------------
def _github_user(call: Call, login: str | None) -> Record:
    store, api = call.sandbox.store, call.spec.name
    with store.transaction():
        if login is not None:
            user = find_user(store, api, login=login)
            if user is None:
                user = save_user(
                    store,
                    call.sandbox.ids,
                    {
                        "api": api,
                        "login": login,
                        "name": login,
                        "email": f"{login.lower()}@users.noreply.github.com",
                        "avatar_url": f"https://avatars.githubusercontent.com/{login}",
                    },
                )
            return user
        users = [u for u in store.find(USERS, api=api) if u.get("login")]
        if users:
            return users[0]
        return find_user(store, api, login=DEFAULT_GITHUB_USER["login"]) or save_user(
            store,
            call.sandbox.ids,
            {
                "api": api,
                **DEFAULT_GITHUB_USER,
                "avatar_url": "https://avatars.githubusercontent.com/u/583231?v=4",
            },
        )


def github_login(call: Call) -> Reply:
    user = _github_user(call, call.params.get("login"))
    ids = call.sandbox.ids
    code, state = ids.short("", 20), ids.short("", 16)
    call.sandbox.store.replace(
        _table(call, "_oauth_codes"),
        {
            "id": _digest(code),
            "state": state,
            "user_id": user["id"],
            "next": call.params.get("next", "/"),
            "expires": call.sandbox.clock.now() + OAUTH_CODE_SECONDS,
        },
    )
    location = f"{call.base_url}/auth/github/callback?{urlencode({'code': code, 'state': state})}"
    return Reply(302, kind="empty", headers={"Location": location, "Cache-Control": "no-store"})


def github_callback(call: Call) -> Reply:
    store, table = call.sandbox.store, _table(call, "_oauth_codes")
    with store.transaction():
        grant = store.get(table, _digest(call.params["code"]))
        if grant is not None:
            store.delete(table, grant["id"])  # one-time, whatever the outcome
    if (
        grant is None
        or grant["expires"] <= call.sandbox.clock.now()
        or not hmac.compare_digest(grant["state"].encode(), call.params["state"].encode())
    ):
        raise ApiError(
            401, "UNAUTHORIZED", "OAuth code is invalid, expired or already used, or state does not match"
        )
    user = store.get(USERS, grant["user_id"])
    if user is None or user["api"] != call.spec.name:
        raise ApiError(401, "UNAUTHORIZED", "The GitHub user no longer exists")
    token, _ = issue(call.sandbox, call.spec.name, user, SESSION_SECONDS)
    cookie = f"{call.spec.auth_cookie}={token}; HttpOnly; Path=/; SameSite=Lax; Max-Age={SESSION_SECONDS}"
    if call.base_url.startswith("https://"):
        cookie += "; Secure"
    return Reply(
        302,
        kind="empty",
        headers={"Location": grant["next"], "Set-Cookie": cookie, "Cache-Control": "no-store"},
    )


def me(call: Call) -> Reply:
    p = call.principal
    assert p is not None
    user = call.sandbox.store.get(USERS, p.user_id) if p.user_id else None
    if user is None or user["api"] != call.spec.name:
        return Reply(
            200,
            {
                "id": p.subject,
                "login": p.account,
                "name": None,
                "email": None,
                "avatar_url": f"https://github.com/identicons/{_slug(p.account) or 'nexos'}.png",
            },
        )
    login = user.get("login") or (user.get("email") or user["id"]).split("@")[0]
    return Reply(
        200,
        {
            "id": user["id"],
            "login": login,
            "name": user.get("name"),
            "email": user.get("email"),
            "avatar_url": user.get("avatar_url") or f"https://avatars.githubusercontent.com/{login}",
        },
    )


# -- API keys ---------------------------------------------------------------------------------
def create_api_key(call: Call) -> Reply:
    r, store = call.resources, call.sandbox.store
    prefix = call.spec.token_prefixes[call.owner["_mode"]]
    user_id = call.principal.user_id if call.principal else None
    with store.transaction():
        record = r.create(
            "api_keys", call.owner, {"name": call.body["name"]}, extra={"_user_id": user_id, "masked_key": ""}
        )
        key = f"{prefix}{record['id'].removeprefix('key_')}_{call.sandbox.ids.secret('', 32)}"
        hashed = bcrypt.hashpw(key.encode(), bcrypt.gensalt(rounds=BCRYPT_ROUNDS)).decode()
        masked = f"{key[: len(prefix) + 4]}…{key[-4:]}"
        record = (
            store.update(r.table("api_keys"), record["id"], {"_hash": hashed, "masked_key": masked}) or record
        )
    return Reply(201, {**r.public("api_keys", record), "key": key})


# -- projects ---------------------------------------------------------------------------------
def create_project(call: Call) -> Reply:
    r, body = call.resources, call.body
    limit = PLANS[ACCOUNT_PLAN]["max_projects"]
    slug = _slug(body["name"]) or "project"
    fields = {k: body[k] for k in ("name", "github_repo", "dockerfile", "build_context") if k in body}
    fields["services"] = {"postgres": False, "redis": False, "s3": False, **body.get("services", {})}
    fields["slug"] = slug
    secret = call.sandbox.ids.secret("whsec_", 32)
    with call.sandbox.store.transaction():
        if len(r.list("projects", call.owner)) >= limit:
            raise ApiError(
                422,
                "QUOTA_EXCEEDED",
                f"Project limit reached ({limit} of {limit} on plan {ACCOUNT_PLAN})",
                [Problem("max_projects", f"limit {limit} reached")],
            )
        record = r.create("projects", call.owner, fields, extra={"_webhook_secret": secret})
    return Reply(201, {**r.public("projects", record), "webhook_secret": secret})


# -- environments and deployments -------------------------------------------------------------
def _deploy(
    call: Call, owner: dict[str, str], project: Record, env: Record, sha: str, message: str, trigger: str
) -> tuple[Record, Record]:
    """Queue a deployment of `sha`, snapshotting what the build will use; (deployment, environment)
    as of now (the environment `building`, whatever a zero `--async-delay` makes of it on read)."""
    r = call.resources
    env_keys = [v["key"] for v in r.list("env_vars", owner, project_id=project["id"])]
    build = {
        "repo": project["github_repo"],
        "branch": env["branch"],
        "message": message,
        "trigger": trigger,
        "dockerfile": project["dockerfile"],
        "build_context": project["build_context"],
        "services": [s for s, on in project["services"].items() if on],
        "env_keys": env_keys,
        "slug": project["slug"],
        "url": env["url"],
    }
    dep = r.create(
        "deployments",
        owner,
        {"commit_sha": sha},
        extra={
            "environment_id": env["id"],
            "project_id": project["id"],
            "_build": build,
            "_created_ts": call.sandbox.clock.now(),
        },
    )
    r.update("environments", owner, env["id"], {"status": "building", "current_deployment_id": dep["id"]})
    env = (
        call.sandbox.store.update(
            r.table("environments"), env["id"], {"_head_sha": sha, "_head_message": message}
        )
        or env
    )
    return dep, env


def redeploy(call: Call, env: Record, action: Action) -> Record:
    """`x-action` effect of rebuild (and its alias): a deployment of the branch's latest commit."""
    sha = env.get("_head_sha")
    if not sha:
        raise ApiError(409, "CONFLICT", f"Environment {env['id']} has no commit to build")
    project = call.resources.get("projects", call.owner, env["project_id"])
    _, env = _deploy(call, call.owner, project, env, sha, env.get("_head_message", ""), action.name)
    return env


def deployment_logs(call: Call) -> Reply:
    r = call.resources
    dep = r.get("deployments", call.owner, call.params["id"])
    b = dep.get("_build") or {}
    queued_s, build_s = _phases(r)
    t0 = float(dep.get("_created_ts", call.sandbox.clock.now()))
    t1, t2 = t0 + queued_s, t0 + queued_s + build_s
    sha, short = dep["commit_sha"], dep["commit_sha"][:7]
    title = (b.get("message") or "").splitlines()[0] if b.get("message") else "(no commit message)"
    image = f"registry.nexos.dev/{b.get('slug', 'app')}:{short}"
    lines: list[tuple[float, str]] = [
        (
            t0,
            f"Deployment {dep['id']} queued ({b.get('trigger', 'push')}) "
            f"for {b.get('repo')}@{b.get('branch')}",
        ),
        (t0, f"Commit {short}: {title}"),
    ]
    if dep["status"] in ("building", "succeeded", "failed"):
        keys = b.get("env_keys") or []
        services = b.get("services") or []
        lines += [
            (t1, f"Cloning https://github.com/{b.get('repo')}.git (branch {b.get('branch')})"),
            (t1, f"HEAD is now at {short} {title}"),
            (t1, f"docker build -f {b.get('dockerfile')} -t {image} {b.get('build_context')}"),
            (t1, f"Injecting {len(keys)} environment variable(s)" + (f": {', '.join(keys)}" if keys else "")),
            (t1, "Services: " + (", ".join(services) if services else "none requested")),
        ]
    if dep["status"] == "succeeded":
        lines += [
            (t2, f"Successfully built {image} ({sha})"),
            (t2, f"Deployment succeeded in {round(build_s)}s; live at {b.get('url')}"),
        ]
    return Reply(
        200,
        {"deployment_id": dep["id"], "lines": [{"timestamp": iso(ts), "message": msg} for ts, msg in lines]},
    )


# -- nodes ------------------------------------------------------------------------------------
def node_join_token(call: Call) -> Reply:
    token = call.sandbox.ids.secret("njt_", 32)
    expires = call.sandbox.clock.now() + JOIN_TOKEN_SECONDS
    digest = _digest(token)
    call.sandbox.store.replace(
        _table(call, "_join_tokens"),
        {"id": f"njt_{digest[:16]}", "hash": digest, "expires": expires, **call.owner},
    )
    return Reply(201, {"token": token, "expires_at": iso(expires)})


def register_node(call: Call) -> Reply:
    token, store, table = call.body["token"], call.sandbox.store, _table(call, "_join_tokens")
    digest = _digest(token)
    with store.transaction():
        grant = store.get(table, f"njt_{digest[:16]}") if _JOIN.fullmatch(token) else None
        if grant is not None:
            store.delete(table, grant["id"])  # single use
    if (
        grant is None
        or not hmac.compare_digest(grant["hash"], digest)
        or grant["expires"] <= call.sandbox.clock.now()
    ):
        raise ApiError(401, "UNAUTHORIZED", "Join token is invalid or expired")
    fields = {k: call.body[k] for k in ("name", "cpu", "memory_mb")}
    node = call.resources.create("nodes", _owner_of(grant), fields)
    return Reply(201, call.resources.public("nodes", node))


# -- quota ------------------------------------------------------------------------------------
def quota(call: Call) -> Reply:
    r, now = call.resources, call.sandbox.clock.now()
    projects = r.list("projects", call.owner)
    cpu, memory = 0.0, 0
    for project in projects:
        running = [
            e
            for e in r.list("environments", call.owner, project_id=project["id"])
            if e["status"] == "running"
        ]
        if not running:
            continue
        cpu += ENV_ALLOCATION[0] * len(running)
        memory += ENV_ALLOCATION[1] * len(running)
        for service, on in project["services"].items():
            if on:
                cpu += SERVICE_ALLOCATION[service][0]
                memory += SERVICE_ALLOCATION[service][1]
    queued_s, build_s = _phases(r)
    minutes = 0
    for dep in r.list("deployments", call.owner):
        start = float(dep.get("_created_ts", now)) + queued_s
        if dep["status"] == "succeeded":
            minutes += math.ceil(build_s / 60)
        elif dep["status"] == "building":
            minutes += math.ceil(max(0.0, now - start) / 60)
    usage = {
        "projects": len(projects),
        "total_cpu": round(cpu, 2),
        "total_memory_mb": memory,
        "build_minutes_used": minutes,
    }
    return Reply(200, {"plan": ACCOUNT_PLAN, "usage": usage, "limits": dict(PLANS[ACCOUNT_PLAN])})


# -- GitHub webhook ---------------------------------------------------------------------------
def _verified_project(call: Call, full_name: str) -> Record:
    """The project whose webhook secret signed this body (any account of this API)."""
    table = call.resources.table("projects")
    candidates = [p for p in call.sandbox.store.find(table) if p["github_repo"].lower() == full_name.lower()]
    if not candidates:
        raise ApiError(404, "NOT_FOUND", f"No project for repository {full_name}")
    given = str(call.params.get("X-Hub-Signature-256") or "").encode()
    for project in candidates:
        expected = (
            "sha256="
            + hmac.new(project["_webhook_secret"].encode(), call.raw_body, hashlib.sha256).hexdigest()
        )
        if given and hmac.compare_digest(given, expected.encode()):
            return project
    raise ApiError(401, "INVALID_SIGNATURE", "X-Hub-Signature-256 does not match the payload")


def _branch_env(r: Resources, owner: dict[str, str], project: Record, branch: str) -> Record | None:
    live = [
        e
        for e in r.list("environments", owner, project_id=project["id"], branch=branch)
        if e["status"] != "destroyed"
    ]
    return live[-1] if live else None


def github_webhook(call: Call) -> Reply:
    r, body, event = call.resources, call.body, call.params["X-GitHub-Event"]
    project = _verified_project(call, body["repository"]["full_name"])
    owner = _owner_of(project)
    result: dict[str, Any] = {
        "accepted": False,
        "event": event,
        "delivery": call.params["X-GitHub-Delivery"],
        "environment_id": None,
        "deployment_id": None,
    }
    if event == "ping":
        return Reply(202, result)
    ref = body.get("ref")
    if not isinstance(ref, str) or not ref:
        raise validation(f"A {event} event needs ref", Problem("ref", "is required"))
    with call.sandbox.store.transaction():
        if event == "delete" or body.get("deleted") is True or body.get("after") == ZERO_SHA:
            if event == "delete":
                if body.get("ref_type") not in ("branch", "tag"):
                    raise validation("A delete event needs ref_type", Problem("ref_type", "is required"))
                if body["ref_type"] == "tag":
                    return Reply(202, result)
                branch = ref
            elif ref.startswith("refs/heads/"):
                branch = ref.removeprefix("refs/heads/")
            else:
                return Reply(202, result)
            result["accepted"] = True
            env = _branch_env(r, owner, project, branch)
            if env is not None:
                r.update("environments", owner, env["id"], {"status": "destroyed"})
                result["environment_id"] = env["id"]
            return Reply(202, result)
        if not ref.startswith("refs/heads/"):
            return Reply(202, result)  # tag pushes build nothing
        branch = ref.removeprefix("refs/heads/")
        head = body.get("head_commit") if isinstance(body.get("head_commit"), dict) else {}
        sha = body.get("after") or head.get("id")
        if not sha:
            raise validation("A push event needs after", Problem("after", "is required"))
        env = _branch_env(r, owner, project, branch)
        if env is None:
            url = "https://" + _slug(branch + "-" + project["slug"]) + ".nexos.dev"
            env = r.create(
                "environments", owner, {}, extra={"project_id": project["id"], "branch": branch, "url": url}
            )
        dep, env = _deploy(call, owner, project, env, sha, str(head.get("message") or ""), "push")
    result.update(accepted=True, environment_id=env["id"], deployment_id=dep["id"])
    return Reply(202, result)


__all__ = [
    "authenticate",
    "create_api_key",
    "create_project",
    "deployment_logs",
    "github_callback",
    "github_login",
    "github_webhook",
    "me",
    "node_join_token",
    "quota",
    "redeploy",
    "register_node",
]
