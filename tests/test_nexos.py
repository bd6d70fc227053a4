"""Nexos over HTTP, as a client sees it: GitHub OAuth, API keys, projects, the GitHub webhook,
environment actions, build logs, env vars, nodes and the quota."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from mock_server.users import save_user
from tests.conftest import Harness
from tests.sandbox_client import SyncASGIClient

BASE = "http://sandbox.test/nexos/api"
SHA1 = "9fceb02d0ae598e95dc970b74767f19372d61af8"
SHA2 = "1234567890abcdef1234567890abcdef12345678"
PROJECT = {
    "name": "my-app",
    "github_repo": "octocat/my-app",
    "dockerfile": "docker/Dockerfile.prod",
    "build_context": "./app",
    "services": {"postgres": True, "redis": True},
}


# -- helpers ----------------------------------------------------------------------------------
def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


DELIVERY = "72d3162e-cc78-11e3-81ab-4c9367dc0958"


def hook(h: Harness, event: str, payload: dict[str, Any], secret: str | None,
         delivery: str = DELIVERY, signature: str | None = None) -> httpx.Response:
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "X-GitHub-Event": event, "X-GitHub-Delivery": delivery}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    elif secret is not None:
        headers["X-Hub-Signature-256"] = sign(secret, body)
    return h.client("nexos").post("/webhooks/github", content=body, headers=headers)


def push(h: Harness, secret: str, branch: str = "feature-login", sha: str = SHA1,
         message: str = "Add login page", repo: str = "octocat/my-app") -> httpx.Response:
    return hook(h, "push", {"ref": f"refs/heads/{branch}", "after": sha, "repository": {"full_name": repo},
                            "head_commit": {"id": sha, "message": message}}, secret)


def make_project(c: SyncASGIClient, **overrides: Any) -> dict[str, Any]:
    r = c.post("/projects", json={**PROJECT, **overrides})
    assert r.status_code == 201, r.text
    return r.json()


def login(h: Harness, **query: str) -> SyncASGIClient:
    """A browser: follows the OAuth redirects and keeps the session cookie."""
    browser = h.client("nexos")
    start = browser.get("/auth/github", params=query)
    assert start.status_code == 302, start.text
    done = browser.get(start.headers["location"])
    assert done.status_code == 302, done.text
    return browser


def oauth_grant(h: Harness, **query: str) -> tuple[SyncASGIClient, str, dict[str, str]]:
    browser = h.client("nexos")
    r = browser.get("/auth/github", params=query)
    assert r.status_code == 302
    loc = r.headers["location"]
    qs = {k: v[0] for k, v in parse_qs(urlsplit(loc).query).items()}
    return browser, loc, qs


# -- GitHub OAuth -----------------------------------------------------------------------------
def test_github_login_redirects_to_the_local_callback_which_sets_the_session_cookie(harness: Harness) -> None:
    browser, loc, qs = oauth_grant(harness)
    assert loc.startswith(f"{BASE}/auth/github/callback?")
    assert set(qs) == {"code", "state"}

    r = browser.get(loc)
    assert r.status_code == 302
    assert r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("nexos_session=ey")
    for attr in ("HttpOnly", "Path=/", "SameSite=Lax", "Max-Age=86400"):
        assert attr in cookie
    assert "Secure" not in cookie  # served over plain http here

    me = browser.get("/auth/me")
    assert me.status_code == 200
    assert me.json()["login"] == "octocat"
    assert me.json()["id"].startswith("usr_")

    # the JWT works as a bearer token too, and the session user lives in account `default`
    jwt_token = cookie.split(";")[0].split("=", 1)[1]
    assert harness.client("nexos", jwt_token).get("/auth/me").json()["login"] == "octocat"
    project = make_project(harness.api("nexos"))
    assert [p["id"] for p in browser.get("/projects").json()] == [project["id"]]


def test_oauth_code_is_single_use_state_checked_and_expires(harness: Harness) -> None:
    browser, loc, qs = oauth_grant(harness)
    assert browser.get(loc).status_code == 302
    again = browser.get(loc)
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "UNAUTHORIZED"

    # a wrong state is refused, and burns the code
    browser, loc, qs = oauth_grant(harness)
    r = browser.get("/auth/github/callback", params={"code": qs["code"], "state": "forged-state"})
    assert r.status_code == 401
    assert "set-cookie" not in r.headers
    assert browser.get(loc).status_code == 401

    # expired after 10 minutes of the engine clock
    browser, loc, _ = oauth_grant(harness)
    harness.clock.advance(601)
    assert browser.get(loc).status_code == 401
    assert browser.get("/auth/me").status_code == 401

    assert browser.get("/auth/github/callback", params={"code": "nope", "state": "x"}).status_code == 401


def test_login_picks_the_seeded_github_user_and_sessions_are_tenant_scoped(harness: Harness) -> None:
    sb = harness.sandbox
    save_user(sb.store, sb.ids, {"api": "nexos", "login": "alice", "name": "Alice", "account": "acme",
                                 "email": "alice@example.com"})
    alice = login(harness, login="alice")
    me = alice.get("/auth/me").json()
    assert me["login"] == "alice"
    assert me["name"] == "Alice"
    assert me["email"] == "alice@example.com"
    assert me["avatar_url"].startswith("https://")

    mine = make_project(alice)
    other = harness.api("nexos")  # account `default`
    assert other.get(f"/projects/{mine['id']}").status_code == 404
    assert other.get("/projects").json() == []
    assert [p["id"] for p in alice.get("/projects").json()] == [mine["id"]]

    # without `login`, the first seeded user signs in
    assert login(harness).get("/auth/me").json()["login"] == "alice"
    # an unknown login becomes a new GitHub user
    assert login(harness, login="hubot").get("/auth/me").json()["login"] == "hubot"


def test_callback_redirects_to_a_safe_next_path_only(harness: Harness) -> None:
    browser, loc, _ = oauth_grant(harness, next="/projects?tab=all")
    assert browser.get(loc).headers["location"] == "/projects?tab=all"
    for bad in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        r = harness.client("nexos").get("/auth/github", params={"next": bad})
        assert r.status_code == 400, bad
        assert r.json()["error"]["code"] == "VALIDATION_ERROR"


def test_session_expires_after_a_day_and_garbage_is_refused(harness: Harness) -> None:
    browser = login(harness)
    assert browser.get("/auth/me").status_code == 200
    harness.clock.advance(24 * 3600 + 1)
    assert browser.get("/auth/me").status_code == 401
    assert harness.client("nexos").get("/auth/me").status_code == 401
    forged = harness.client("nexos", cookies={"nexos_session": "a.b.c"})
    assert forged.get("/auth/me").status_code == 401


def test_me_with_a_sandbox_token_is_a_synthetic_account_user(harness: Harness) -> None:
    r = harness.api("nexos", account="acme").get("/auth/me")
    assert r.status_code == 200
    body = r.json()
    assert body["id"].startswith("tok_")
    assert body["login"] == "acme"
    assert body["name"] is None
    assert body["email"] is None


# -- API keys ---------------------------------------------------------------------------------
def test_api_key_is_shown_once_listed_masked_and_acts_as_its_creator(harness: Harness) -> None:
    browser = login(harness)
    r = browser.post("/auth/api-keys", json={"name": "ci-bot"})
    assert r.status_code == 201
    created = r.json()
    key = created["key"]
    assert key.startswith("nxs_test_")
    assert created["masked_key"] == f"{key[:13]}…{key[-4:]}"
    assert created["last_used_at"] is None

    listed = browser.get("/auth/api-keys")
    assert listed.status_code == 200
    assert key not in listed.text
    assert listed.json() == [{k: v for k, v in created.items() if k != "key"}]

    bot = harness.client("nexos", key)
    assert bot.get("/auth/me").json()["login"] == "octocat"
    project = make_project(bot)
    assert browser.get(f"/projects/{project['id']}").status_code == 200
    (row,) = browser.get("/auth/api-keys").json()
    assert row["last_used_at"] == harness.clock.isoformat()

    # stored as a bcrypt hash, never in plaintext
    stored = harness.sandbox.store.get("nexos:api_keys", created["id"])
    assert stored is not None
    assert key not in json.dumps(stored)
    assert stored["_hash"].startswith("$2")

    assert browser.delete(f"/auth/api-keys/{created['id']}").status_code == 204
    revoked = bot.get("/projects")
    assert revoked.status_code == 401
    assert revoked.json()["error"]["code"] == "UNAUTHORIZED"
    assert browser.get("/auth/api-keys").json() == []
    assert browser.delete(f"/auth/api-keys/{created['id']}").status_code == 404


def test_forged_tampered_and_over_long_keys_are_401_not_500(harness: Harness) -> None:
    c = harness.api("nexos")
    key = c.post("/auth/api-keys", json={"name": "k"}).json()["key"]
    assert harness.client("nexos", key).get("/projects").status_code == 200
    for bad in (key[:-1] + ("A" if key[-1] != "A" else "B"),  # wrong secret
                key + "x" * 80,  # longer than bcrypt's 72 bytes
                "nxs_test_aaaaaaaaaaaa_" + "b" * 32,  # unknown key id
                key.replace("nxs_test_", "nxs_"),  # right secret, wrong mode
                "nxs_" + "z" * 300):
        r = harness.client("nexos", bad).get("/projects")
        assert r.status_code == 401, bad


def test_api_keys_are_per_account_and_mode(harness: Harness) -> None:
    live = harness.api("nexos", mode="live")
    key = live.post("/auth/api-keys", json={"name": "prod"}).json()
    assert key["key"].startswith("nxs_") and not key["key"].startswith("nxs_test_")
    project = make_project(harness.client("nexos", key["key"]))
    assert live.get(f"/projects/{project['id']}").status_code == 200
    test_client = harness.api("nexos")
    assert test_client.get(f"/projects/{project['id']}").status_code == 404
    assert test_client.get("/auth/api-keys").json() == []
    assert test_client.delete(f"/auth/api-keys/{key['id']}").status_code == 404
    assert harness.client("nexos", key["key"]).get("/projects").status_code == 200


# -- projects ---------------------------------------------------------------------------------
def test_create_project_derives_slug_returns_secret_once_and_refuses_duplicates(harness: Harness) -> None:
    c = harness.api("nexos")
    created = make_project(c, name="My Cool App!", services={"postgres": True})
    assert created["slug"] == "my-cool-app"
    assert created["services"] == {"postgres": True, "redis": False, "s3": False}
    assert created["webhook_secret"].startswith("whsec_")
    got = c.get(f"/projects/{created['id']}").json()
    assert "webhook_secret" not in got
    assert got == {k: v for k, v in created.items() if k != "webhook_secret"}

    minimal = make_project(c, name="api", github_repo="octocat/api", dockerfile="Dockerfile",
                           build_context=".", services={})
    assert (minimal["dockerfile"], minimal["build_context"]) == ("Dockerfile", ".")

    dup = c.post("/projects", json={**PROJECT, "name": "my cool app"})
    assert dup.status_code == 409
    assert dup.json()["error"]["code"] == "CONFLICT"
    # the same slug is free in another account
    assert harness.api("nexos", account="acme").post("/projects", json={**PROJECT, "name": "My Cool App!"}) \
        .status_code == 201
    assert harness.api("nexos", account="acme").get(f"/projects/{created['id']}").status_code == 404


def test_project_quota_is_the_pro_plan_limit(make_harness: Any) -> None:
    h = make_harness(rate_limit=False)
    c = h.api("nexos")
    ids = [make_project(c, name=f"app-{i}")["id"] for i in range(25)]
    r = c.post("/projects", json={**PROJECT, "name": "one-too-many"})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "QUOTA_EXCEEDED"
    assert r.json()["error"]["details"] == [{"field": "max_projects", "reason": "limit 25 reached"}]
    q = c.get("/quota").json()
    assert q["usage"]["projects"] == 25
    assert q["limits"]["max_projects"] == 25
    assert c.delete(f"/projects/{ids[0]}").status_code == 204
    assert c.post("/projects", json={**PROJECT, "name": "one-too-many"}).status_code == 201
    # another account has its own quota
    assert h.api("nexos", account="acme").post("/projects", json=PROJECT).status_code == 201


def test_delete_project_removes_environments_deployments_and_env_vars(harness: Harness) -> None:
    c = harness.api("nexos")
    project = make_project(c)
    keep = make_project(c, name="keep", github_repo="octocat/keep")
    assert c.put(f"/projects/{project['id']}/env-vars", json={"key": "A", "value": "1"}).status_code == 201
    accepted = push(harness, project["webhook_secret"]).json()
    kept = push(harness, keep["webhook_secret"], repo="octocat/keep").json()

    assert c.delete(f"/projects/{project['id']}").status_code == 204
    assert c.get(f"/projects/{project['id']}").status_code == 404
    assert c.get(f"/environments/{accepted['environment_id']}").status_code == 404
    assert c.get(f"/deployments/{accepted['deployment_id']}").status_code == 404
    assert c.get(f"/deployments/{accepted['deployment_id']}/logs").status_code == 404
    assert c.get(f"/projects/{project['id']}/env-vars").status_code == 404
    store = harness.sandbox.store
    for table in ("environments", "deployments", "env_vars"):
        assert store.find(f"nexos:{table}", project_id=project["id"]) == [], table
    assert c.get(f"/environments/{kept['environment_id']}").status_code == 200
    assert c.get(f"/deployments/{kept['deployment_id']}").status_code == 200
    # the repository is no longer connected
    assert push(harness, project["webhook_secret"]).status_code == 404


# -- webhook, deployments, logs ---------------------------------------------------------------
def test_push_builds_an_environment_over_time_with_logs_from_real_state(make_harness: Any) -> None:
    h = make_harness(async_delay=None)  # the spec's real lifecycle delays
    c = h.api("nexos")
    project = make_project(c)
    assert c.put(f"/projects/{project['id']}/env-vars",
                 json={"key": "DATABASE_URL", "value": "postgres://secret"}).status_code == 201
    r = push(h, project["webhook_secret"], message="Add login page\n\nlong body")
    assert r.status_code == 202
    body = r.json()
    assert body["accepted"] is True
    assert body["event"] == "push"
    assert body["delivery"] == DELIVERY

    env = c.get(f"/environments/{body['environment_id']}").json()
    assert env["status"] == "building"
    assert env["branch"] == "feature-login"
    assert env["project_id"] == project["id"]
    assert env["url"] == "https://feature-login-my-app.nexos.dev"
    assert env["current_deployment_id"] == body["deployment_id"]
    assert [e["id"] for e in c.get(f"/projects/{project['id']}/environments").json()] == [env["id"]]

    dep_url = f"/deployments/{body['deployment_id']}"
    dep = c.get(dep_url).json()
    assert (dep["status"], dep["commit_sha"], dep["finished_at"]) == ("queued", SHA1, None)
    assert dep["environment_id"] == env["id"]
    logs = c.get(f"{dep_url}/logs").json()
    assert logs["deployment_id"] == dep["id"]
    text = [line["message"] for line in logs["lines"]]
    assert any("octocat/my-app@feature-login" in m for m in text)
    assert "Commit 9fceb02: Add login page" in text
    assert not any("docker build" in m for m in text)

    h.clock.advance(5)
    assert c.get(dep_url).json()["status"] == "building"
    text = [line["message"] for line in c.get(f"{dep_url}/logs").json()["lines"]]
    assert "docker build -f docker/Dockerfile.prod -t registry.nexos.dev/my-app:9fceb02 ./app" in text
    assert "Injecting 1 environment variable(s): DATABASE_URL" in text
    assert "Services: postgres, redis" in text
    assert "postgres://secret" not in json.dumps(text)
    assert c.get(f"/environments/{env['id']}").json()["status"] == "building"

    h.clock.advance(60)
    dep = c.get(dep_url).json()
    assert dep["status"] == "succeeded"
    assert dep["finished_at"] == h.clock.isoformat()
    env = c.get(f"/environments/{env['id']}").json()
    assert env["status"] == "running"
    lines = c.get(f"{dep_url}/logs").json()["lines"]
    assert lines[-1]["message"] == "Deployment succeeded in 60s; live at https://feature-login-my-app.nexos.dev"
    assert lines[-1]["timestamp"] == dep["finished_at"]
    assert lines[0]["timestamp"] == dep["created_at"]

    quota = c.get("/quota").json()
    assert quota["usage"] == {"projects": 1, "total_cpu": 1.25, "total_memory_mb": 2304,
                              "build_minutes_used": 1}


def test_pushes_rebuild_the_branch_environment_and_other_branches_get_their_own(harness: Harness) -> None:
    c = harness.api("nexos")
    project = make_project(c)
    first = push(harness, project["webhook_secret"]).json()
    second = push(harness, project["webhook_secret"], sha=SHA2, message="Fix typo").json()
    assert second["environment_id"] == first["environment_id"]
    assert second["deployment_id"] != first["deployment_id"]
    env = c.get(f"/environments/{first['environment_id']}").json()
    assert env["current_deployment_id"] == second["deployment_id"]
    assert c.get(f"/deployments/{second['deployment_id']}").json()["commit_sha"] == SHA2

    main = push(harness, project["webhook_secret"], branch="main").json()
    assert main["environment_id"] != first["environment_id"]
    envs = c.get(f"/projects/{project['id']}/environments").json()
    assert sorted(e["branch"] for e in envs) == ["feature-login", "main"]


def test_webhook_signature_is_verified(harness: Harness) -> None:
    c = harness.api("nexos")
    project = make_project(c)
    payload = {"ref": "refs/heads/main", "after": SHA1, "repository": {"full_name": "octocat/my-app"}}
    for signature in ("sha256=" + "0" * 64, "sha1=abc", sign("whsec_wrong", json.dumps(payload).encode()),
                      sign(project["webhook_secret"], b"{}")):
        r = hook(harness, "push", payload, None, signature=signature)
        assert r.status_code == 401, signature
        assert r.json()["error"]["code"] == "INVALID_SIGNATURE"
    r = hook(harness, "push", payload, None)  # no signature at all
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "INVALID_SIGNATURE"
    assert c.get(f"/projects/{project['id']}/environments").json() == []

    unknown = hook(harness, "push", {**payload, "repository": {"full_name": "octocat/unknown"}},
                   project["webhook_secret"])
    assert unknown.status_code == 404
    assert hook(harness, "push", payload, project["webhook_secret"]).status_code == 202


def test_webhook_lands_in_the_account_whose_secret_signed_it(harness: Harness) -> None:
    a, b = harness.api("nexos"), harness.api("nexos", account="acme")
    make_project(a)
    pb = make_project(b)
    accepted = push(harness, pb["webhook_secret"]).json()
    assert b.get(f"/environments/{accepted['environment_id']}").status_code == 200
    assert a.get(f"/environments/{accepted['environment_id']}").status_code == 404


def test_branch_deletion_destroys_its_environment_and_tags_and_pings_are_ignored(harness: Harness) -> None:
    c = harness.api("nexos")
    project = make_project(c)
    secret = project["webhook_secret"]
    repo = {"full_name": "octocat/my-app"}
    env_id = push(harness, secret).json()["environment_id"]

    tag = hook(harness, "delete", {"ref": "v1.0", "ref_type": "tag", "repository": repo}, secret).json()
    assert tag["accepted"] is False
    ping = hook(harness, "ping", {"zen": "Design for failure.", "repository": repo}, secret).json()
    assert (ping["accepted"], ping["environment_id"]) == (False, None)
    tag_push = hook(harness, "push", {"ref": "refs/tags/v1.0", "after": SHA1, "repository": repo}, secret)
    assert tag_push.json()["accepted"] is False
    assert c.get(f"/environments/{env_id}").json()["status"] == "running"

    deleted = hook(harness, "delete", {"ref": "feature-login", "ref_type": "branch", "repository": repo},
                   secret)
    assert deleted.status_code == 202
    assert deleted.json()["environment_id"] == env_id
    assert c.get(f"/environments/{env_id}").json()["status"] == "destroyed"

    # a push after deletion starts a fresh environment; a deleting push destroys it again
    fresh = push(harness, secret).json()["environment_id"]
    assert fresh != env_id
    gone = hook(harness, "push", {"ref": "refs/heads/feature-login", "after": "0" * 40, "deleted": True,
                                  "repository": repo}, secret).json()
    assert gone["environment_id"] == fresh
    assert c.get(f"/environments/{fresh}").json()["status"] == "destroyed"

    missing_ref = hook(harness, "push", {"repository": repo}, secret)
    assert missing_ref.status_code == 400


# -- environment actions ----------------------------------------------------------------------
def test_environment_actions_follow_the_state_machine(harness: Harness) -> None:
    c = harness.api("nexos")
    project = make_project(c)
    accepted = push(harness, project["webhook_secret"]).json()
    env_url = f"/environments/{accepted['environment_id']}"
    assert c.get(env_url).json()["status"] == "running"  # async_delay=0: built at once

    def act(action: str) -> httpx.Response:
        return c.post(f"{env_url}/{action}")

    assert act("resume").status_code == 409
    paused = act("pause")
    assert paused.status_code == 200
    assert paused.json()["status"] == "paused"
    conflict = act("pause")
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "CONFLICT"
    assert c.get("/quota").json()["usage"]["total_cpu"] == 0

    reset = act("reset")
    assert reset.status_code == 200
    assert reset.json()["status"] == "paused"
    assert reset.json()["last_reset_at"] == harness.clock.isoformat()

    assert act("resume").json()["status"] == "running"
    rebuilt = act("rebuild")
    assert rebuilt.status_code == 202
    assert rebuilt.json()["status"] == "building"
    new_dep = rebuilt.json()["current_deployment_id"]
    assert new_dep != accepted["deployment_id"]
    assert c.get(f"/deployments/{new_dep}").json()["commit_sha"] == SHA1
    logs = [line["message"] for line in c.get(f"/deployments/{new_dep}/logs").json()["lines"]]
    assert any("(rebuild)" in m for m in logs)

    restarted = act("restart")
    assert restarted.status_code == 202
    assert restarted.json()["current_deployment_id"] not in (new_dep, accepted["deployment_id"])

    destroyed = act("destroy")
    assert destroyed.status_code == 200
    assert destroyed.json()["status"] == "destroyed"
    for action in ("rebuild", "restart", "pause", "resume", "reset", "destroy"):
        assert act(action).status_code == 409, action

    assert harness.api("nexos", account="acme").post(f"{env_url}/pause").status_code == 404
    assert c.post("/environments/env_doesnotexist/pause").status_code == 404


def test_actions_during_a_build_with_real_delays(make_harness: Any) -> None:
    h = make_harness(async_delay=None)
    c = h.api("nexos")
    project = make_project(c)
    env_url = f"/environments/{push(h, project['webhook_secret']).json()['environment_id']}"
    assert c.post(f"{env_url}/pause").status_code == 409
    assert c.post(f"{env_url}/reset").status_code == 409
    h.clock.advance(65)
    assert c.post(f"{env_url}/pause").json()["status"] == "paused"
    assert c.post(f"{env_url}/rebuild").json()["status"] == "building"
    h.clock.advance(64)
    assert c.get(env_url).json()["status"] == "building"
    h.clock.advance(1)
    assert c.get(env_url).json()["status"] == "running"
    assert c.get("/quota").json()["usage"]["build_minutes_used"] == 2


# -- environment variables --------------------------------------------------------------------
def test_env_vars_are_upserted_by_key_and_always_masked(harness: Harness) -> None:
    c = harness.api("nexos")
    project = make_project(c)
    url = f"/projects/{project['id']}/env-vars"
    created = c.put(url, json={"key": "DATABASE_POOL_SIZE", "value": "10"})
    assert created.status_code == 201
    assert created.json()["value"] == "********"
    updated = c.put(url, json={"key": "DATABASE_POOL_SIZE", "value": "20"})
    assert updated.status_code == 200
    assert updated.json()["id"] == created.json()["id"]
    assert updated.json()["value"] == "********"
    stored = harness.sandbox.store.get("nexos:env_vars", created.json()["id"])
    assert stored is not None and stored["value"] == "20"

    c.put(url, json={"key": "API_TOKEN", "value": "s3cr3t"})
    listed = c.get(url)
    assert listed.status_code == 200
    assert [(v["key"], v["value"]) for v in listed.json()] == [("DATABASE_POOL_SIZE", "********"),
                                                                ("API_TOKEN", "********")]
    assert "s3cr3t" not in listed.text

    assert c.delete(f"{url}/{created.json()['id']}").status_code == 204
    assert [v["key"] for v in c.get(url).json()] == ["API_TOKEN"]
    assert c.put(url, json={"key": "lower", "value": "x"}).status_code == 400

    other = harness.api("nexos", account="acme")
    assert other.get(url).status_code == 404
    assert other.put(url, json={"key": "X", "value": "1"}).status_code == 404
    assert c.get("/projects/proj_nope/env-vars").status_code == 404


# -- nodes ------------------------------------------------------------------------------------
def test_nodes_join_with_a_single_use_expiring_token(harness: Harness) -> None:
    c = harness.api("nexos")
    issued = c.post("/nodes/join-token")
    assert issued.status_code == 201
    token = issued.json()["token"]
    assert token.startswith("njt_")
    assert issued.json()["expires_at"] == harness.clock.isoformat(harness.clock.now() + 3600)
    assert token not in json.dumps(harness.sandbox.store.find("nexos:_join_tokens"))

    machine = harness.client("nexos")  # no bearer token
    spec = {"name": "hetzner-fsn1-01", "cpu": 8, "memory_mb": 32768}
    r = machine.post("/nodes/register", json={"token": token, **spec})
    assert r.status_code == 201
    node = r.json()
    assert {k: node[k] for k in spec} == spec
    assert node["status"] == "online"
    assert c.get("/nodes").json() == [node]
    assert c.get(f"/nodes/{node['id']}").json() == node
    assert harness.api("nexos", account="acme").get(f"/nodes/{node['id']}").status_code == 404

    reused = machine.post("/nodes/register", json={"token": token, **spec})
    assert reused.status_code == 401
    assert reused.json()["error"]["code"] == "UNAUTHORIZED"
    assert machine.post("/nodes/register", json={"token": "njt_guess", **spec}).status_code == 401

    late = c.post("/nodes/join-token").json()["token"]
    harness.clock.advance(3601)
    assert machine.post("/nodes/register", json={"token": late, **spec}).status_code == 401

    assert c.delete(f"/nodes/{node['id']}").status_code == 204
    assert c.get(f"/nodes/{node['id']}").status_code == 404
    assert c.get("/nodes").json() == []


# -- quota ------------------------------------------------------------------------------------
def test_quota_starts_empty_and_follows_running_environments(harness: Harness) -> None:
    c = harness.api("nexos")
    q = c.get("/quota")
    assert q.status_code == 200
    assert q.json() == {
        "plan": "pro",
        "usage": {"projects": 0, "total_cpu": 0, "total_memory_mb": 0, "build_minutes_used": 0},
        "limits": {"max_projects": 25, "max_cpu": 64, "max_memory_mb": 131072, "build_minutes": 5000},
    }
    project = make_project(c)  # postgres + redis, shared by the project's environments
    push(harness, project["webhook_secret"])
    push(harness, project["webhook_secret"], branch="main")
    usage = c.get("/quota").json()["usage"]
    assert (usage["projects"], usage["total_cpu"], usage["total_memory_mb"]) == (1, 1.75, 3328)
    assert harness.api("nexos", account="acme").get("/quota").json()["usage"]["projects"] == 0
    assert harness.client("nexos").get("/quota").status_code == 401
