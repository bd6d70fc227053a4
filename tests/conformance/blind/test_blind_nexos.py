"""Tests of the blind Nexos backend: the honest app follows document 004,
and every planted defect visibly changes what it targets."""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import parse_qs, urlparse

import pytest
from starlette.testclient import TestClient

from tests.conformance.blind.nexos import DEFECTS, make_app


class FakeClock:
    def __init__(self, t: float = 1_800_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


_OPEN: list = []


@pytest.fixture(autouse=True)
def _close_clients():
    yield
    while _OPEN:
        _OPEN.pop().__exit__(None, None, None)


def build(defect=None, delay=5.0):
    clock = FakeClock()
    app = make_app(window=2.0, delay=delay, defect=defect, clock=clock)
    client = TestClient(app, raise_server_exceptions=False)
    client.__enter__()  # one portal for all requests: much faster
    _OPEN.append(client)
    return client, app.state.backend.test_tokens(), clock


def H(token):
    return {"Authorization": f"Bearer {token}"}


def mkproj(c, token, name="my-app", **kw):
    body = {
        "name": name,
        "github_repo": "octocat/my-app",
        "dockerfile": "Dockerfile",
        "build_context": ".",
        "services": {"postgres": True, "redis": True, "s3": False},
    }
    body.update(kw)
    return c.post("/api/projects", json=body, headers=H(token))


def hook(c, event, payload, secret):
    raw = json.dumps(payload).encode()
    sig = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return c.post(
        "/api/webhooks/github",
        content=raw,
        headers={"X-GitHub-Event": event, "X-Hub-Signature-256": sig, "Content-Type": "application/json"},
    )


# ---------------------------------------------------------------- honest app
def test_auth_and_api_keys():
    c, tok, _ = build()
    assert c.get("/api/projects").status_code == 401
    assert c.get("/api/projects", headers=H("nxs_wrong")).status_code == 401
    assert c.get("/api/projects", headers=H("x" * 5000)).status_code == 401
    me = c.get("/api/auth/me", headers=H(tok.full)).json()
    assert me["github_login"] == "alice"
    assert c.get("/api/auth/me", headers=H(tok.same_account)).json()["id"] == me["id"]
    assert c.get("/api/auth/me", headers=H(tok.other)).json()["id"] != me["id"]
    r = c.post("/api/auth/api-keys", json={"name": "ci"}, headers=H(tok.full))
    assert r.status_code == 201
    new = r.json()
    assert new["key"].startswith("nxs_") and tok.full.startswith("nxs_")
    listed = c.get("/api/auth/api-keys", headers=H(tok.full)).json()
    text = json.dumps(listed)
    assert new["key"] not in text and tok.full not in text
    ours = next(k for k in listed if k["id"] == new["id"])
    assert ours["masked_key"].startswith("nxs_") and "*" in ours["masked_key"]
    assert c.get("/api/auth/me", headers=H(new["key"])).status_code == 200
    # bcrypt at rest
    rec = c.app.state.backend.keys[new["id"]]
    assert rec["hash"].startswith(b"$2") and new["key"].encode() not in rec["hash"]
    assert c.delete(f"/api/auth/api-keys/{new['id']}", headers=H(tok.other)).status_code == 404
    d = c.delete(f"/api/auth/api-keys/{new['id']}", headers=H(tok.full))
    assert d.status_code == 200 and d.json()["revoked"] is True
    assert c.get("/api/auth/me", headers=H(new["key"])).status_code == 401
    assert c.delete(f"/api/auth/api-keys/{new['id']}", headers=H(tok.full)).status_code == 404
    assert new["id"] not in [k["id"] for k in c.get("/api/auth/api-keys", headers=H(tok.full)).json()]


def test_github_oauth_offline_and_cookie():
    c, tok, clock = build()
    r = c.get("/api/auth/github", follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"].startswith(
        "https://github.com/login/oauth/authorize"
    )
    state = parse_qs(urlparse(r.headers["location"]).query)["state"][0]
    assert c.get("/api/auth/github/callback?code=x&state=bad", follow_redirects=False).status_code == 400
    assert c.get(f"/api/auth/github/callback?state={state}", follow_redirects=False).status_code == 400
    assert (
        c.get(f"/api/auth/github/callback?code=unknown&state={state}", follow_redirects=False).status_code
        == 502
    )
    c.app.state.backend.register_github_code("good", "alice")
    r = c.get(f"/api/auth/github/callback?code=good&state={state}", follow_redirects=False)
    assert r.status_code == 302
    assert "nexos_token=" in r.headers["set-cookie"] and "httponly" in r.headers["set-cookie"].lower()
    me = c.get("/api/auth/me")
    assert me.status_code == 200 and me.json()["auth_method"] == "cookie"
    assert me.json()["id"] == c.get("/api/auth/me", headers=H(tok.full)).json()["id"]
    clock.t += 8 * 86400
    assert c.get("/api/auth/me").status_code == 401


def test_projects_crud_and_validation():
    c, tok, _ = build()
    r = mkproj(c, tok.full)
    assert r.status_code == 201
    p = r.json()
    for k in ("id", "name", "slug", "github_repo", "dockerfile", "build_context", "services", "created_at"):
        assert k in p
    assert p["slug"] == "my-app" and p["services"] == {"postgres": True, "redis": True, "s3": False}
    assert mkproj(c, tok.full).status_code == 409
    assert mkproj(c, tok.other).status_code == 201  # names are per account
    assert c.post("/api/projects", json={"github_repo": "a/b"}, headers=H(tok.full)).status_code == 400
    assert c.post("/api/projects", json={"name": "x"}, headers=H(tok.full)).status_code == 400
    assert mkproj(c, tok.full, name="z", github_repo="not a repo").status_code == 400
    assert mkproj(c, tok.full, name="z", services={"mongo": True}).status_code == 400
    assert mkproj(c, tok.full, name="z", dockerfile=None).status_code == 400
    d = c.post(
        "/api/projects", json={"name": "Dëfault App", "github_repo": "o/r"}, headers=H(tok.full)
    ).json()
    assert d["dockerfile"] == "Dockerfile" and d["build_context"] == "." and d["slug"] == "d-fault-app"
    assert [x["id"] for x in c.get("/api/projects", headers=H(tok.full)).json()] == [d["id"], p["id"]]
    u = c.patch(
        f"/api/projects/{p['id']}",
        json={"dockerfile": "docker/Dockerfile", "services": {"s3": True}},
        headers=H(tok.full),
    )
    assert u.status_code == 200 and u.json()["dockerfile"] == "docker/Dockerfile"
    assert u.json()["services"] == {"postgres": True, "redis": True, "s3": True}
    assert c.patch(f"/api/projects/{p['id']}", json={"slug": "x"}, headers=H(tok.full)).status_code == 400
    assert c.get(f"/api/projects/{p['id']}", headers=H(tok.other)).status_code == 404
    assert c.patch(f"/api/projects/{p['id']}", json={"name": "h"}, headers=H(tok.other)).status_code == 404
    assert c.delete(f"/api/projects/{p['id']}", headers=H(tok.other)).status_code == 404
    assert c.get(f"/api/projects/{p['id']}", headers=H(tok.same_account)).status_code == 200


def test_environments_lifecycle_and_cascade():
    c, tok, clock = build(delay=5.0)
    p = mkproj(c, tok.full).json()
    envs = c.get(f"/api/projects/{p['id']}/environments", headers=H(tok.full)).json()
    assert len(envs) == 1 and envs[0]["branch"] == "main" and envs[0]["status"] == "building"
    eid = envs[0]["id"]
    dep_id = envs[0]["latest_deployment_id"]
    assert c.get(f"/api/deployments/{dep_id}", headers=H(tok.full)).json()["status"] == "queued"
    clock.t += 5
    assert c.get(f"/api/environments/{eid}", headers=H(tok.full)).json()["status"] == "running"
    dep = c.get(f"/api/deployments/{dep_id}", headers=H(tok.full)).json()
    assert dep["status"] == "succeeded"
    logs = c.get(f"/api/deployments/{dep_id}/logs", headers=H(tok.full)).json()
    assert logs["lines"][-1]["message"] == "Deployment succeeded"
    assert c.get("/api/quota", headers=H(tok.full)).json()["usage"]["build_minutes_used"] == 1
    # rebuild + alias
    for action in ("rebuild", "restart"):
        r = c.post(f"/api/environments/{eid}/{action}", headers=H(tok.full))
        assert r.status_code == 202 and r.json()["deployment"]["id"] != dep_id
        assert r.json()["environment"]["status"] == "building"
        clock.t += 5
    # pause: last active env stops shared services
    r = c.post(f"/api/environments/{eid}/pause", headers=H(tok.full))
    assert r.status_code == 200 and r.json()["status"] == "paused"
    proj = c.get(f"/api/projects/{p['id']}", headers=H(tok.full)).json()
    assert proj["shared_services"] == {"postgres": "stopped", "redis": "stopped"}
    assert c.get("/api/quota", headers=H(tok.full)).json()["usage"]["total_cpu"] == 0
    assert c.post(f"/api/environments/{eid}/pause", headers=H(tok.full)).status_code == 409
    before = c.get(f"/api/environments/{eid}", headers=H(tok.full)).json()["latest_deployment_id"]
    r = c.post(f"/api/environments/{eid}/resume", headers=H(tok.full))
    assert (
        r.status_code == 200
        and r.json()["status"] == "running"
        and r.json()["latest_deployment_id"] == before
    )
    assert c.post(f"/api/environments/{eid}/resume", headers=H(tok.full)).status_code == 409
    assert (
        c.get(f"/api/projects/{p['id']}", headers=H(tok.full)).json()["shared_services"]["postgres"]
        == "running"
    )
    # reset
    r = c.post(f"/api/environments/{eid}/reset", headers=H(tok.full)).json()
    assert r["database"]["size_bytes"] == 0 and r["database"]["reset_at"]
    # second env via webhook: pausing one of two leaves shared services running
    secret = c.app.state.backend.webhook_secret
    r = hook(
        c,
        "push",
        {"ref": "refs/heads/feature-x", "after": "a" * 40, "repository": {"full_name": "octocat/my-app"}},
        secret,
    )
    assert r.status_code == 202 and len(r.json()["deployments"]) == 1
    clock.t += 5
    c.post(f"/api/environments/{eid}/pause", headers=H(tok.full))
    assert (
        c.get(f"/api/projects/{p['id']}", headers=H(tok.full)).json()["shared_services"]["redis"] == "running"
    )
    # other account sees nothing
    for url in (
        f"/api/environments/{eid}",
        f"/api/deployments/{dep_id}",
        f"/api/projects/{p['id']}/environments",
    ):
        assert c.get(url, headers=H(tok.other)).status_code == 404
    assert c.post(f"/api/environments/{eid}/resume", headers=H(tok.other)).status_code == 404
    # destroy
    r = c.post(f"/api/environments/{eid}/destroy", headers=H(tok.full))
    assert r.status_code == 200 and r.json()["status"] == "destroyed"
    assert c.get(f"/api/environments/{eid}", headers=H(tok.full)).status_code == 404
    # project delete cascades
    envs = c.get(f"/api/projects/{p['id']}/environments", headers=H(tok.full)).json()
    assert len(envs) == 1
    d = c.delete(f"/api/projects/{p['id']}", headers=H(tok.full))
    assert d.status_code == 200 and d.json()["deleted"] is True
    assert c.get(f"/api/environments/{envs[0]['id']}", headers=H(tok.full)).status_code == 404
    assert c.get(f"/api/projects/{p['id']}", headers=H(tok.full)).status_code == 404


def test_webhooks():
    c, tok, _clock = build()
    p = mkproj(c, tok.full).json()
    secret = c.app.state.backend.webhook_secret
    payload = {"ref": "refs/heads/dev", "after": "b" * 40, "repository": {"full_name": "octocat/my-app"}}
    raw = json.dumps(payload).encode()
    assert c.post("/api/webhooks/github", content=raw, headers={"X-GitHub-Event": "push"}).status_code == 401
    assert (
        c.post(
            "/api/webhooks/github",
            content=raw,
            headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + "0" * 64},
        ).status_code
        == 401
    )
    assert hook(c, "ping", {"zen": "hi"}, secret).status_code == 200
    assert hook(c, "push", payload, secret).status_code == 202
    envs = c.get(f"/api/projects/{p['id']}/environments", headers=H(tok.full)).json()
    dev = next(e for e in envs if e["branch"] == "dev")
    assert dev["commit_sha"] == "b" * 40
    r = c.post(f"/api/environments/{dev['id']}/rebuild", headers=H(tok.full)).json()
    assert r["deployment"]["commit_sha"] == "b" * 40
    r = hook(
        c,
        "delete",
        {"ref": "dev", "ref_type": "branch", "repository": {"full_name": "octocat/my-app"}},
        secret,
    )
    assert r.status_code == 202 and r.json()["destroyed"] == [dev["id"]]
    assert c.get(f"/api/environments/{dev['id']}", headers=H(tok.full)).status_code == 404
    bad = b"\xff\xfe"
    sig = "sha256=" + hmac.new(secret.encode(), bad, hashlib.sha256).hexdigest()
    assert (
        c.post(
            "/api/webhooks/github",
            content=bad,
            headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": sig},
        ).status_code
        == 400
    )


def test_env_vars():
    c, tok, _ = build()
    p = mkproj(c, tok.full).json()
    url = f"/api/projects/{p['id']}/env-vars"
    r = c.put(url, json={"key": "DATABASE_URL", "value": "postgres://secret"}, headers=H(tok.full))
    assert r.status_code == 201 and "secret" not in r.text
    vid = r.json()["id"]
    assert (
        c.put(url, json={"key": "DATABASE_URL", "value": "postgres://s2"}, headers=H(tok.full)).status_code
        == 200
    )
    listed = c.get(url, headers=H(tok.full)).json()
    assert len(listed) == 1 and listed[0]["value"] == "********" and "postgres" not in json.dumps(listed)
    assert c.put(url, json={"key": "1BAD", "value": "x"}, headers=H(tok.full)).status_code == 400
    assert c.put(url, json={"key": "OK"}, headers=H(tok.full)).status_code == 400
    assert c.get(url, headers=H(tok.other)).status_code == 404
    assert c.put(url, json={"key": "X", "value": "y"}, headers=H(tok.other)).status_code == 404
    assert c.delete(f"{url}/{vid}", headers=H(tok.other)).status_code == 404
    assert c.delete(f"{url}/{vid}", headers=H(tok.full)).status_code == 204
    assert c.get(url, headers=H(tok.full)).json() == []


def test_nodes():
    c, tok, clock = build()
    r = c.post("/api/nodes/join-token", headers=H(tok.full))
    assert r.status_code == 201 and r.json()["token"].startswith("nxj_")
    t = r.json()["token"]
    assert c.post("/api/nodes/join", json={"token": "nxj_bad", "hostname": "n1"}).status_code == 401
    n = c.post("/api/nodes/join", json={"token": t, "hostname": "n1", "cpu_cores": 8, "memory_mb": 16384})
    assert n.status_code == 201 and n.json()["status"] == "joining"
    assert c.post("/api/nodes/join", json={"token": t, "hostname": "n2"}).status_code == 401
    nid = n.json()["id"]
    clock.t += 5
    assert c.get(f"/api/nodes/{nid}", headers=H(tok.full)).json()["status"] == "online"
    assert [x["id"] for x in c.get("/api/nodes", headers=H(tok.full)).json()] == [nid]
    assert c.get("/api/nodes", headers=H(tok.other)).json() == []
    assert c.get(f"/api/nodes/{nid}", headers=H(tok.other)).status_code == 404
    assert c.delete(f"/api/nodes/{nid}", headers=H(tok.other)).status_code == 404
    assert c.delete(f"/api/nodes/{nid}", headers=H(tok.full)).status_code == 200
    assert c.get(f"/api/nodes/{nid}", headers=H(tok.full)).status_code == 404


def test_quota_accounting():
    c, tok, _clock = build()
    q = c.get("/api/quota", headers=H(tok.full)).json()
    assert q["plan"] == "pro" and q["usage"]["projects"] == 0
    assert set(q["limits"]) == {"max_projects", "max_cpu", "max_memory_mb", "build_minutes"}
    ids = [mkproj(c, tok.full, name=f"p{i}").json()["id"] for i in range(25)]
    q = c.get("/api/quota", headers=H(tok.full)).json()
    assert (
        q["usage"]["projects"] == 25
        and q["usage"]["total_cpu"] == 12.5
        and q["usage"]["total_memory_mb"] == 12800
    )
    r = mkproj(c, tok.full, name="one-too-many")
    assert r.status_code == 403 and r.json()["error"] == "quota_exceeded"
    assert c.get("/api/quota", headers=H(tok.other)).json()["usage"]["projects"] == 0
    c.delete(f"/api/projects/{ids[0]}", headers=H(tok.full))
    assert c.get("/api/quota", headers=H(tok.full)).json()["usage"]["projects"] == 24


def test_hostile_input():
    c, tok, _ = build()
    for raw in (b"\xff\xfe", b"[" * 100000, b'{"name": ' + b"9" * 10000 + b"}", b"[]", b"", b"null"):
        r = c.post("/api/projects", content=raw, headers={**H(tok.full), "Content-Type": "application/json"})
        assert 400 <= r.status_code < 500, raw[:10]
    assert mkproj(c, tok.full, name="日本語 アプリ").status_code == 400  # no slug possible
    assert mkproj(c, tok.full, name="ok", github_repo=1e308).status_code == 400
    assert c.get("/api/projects/%ff%fe", headers=H(tok.full)).status_code in (404,)
    assert c.put("/api/projects", headers=H(tok.full)).status_code == 405
    assert c.get("/api/nope", headers=H(tok.full)).status_code == 404
    assert (
        c.get(
            "/api/projects", headers={"Authorization": "Bearer nxs_\u00e9\u00e9".encode("utf-8")}
        ).status_code
        == 401
    )


# ---------------------------------------------------------------- defects
def probe(defect):
    c, tok, clock = build(defect)
    b = c.app.state.backend
    out = {"noauth": c.get("/api/projects").status_code}
    k = c.post("/api/auth/api-keys", json={"name": "k"}, headers=H(tok.full)).json()
    out["prefix"] = k["key"].startswith("nxs_")
    out["listed_plain"] = k["key"] in c.get("/api/auth/api-keys", headers=H(tok.full)).text
    c.delete(f"/api/auth/api-keys/{k['id']}", headers=H(tok.full))
    out["revoked"] = c.get("/api/auth/me", headers=H(k["key"])).status_code
    out["me_other"] = c.get("/api/auth/me", headers=H(tok.other)).json()["id"] != (
        c.get("/api/auth/me", headers=H(tok.full)).json()["id"]
    )
    p = mkproj(c, tok.full).json()
    out["quota"] = c.get("/api/quota", headers=H(tok.full)).json()["usage"]["projects"]
    vurl = f"/api/projects/{p['id']}/env-vars"
    c.put(vurl, json={"key": "SECRET", "value": "hunter2"}, headers=H(tok.full))
    out["clear"] = "hunter2" in c.get(vurl, headers=H(tok.full)).text
    c.put(vurl, json={"key": "SECRET", "value": "hunter3"}, headers=H(tok.full))
    out["vars_after_rewrite"] = len(c.get(vurl, headers=H(tok.full)).json())
    out["other_vars"] = c.get(vurl, headers=H(tok.other)).status_code
    out["other_project"] = c.get(f"/api/projects/{p['id']}", headers=H(tok.other)).status_code
    eid = c.get(f"/api/projects/{p['id']}/environments", headers=H(tok.full)).json()[0]["id"]
    clock.t += 5
    out["restart"] = c.post(f"/api/environments/{eid}/restart", headers=H(tok.full)).status_code
    clock.t += 5
    hook(
        c, "push", {"ref": "refs/heads/dev", "repository": {"full_name": "octocat/my-app"}}, b.webhook_secret
    )
    clock.t += 5
    c.post(f"/api/environments/{eid}/pause", headers=H(tok.full))
    out["status_after_pause"] = c.get(f"/api/environments/{eid}", headers=H(tok.full)).json()["status"]
    out["shared_after_first_pause"] = c.get(f"/api/projects/{p['id']}", headers=H(tok.full)).json()[
        "shared_services"
    ]["postgres"]
    dev = next(
        e
        for e in c.get(f"/api/projects/{p['id']}/environments", headers=H(tok.full)).json()
        if e["branch"] == "dev"
    )["id"]
    c.post(f"/api/environments/{dev}/pause", headers=H(tok.full))
    out["shared_after_last_pause"] = c.get(f"/api/projects/{p['id']}", headers=H(tok.full)).json()[
        "shared_services"
    ]["postgres"]
    before = c.get(f"/api/environments/{eid}", headers=H(tok.full)).json()["latest_deployment_id"]
    resumed = c.post(f"/api/environments/{eid}/resume", headers=H(tok.full)).json()
    after = resumed.get("latest_deployment_id", before)
    out["resume_new_dep"] = before != after
    out["reset_size"] = c.post(f"/api/environments/{eid}/reset", headers=H(tok.full)).json()["database"][
        "size_bytes"
    ]
    out["unsigned_hook"] = c.post(
        "/api/webhooks/github",
        json={"ref": "refs/heads/x", "repository": {"full_name": "octocat/my-app"}},
        headers={"X-GitHub-Event": "push"},
    ).status_code
    secret = c.app.state.backend.webhook_secret
    hook(
        c,
        "delete",
        {"ref": "dev", "ref_type": "branch", "repository": {"full_name": "octocat/my-app"}},
        secret,
    )
    out["dev_after_delete_event"] = c.get(f"/api/environments/{dev}", headers=H(tok.full)).status_code
    t = c.post("/api/nodes/join-token", headers=H(tok.full)).json()["token"]
    nid = c.post("/api/nodes/join", json={"token": t, "hostname": "n1"}).json()["id"]
    out["nodes_type"] = c.get("/api/nodes", headers=H(tok.full)).headers["content-type"].split(";")[0]
    c.delete(f"/api/nodes/{nid}", headers=H(tok.full))
    out["node_after_delete"] = c.get(f"/api/nodes/{nid}", headers=H(tok.full)).status_code
    # destroy: a branch environment of its own (dev's was removed by the delete event above)
    hook(c, "push", {"ref": "refs/heads/tmp", "repository": {"full_name": "octocat/my-app"}}, secret)
    tmp = next(
        e
        for e in c.get(f"/api/projects/{p['id']}/environments", headers=H(tok.full)).json()
        if e["branch"] == "tmp"
    )["id"]
    c.post(f"/api/environments/{tmp}/destroy", headers=H(tok.full))
    out["dev_after_destroy"] = c.get(f"/api/environments/{tmp}", headers=H(tok.full)).status_code
    c.delete(f"/api/projects/{p['id']}", headers=H(tok.full))
    out["env_after_project_delete"] = c.get(f"/api/environments/{eid}", headers=H(tok.full)).status_code
    if defect in (None, "project_quota_unenforced"):  # the only one this slow part is for
        for i in range(25):
            mkproj(c, tok.same_account, name=f"q{i}")
        out["over_quota"] = mkproj(c, tok.full, name="too-many").status_code
    return out


HONEST = None


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_each_defect_changes_behaviour(defect):
    global HONEST
    if HONEST is None:
        HONEST = probe(None)
        assert HONEST["revoked"] == 401 and HONEST["prefix"] and not HONEST["clear"]
    bad = probe(defect)
    changed = {k for k in bad if HONEST[k] != bad[k]}
    expect = {
        "revoked_key_works": {"revoked"},
        "key_no_prefix": {"prefix"},
        "api_keys_list_unmasked": {"listed_plain"},
        "no_auth_required": {"noauth"},
        "env_values_clear": {"clear"},
        "project_delete_keeps_envs": {"env_after_project_delete"},
        "quota_not_updated": {"quota"},
        "project_quota_unenforced": {"over_quota"},
        "cross_account_subresources": {"other_vars"},
        "cross_account_project": {"other_project"},
        "restart_alias_missing": {"restart"},
        "resume_rebuilds": {"resume_new_dep"},
        "pause_keeps_shared_services": {"shared_after_last_pause"},
        "pause_stops_shared_early": {"shared_after_first_pause"},
        "reset_keeps_data": {"reset_size"},
        "webhook_signature_unchecked": {"unsigned_hook"},
        "webhook_delete_ignored": {"dev_after_delete_event"},
        "node_delete_noop": {"node_after_delete"},
        "env_var_put_duplicates": {"vars_after_rewrite"},
        "me_first_user": {"me_other"},
        "nodes_text_plain": {"nodes_type"},
        "pause_keeps_running": {"status_after_pause"},
        "destroy_keeps_environment": {"dev_after_destroy"},
    }[defect]
    assert expect <= changed, (defect, changed, bad)
