"""The honest backends (`tests/conformance/honest/`) do what the vendor documents say, each with its
own choices where they are silent, and every planted defect is really there (so a conformance
check that must catch it has something to catch). Plain httpx against uvicorn on 127.0.0.1; the
backends' clock is a fake one, so lifecycles and rate-limit windows move without sleeping."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from email.utils import parsedate_to_datetime
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.conformance.honest import cloudnexus_com, cloudnexus_io, nexos, nurosentrix_a, nurosentrix_b
from tests.conformance.honest.common import DEFECTS, serve

NUROSENTRIX = [nurosentrix_a, nurosentrix_b]
BASE = {
    nurosentrix_a: "/api/v1",
    nurosentrix_b: "/api/v1",
    cloudnexus_com: "/v1",
    cloudnexus_io: "/v1",
    nexos: "/api",
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Served:
    """A running backend: its URL, the backend object (tokens), its clock and clients per token."""

    def __init__(self, module: ModuleType, url: str, app: Any, clock: FakeClock) -> None:
        self.module, self.url, self.backend, self.clock = module, url + BASE[module], app.state.backend, clock
        self.tokens = self.backend.test_tokens()
        self._clients: list[httpx.Client] = []

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        c = httpx.Client(base_url=self.url, headers=headers, timeout=10)
        self._clients.append(c)
        return c

    @property
    def full(self) -> httpx.Client:
        return self.client(self.tokens.full)

    def close(self) -> None:
        for c in self._clients:
            c.close()


@pytest.fixture
def start() -> Iterator[Callable[..., Served]]:
    stack: list[tuple[Any, Served]] = []

    def run(module: ModuleType, **options: Any) -> Served:
        clock = FakeClock()
        app = module.make_app(clock=clock, **options)
        ctx = serve(app)
        served = Served(module, ctx.__enter__(), app, clock)
        stack.append((ctx, served))
        return served

    yield run
    for ctx, served in reversed(stack):
        served.close()
        ctx.__exit__(None, None, None)


# ---------------------------------------------------------------------- Nurosentrix (000, 001)
SERVER = {"name": "web-server-2", "provider": "digitalocean", "region": "nyc1", "size": "s-4vcpu-8gb"}


def instance_body(server_id: str, n: int = 1) -> dict[str, Any]:
    return {
        "name": f"crm-{n}",
        "server_id": server_id,
        "odoo_version": "17.0",
        "edition": "community",
        "database_name": f"crm_{n}",
        "admin_email": "admin@example.com",
        "domain": f"crm-{n}.example.com",
    }


@pytest.mark.parametrize("module", NUROSENTRIX, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_nurosentrix_walk(module: ModuleType, start: Callable[..., Served]) -> None:
    s = start(module)
    c = s.full
    r = c.post("/servers", json=SERVER)
    assert r.status_code == 201, r.text
    server = r.json()["data"]
    assert (
        r.json()["success"] is True and server["status"] == "provisioning" and server["id"].startswith("srv_")
    )
    s.clock.advance(5)
    got = c.get(f"/servers/{server['id']}").json()["data"]
    assert got["status"] == "active" and got["ip_address"]
    listed = c.get("/servers").json()
    assert [x["id"] for x in listed["data"]] == [server["id"]]
    assert listed["meta"]["page"] == 1 and listed["meta"]["per_page"] == 20 and listed["meta"]["total"] == 1

    inst = c.post("/instances", json=instance_body(server["id"]))
    assert inst.status_code == 201, inst.text
    iid = inst.json()["data"]["id"]
    s.clock.advance(5)
    assert c.get("/instances").json()["data"][0]["status"] == "running"
    stop = c.post(f"/instances/{iid}/actions", json={"action": "stop"})
    assert stop.status_code in (200, 202) and stop.json()["data"]["instance"]["status"] == "stopped"
    assert c.post(f"/instances/{iid}/actions", json={"action": "stop"}).status_code == 409
    assert c.post(f"/instances/{iid}/actions", json={"action": "start"}).status_code in (200, 202)

    backup = c.post(f"/instances/{iid}/backups")
    assert backup.status_code == 201
    bid = backup.json()["data"]["id"]
    early = c.post(f"/instances/{iid}/clone", json={"name": "staging-crm", "backup_id": bid})
    assert early.status_code == 409, early.text  # "Creates a new instance from a completed backup"
    s.clock.advance(5)
    assert c.get(f"/instances/{iid}/backups").json()["data"][0]["status"] == "completed"
    clone = c.post(
        f"/instances/{iid}/clone", json={"name": "staging-crm", "backup_id": bid, "neutralize": True}
    )
    assert clone.status_code == 201, clone.text
    assert clone.json()["data"]["admin_password"]  # generated because it was omitted
    given = c.post(
        f"/instances/{iid}/clone", json={"name": "qa-crm", "backup_id": bid, "admin_password": "s3cret-pw"}
    )
    assert given.status_code == 201 and "admin_password" not in given.json()["data"]
    assert c.post(f"/backups/{bid}/restore").status_code in (200, 202)

    if module is nurosentrix_b:  # B refuses to delete a server that still has instances
        assert c.delete(f"/servers/{server['id']}").status_code == 409
        for child in [x["id"] for x in c.get("/instances").json()["data"]]:
            assert c.delete(f"/instances/{child}").status_code == 204
    deleted = c.delete(f"/servers/{server['id']}")
    assert deleted.status_code == (200 if module is nurosentrix_a else 204), deleted.text
    assert deleted.content == b"" if module is nurosentrix_b else deleted.json()["data"]["deleted"] is True
    assert c.get(f"/servers/{server['id']}").status_code == 404
    assert c.get("/instances").json()["meta"]["total"] == 0  # A deletes a server's instances with it


@pytest.mark.parametrize("module", NUROSENTRIX, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_nurosentrix_auth_permissions_and_accounts(module: ModuleType, start: Callable[..., Served]) -> None:
    s = start(module)
    for client in (s.client(), s.client("nsx_live_not_a_token"), s.client("garbage")):
        r = client.get("/servers")
        assert r.status_code == 401
        assert r.json()["error"] == {
            "code": "UNAUTHORIZED",
            "message": "Invalid or missing authentication token",
        }
    read_only = s.client(s.tokens.limited)
    assert read_only.get("/servers").status_code == 200
    r = read_only.post("/servers", json=SERVER)
    assert r.status_code == 403
    assert r.json()["error"] == {
        "code": "FORBIDDEN",
        "message": "Token does not have permission: servers:write",
    }
    sid = s.full.post("/servers", json=SERVER).json()["data"]["id"]
    assert read_only.delete(f"/servers/{sid}").status_code == 403

    other = s.client(s.tokens.other)
    assert other.get(f"/servers/{sid}").status_code == 404
    assert other.delete(f"/servers/{sid}").status_code == 404
    assert other.get("/servers").json()["meta"]["total"] == 0
    test_mode = s.client(s.backend.mint("acme", mode="test"))  # nsx_test_: a separate sandboxed environment
    assert test_mode.get("/servers").json()["meta"]["total"] == 0

    login = s.client().post("/auth/login", json={"email": "user@example.com", "password": "your-password"})
    assert login.status_code == 200 and login.json()["data"]["user"]["email"] == "user@example.com"
    assert s.client(login.json()["data"]["token"]).get("/servers").json()["meta"]["total"] == 1
    wrong = s.client().post("/auth/login", json={"email": "user@example.com", "password": "nope"})
    assert wrong.status_code == 401

    s.backend.tokens.revoke(s.tokens.full)  # "Revoked tokens are immediately invalidated"
    assert s.full.get("/servers").status_code == 401


@pytest.mark.parametrize("module", NUROSENTRIX, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_nurosentrix_pagination_and_filter(module: ModuleType, start: Callable[..., Served]) -> None:
    s = start(module, window=3600)
    c = s.full
    made = [c.post("/servers", json={**SERVER, "name": f"web-{i}"}).json()["data"]["id"] for i in range(19)]
    s.clock.advance(3600)
    made += [c.post("/servers", json={**SERVER, "name": f"new-{i}"}).json()["data"]["id"] for i in range(6)]
    pages = [c.get("/servers", params={"page": p, "per_page": 10}).json() for p in (1, 2, 3, 4)]
    assert [len(p["data"]) for p in pages] == [10, 10, 5, 0]
    assert all(p["meta"]["total"] == 25 and p["meta"]["per_page"] == 10 for p in pages)
    assert [x["id"] for p in pages for x in p["data"]] == made
    assert len(c.get("/servers").json()["data"]) == 20  # default per_page
    over = c.get("/servers", params={"per_page": 101})
    if module is nurosentrix_a:
        assert over.status_code == 200 and over.json()["meta"]["per_page"] == 100  # capped
    else:
        assert over.status_code == 400 and over.json()["error"]["details"]["field"] == "per_page"
    active = c.get("/servers", params={"status": "active", "per_page": 100}).json()
    provisioning = c.get("/servers", params={"status": "provisioning", "per_page": 100}).json()
    assert active["meta"]["total"] == 19 and {x["status"] for x in active["data"]} == {"active"}
    assert provisioning["meta"]["total"] == 6 and {x["status"] for x in provisioning["data"]} == {
        "provisioning"
    }
    assert c.get("/servers", params={"status": "offline"}).json()["data"] == []
    assert c.get("/servers", params={"status": "bogus"}).status_code in (400, 422)


@pytest.mark.parametrize("module", NUROSENTRIX, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_nurosentrix_documented_rate_limits(module: ModuleType, start: Callable[..., Served]) -> None:
    """100 requests per minute on everything, 20 per minute on create/delete (per token)."""
    s = start(module, window=60)
    c = s.full
    created = [c.post("/servers", json={**SERVER, "name": f"w{i}"}) for i in range(21)]
    assert [r.status_code for r in created] == [201] * 20 + [429]
    refused = created[-1]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert c.get("/servers").status_code == 200  # reads still have room
    if module is nurosentrix_a:
        assert refused.json()["error"]["code"] == "RATE_LIMIT_EXCEEDED"
        assert refused.json()["error"]["details"]["limit"] == 20
        reset = int(created[0].headers["X-RateLimit-Reset"])
        assert reset > 1_000_000_000  # a Unix epoch, read against the response's Date:
        assert 0 < reset - parsedate_to_datetime(created[0].headers["Date"]).timestamp() <= 60
    else:
        assert not any(h.lower().startswith(("x-ratelimit", "ratelimit")) for h in created[0].headers)
    reads = [c.get("/servers").status_code for _ in range(100)]
    assert reads.count(429) == 21  # 21 requests were already accepted in the minute (the 429 is not counted)
    s.clock.advance(60)
    assert c.post("/servers", json={**SERVER, "name": "after"}).status_code == 201
    assert s.client(s.tokens.other).get("/servers").status_code == 200  # per token


# ---------------------------------------------------------------------- CloudNexus v1.4.2 (002)
def test_cloudnexus_com(start: Callable[..., Served]) -> None:
    s = start(cloudnexus_com)
    c = s.full
    r = c.post("/servers", json={"name": "production-web-01", "plan": "pro", "region": "us-east-1"})
    assert r.status_code == 201 and r.json()["status"] == "success"
    server = r.json()["data"]
    assert server["status"] == "provisioning" and server["ipv4"] and server["image"] == "ubuntu-22.04"
    assert set(r.json()["meta"]) == {"request_id", "timestamp"}
    s.clock.advance(5)
    assert c.get(f"/servers/{server['id']}").json()["data"]["status"] == "active"
    missing = c.post("/servers", json={"name": "x", "plan": "pro"})
    assert missing.status_code == 400 and missing.json()["status"] == "error"

    for i in range(24):
        c.post("/servers", json={"name": f"s{i}", "plan": "starter", "region": "eu-west-2"})
    pages = [c.get("/servers", params={"page": p, "per_page": 10}).json() for p in (1, 2, 3)]
    assert [len(p["data"]) for p in pages] == [10, 10, 5] and pages[0]["meta"]["total"] == 25
    assert c.get("/servers", params={"per_page": 500}).json()["meta"]["per_page"] == 100  # capped
    active = c.get("/servers", params={"status": "active"}).json()
    assert [x["id"] for x in active["data"]] == [server["id"]]

    db = {
        "engine": "postgresql",
        "version": "15.4",
        "plan": "standard",
        "name": "app-db-prod",
        "region": "us-east-1",
    }
    created = c.post("/databases", json=db)
    assert created.status_code == 201 and created.json()["data"]["status"] == "creating"
    assert c.post("/databases", json=db).status_code == 409  # database names are unique per account
    assert c.post("/databases", json={**db, "name": "other", "version": "9.6"}).status_code == 400

    assert s.client().get("/servers").status_code == 401
    read_only = s.client(s.tokens.limited)
    assert read_only.get("/servers").status_code == 200
    denied = read_only.delete(f"/servers/{server['id']}")
    assert (
        denied.status_code == 403
        and denied.json()["error"]["message"] == "Insufficient permissions for this action."
    )
    other = s.client(s.tokens.other)
    assert other.get(f"/servers/{server['id']}").status_code == 404
    assert other.get("/servers").json()["meta"]["total"] == 0
    deleted = c.delete(f"/servers/{server['id']}")
    assert deleted.status_code == 200 and deleted.json()["data"] == {"id": server["id"], "deleted": True}
    assert c.get(f"/servers/{server['id']}").status_code == 404


def test_cloudnexus_com_rate_limit_with_ietf_headers(start: Callable[..., Served]) -> None:
    s = start(cloudnexus_com, limit=5, window=10)
    c = s.full
    answers = [c.get("/servers") for _ in range(6)]
    assert [r.status_code for r in answers] == [200] * 5 + [429]
    assert answers[0].headers["RateLimit-Policy"] == '"default";q=5;w=10'
    assert answers[0].headers["RateLimit"] == '"default";r=4;t=10'
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 10
    s.clock.advance(10)
    assert c.get("/servers").status_code == 200


# ---------------------------------------------------------------------- CloudNexus .io (003)
def test_cloudnexus_io(start: Callable[..., Served]) -> None:
    s = start(cloudnexus_io)
    c = s.full
    r = c.post("/instances", json={"name": "worker-01", "region": "us-east-1", "plan": "pro"})
    assert r.status_code == 201
    inst = r.json()
    assert (
        inst["status"] == "pending"
        and inst["public_ip"] is None
        and set(inst["specs"]) == {"cpu", "ram_gb", "disk_gb"}
    )
    s.clock.advance(2)
    assert c.get(f"/instances/{inst['id']}").json()["status"] == "provisioning"
    s.clock.advance(2)
    assert c.get(f"/instances/{inst['id']}").json()["public_ip"]
    for i in range(11):
        c.post("/instances", json={"name": f"w{i}", "region": "eu-west-2", "plan": "starter"})
    page = c.get("/instances", params={"limit": 5, "offset": 10}).json()
    assert page["meta"] == {"total": 12, "limit": 5, "offset": 10} and len(page["data"]) == 2
    assert c.get("/instances", params={"limit": 500}).json()["meta"]["limit"] == 100  # capped
    east = c.get("/instances", params={"region": "us-east-1"}).json()
    assert [x["id"] for x in east["data"]] == [inst["id"]] and east["meta"]["total"] == 1
    regions = c.get("/regions").json()["regions"]
    assert {"us-east-1", "eu-west-2"} <= {x["slug"] for x in regions}
    bad = c.post("/instances", json={"name": "w", "region": "us-east-1", "plan": "huge"})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "plan"
    assert s.client().get("/instances").status_code == 401
    other = s.client(s.tokens.other)
    assert (
        other.get(f"/instances/{inst['id']}").status_code == 404
        and other.get("/instances").json()["data"] == []
    )
    statuses = {c.get("/regions").status_code for _ in range(150)}  # no rate limit at all
    assert statuses == {200}
    assert not any(h.lower().startswith(("x-ratelimit", "ratelimit")) for h in c.get("/regions").headers)
    gone = c.delete(f"/instances/{inst['id']}")
    assert gone.status_code == 200 and gone.json()["status"] == "terminated"
    assert c.get(f"/instances/{inst['id']}").status_code == 404


# ---------------------------------------------------------------------- Nexos (004)
def test_nexos(start: Callable[..., Served]) -> None:
    s = start(nexos, limit=1000)
    c = s.full
    body = {
        "name": "my-app",
        "github_repo": "octocat/my-app",
        "dockerfile": "Dockerfile",
        "build_context": ".",
        "services": {"postgres": True, "redis": True, "s3": False},
    }
    r = c.post("/projects", json=body)
    assert r.status_code == 201
    project = r.json()
    for key, value in body.items():
        assert project[key] == value
    assert project["slug"] == "my-app" and project["id"].startswith("proj_")
    assert c.post("/projects", json=body).status_code == 409  # the slug is taken
    assert c.get(f"/projects/{project['id']}").json()["name"] == "my-app"
    assert [p["id"] for p in c.get("/projects").json()] == [project["id"]]  # a bare array
    patched = c.patch(f"/projects/{project['id']}", json={"dockerfile": "docker/Dockerfile.prod"})
    assert patched.json()["dockerfile"] == "docker/Dockerfile.prod"

    push = json.dumps(
        {"ref": "refs/heads/main", "after": "9" * 40, "repository": {"full_name": "octocat/my-app"}}
    )
    signature = (
        "sha256=" + hmac.new(project["webhook_secret"].encode(), push.encode(), hashlib.sha256).hexdigest()
    )
    headers = {"X-GitHub-Event": "push", "Content-Type": "application/json"}
    hook = s.client()
    assert (
        hook.post(
            "/webhooks/github", content=push, headers={**headers, "X-Hub-Signature-256": "sha256=0"}
        ).status_code
        == 401
    )
    assert (
        hook.post(
            "/webhooks/github", content=push, headers={**headers, "X-Hub-Signature-256": signature}
        ).status_code
        == 202
    )
    envs = c.get(f"/projects/{project['id']}/environments").json()
    assert [e["branch"] for e in envs] == ["main"] and envs[0]["status"] == "building"
    env_id = envs[0]["id"]
    assert c.post(f"/environments/{env_id}/pause").status_code == 409  # only a running environment pauses
    s.clock.advance(60)
    assert c.get(f"/environments/{env_id}").json()["status"] == "running"
    assert c.post(f"/environments/{env_id}/pause").json()["status"] == "paused"
    assert c.post(f"/environments/{env_id}/resume").json()["status"] == "running"
    assert c.post(f"/environments/{env_id}/restart").json()["status"] == "building"  # alias of /rebuild
    dep = c.get(f"/environments/{env_id}").json()["current_deployment_id"]
    assert c.get(f"/deployments/{dep}").json()["commit_sha"] == "9" * 40
    assert c.get(f"/deployments/{dep}/logs").status_code == 200

    var = c.put(f"/projects/{project['id']}/env-vars", json={"key": "DATABASE_POOL_SIZE", "value": "10"})
    assert var.status_code == 200 and var.json()["value"] != "10"  # masked
    assert [v["value"] != "10" for v in c.get(f"/projects/{project['id']}/env-vars").json()] == [True]
    quota = c.get("/quota").json()
    assert (
        quota["plan"] == "pro" and quota["usage"]["projects"] == 1 and quota["limits"]["max_projects"] == 25
    )

    key = c.post("/auth/api-keys", json={"name": "ci-bot"}).json()
    assert key["key"].startswith("nxs_")  # shown once
    assert s.client(key["key"]).get("/projects").status_code == 200
    assert all(k["key"] != key["key"] for k in c.get("/auth/api-keys").json())  # masked when listed
    assert c.delete(f"/auth/api-keys/{key['id']}").status_code == 204
    assert s.client(key["key"]).get("/projects").status_code == 401
    assert s.client().get("/projects").status_code == 401
    assert s.client("nxs_00000000_" + "0" * 32).get("/projects").status_code == 401
    assert s.client().get("/auth/github", follow_redirects=False).status_code == 302

    other = s.client(s.tokens.other)
    assert other.get(f"/projects/{project['id']}").status_code == 404 and other.get("/projects").json() == []
    assert other.post("/projects", json=body).status_code == 201  # slugs are unique per account only
    assert c.delete(f"/projects/{project['id']}").status_code == 204
    assert c.get(f"/projects/{project['id']}").status_code == 404
    assert c.get(f"/environments/{env_id}").status_code == 404


def test_nexos_rate_limit_headers_are_seconds(start: Callable[..., Served]) -> None:
    s = start(nexos, limit=3, window=30)
    c = s.full
    answers = [c.get("/projects") for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert answers[0].headers["X-RateLimit-Reset"] == "30"  # seconds until a slot frees, not an epoch
    assert answers[2].headers["X-RateLimit-Remaining"] == "0"
    s.clock.advance(30)
    assert c.get("/projects").status_code == 200


# ---------------------------------------------------------------------- planted defects
def _nurosentrix_setup(s: Served) -> dict[str, Any]:
    c = s.full
    sid = c.post("/servers", json=SERVER).json()["data"]["id"]
    return {"server": sid}


def check_readonly_can_delete(s: Served) -> bool:
    if s.module is cloudnexus_com:
        sid = s.full.post("/servers", json={"name": "a", "plan": "pro", "region": "us-east-1"}).json()[
            "data"
        ]["id"]
    else:
        sid = _nurosentrix_setup(s)["server"]
    return s.client(s.tokens.limited).delete(f"/servers/{sid}").status_code in (200, 204)


def check_total_counts_other_accounts(s: Served) -> bool:
    other = s.client(s.tokens.other)
    if s.module is cloudnexus_io:
        for i in range(3):
            other.post("/instances", json={"name": f"o{i}", "region": "us-east-1", "plan": "pro"})
        return int(s.full.get("/instances").json()["meta"]["total"]) != 0
    body = {"name": "o", "plan": "pro", "region": "us-east-1"} if s.module is cloudnexus_com else SERVER
    for i in range(3):
        other.post("/servers", json={**body, "name": f"o{i}"})
    return int(s.full.get("/servers").json()["meta"]["total"]) != 0


def check_cross_account_restore(s: Served) -> bool:
    other = s.client(s.tokens.other)
    sid = other.post("/servers", json=SERVER).json()["data"]["id"]
    s.clock.advance(5)
    iid = other.post("/instances", json=instance_body(sid)).json()["data"]["id"]
    s.clock.advance(5)
    bid = other.post(f"/instances/{iid}/backups").json()["data"]["id"]
    s.clock.advance(5)
    return s.full.post(f"/backups/{bid}/restore").status_code in (200, 202)


def check_ignored_filter(s: Served) -> bool:
    c = s.full
    if s.module is cloudnexus_io:
        c.post("/instances", json={"name": "eu", "region": "eu-west-2", "plan": "pro"})
        return bool(c.get("/instances", params={"region": "us-east-1"}).json()["data"])
    body = {"name": "p", "plan": "pro", "region": "us-east-1"} if s.module is cloudnexus_com else SERVER
    c.post("/servers", json=body)  # provisioning
    return bool(c.get("/servers", params={"status": "active"}).json()["data"])


def check_enum_500(s: Served) -> bool:
    c = s.full
    if s.module is cloudnexus_io:
        r = c.post("/instances", json={"name": "w", "region": "us-east-1", "plan": 7})
    elif s.module is cloudnexus_com:
        db = {"engine": 1, "version": "15.4", "plan": "standard", "name": "d", "region": "us-east-1"}
        r = c.post("/databases", json=db)
    else:
        sid = _nurosentrix_setup(s)["server"]
        iid = c.post("/instances", json=instance_body(sid)).json()["data"]["id"]
        r = c.post(f"/instances/{iid}/actions", json={"action": 1})
    assert r.status_code == 500 or 400 <= r.status_code < 500, r.text
    return r.status_code == 500


CHECKS: dict[str, Callable[[Served], bool]] = {
    "readonly-can-delete": check_readonly_can_delete,
    "total-counts-other-accounts": check_total_counts_other_accounts,
    "cross-account-restore": check_cross_account_restore,
    "ignored-filter": check_ignored_filter,
    "enum-500": check_enum_500,
}
CASES = [
    (module, defect)
    for module in (nurosentrix_a, nurosentrix_b, cloudnexus_com, cloudnexus_io, nexos)
    for defect in module.DEFECTS
]


def test_every_defect_is_described_checked_and_planted_somewhere() -> None:
    assert set(CHECKS) == set(DEFECTS) == {d for _m, d in CASES}


@pytest.mark.parametrize(
    ("module", "defect"), CASES, ids=[f"{m.__name__.rsplit('.', 1)[-1]}-{d}" for m, d in CASES]
)
def test_planted_defect_is_present_and_absent_when_honest(
    module: ModuleType, defect: str, start: Callable[..., Served]
) -> None:
    assert CHECKS[defect](start(module, delay=5)) is False, "the honest backend must not show it"
    assert CHECKS[defect](start(module, delay=5, defect=defect)) is True, "the planted defect must show"


@pytest.mark.parametrize("module", [nurosentrix_a, cloudnexus_com, cloudnexus_io, nexos])
def test_unknown_defect_is_refused(module: ModuleType) -> None:
    with pytest.raises(ValueError, match="unknown defect"):
        module.make_app(defect="no-such-defect")


@pytest.mark.parametrize(
    ("module", "path", "allowed"),
    [
        (nurosentrix_a, "/servers/srv_x", {"GET", "HEAD", "DELETE"}),  # no PATCH: our spec's inferred update
        (nurosentrix_b, "/settings", {"GET", "HEAD"}),
        (cloudnexus_com, "/databases/db_x", {"GET", "HEAD"}),
        (cloudnexus_io, "/instances", {"GET", "HEAD", "POST"}),
        (nexos, "/projects/proj_x", {"GET", "HEAD", "PATCH", "DELETE"}),
    ],
)
def test_undeclared_method_is_405_with_every_allowed_method(
    module: ModuleType, path: str, allowed: set[str], start: Callable[..., Served]
) -> None:
    r = start(module).full.request("PUT", path, json={})
    assert r.status_code == 405
    assert {m.strip() for m in r.headers["Allow"].split(",")} == allowed


ODD = [None, 1.5, True, "é😀\u0301", [1], {"a": 1}]  # null, number, boolean, non-ASCII text, array, object


def _bodies(s: Served) -> list[tuple[str, str, Any]]:
    """(method, path, a valid body) for every operation of the backend that takes a JSON body."""
    c = s.full
    if s.module in NUROSENTRIX:
        sid = c.post("/servers", json=SERVER).json()["data"]["id"]
        iid = c.post("/instances", json=instance_body(sid)).json()["data"]["id"]
        bid = c.post(f"/instances/{iid}/backups").json()["data"]["id"]
        return [
            ("POST", "/auth/login", {"email": "user@example.com", "password": "your-password"}),
            ("POST", "/servers", SERVER),
            ("POST", "/instances", instance_body(sid, 2)),
            ("POST", f"/instances/{iid}/actions", {"action": "stop"}),
            ("POST", f"/instances/{iid}/clone", {"name": "staging", "backup_id": bid, "neutralize": True}),
        ]
    if s.module is cloudnexus_com:
        return [
            ("POST", "/servers", {"name": "w", "plan": "pro", "region": "us-east-1", "ssh_keys": ["k"]}),
            (
                "POST",
                "/databases",
                {"engine": "redis", "version": "7.2", "plan": "s", "name": "d", "region": "r"},
            ),
        ]
    if s.module is cloudnexus_io:
        return [
            ("POST", "/instances", {"name": "w", "region": "us-east-1", "plan": "pro", "ssh_keys": ["k"]})
        ]
    pid = c.post("/projects", json={"name": "odd", "github_repo": "octocat/odd"}).json()["id"]
    return [
        ("POST", "/projects", {"name": "p2", "github_repo": "o/r", "services": {"postgres": True}}),
        ("PATCH", f"/projects/{pid}", {"name": "p3", "services": {"redis": True}}),
        ("PUT", f"/projects/{pid}/env-vars", {"key": "A", "value": "1"}),
        ("POST", "/auth/api-keys", {"name": "k"}),
        ("POST", "/webhooks/github", {"ref": "refs/heads/x", "repository": {"full_name": "octocat/odd"}}),
    ]


@pytest.mark.parametrize(
    "module", [*NUROSENTRIX, cloudnexus_com, cloudnexus_io, nexos], ids=lambda m: m.__name__
)
def test_odd_json_values_are_refused_never_a_500(module: ModuleType, start: Callable[..., Served]) -> None:
    """Every field of every body, and the body itself, replaced by values of other JSON types:
    an honest backend refuses them (4xx) or accepts them, never crashes."""
    s = start(module, window=3600, **({"limit": 100_000} if module in (cloudnexus_com, nexos) else {}))
    crashes = []
    headers = {"X-GitHub-Event": "push"}
    for method, path, body in _bodies(s):
        variants = [*ODD, *({**body, k: odd} for k in body for odd in ODD)]
        for variant in variants:
            if s.module in NUROSENTRIX and method == "POST" and path in ("/servers", "/instances"):
                s.clock.advance(3600)  # keep clear of the documented 20 creates a minute
            r = s.full.request(method, path, json=variant, headers=headers)
            if r.status_code >= 500:
                crashes.append(f"{method} {path} {json.dumps(variant, ensure_ascii=False)}: {r.status_code}")
    assert crashes == []
