"""Tests of the blind Nurosentrix backend: every documented behaviour holds on
the honest app, and every planted defect breaks the probe of its behaviour."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest
from starlette.testclient import TestClient

_spec = importlib.util.spec_from_file_location(
    "blind_nurosentrix", pathlib.Path(__file__).with_name("nurosentrix.py")
)
nsx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nsx)

B = "/api/v1"
T0 = 1_700_000_000.0  # a multiple of the 2 s window
UNAUTH = {
    "success": False,
    "error": {"code": "UNAUTHORIZED", "message": "Invalid or missing authentication token"},
}


class Env:
    def __init__(self, defect=None, window=2.0, delay=5.0):
        self.t = T0
        self.app = nsx.make_app(window=window, delay=delay, defect=defect, clock=lambda: self.t)
        self.backend = self.app.state.backend
        self.tok = self.backend.test_tokens()
        self.c = TestClient(self.app)

    def h(self, tok=None):
        return {"Authorization": f"Bearer {tok or self.tok.full}"}

    def get(self, path, tok=None, **kw):
        return self.c.get(B + path, headers=self.h(tok), **kw)

    def post(self, path, body=None, tok=None):
        return self.c.post(B + path, json=body, headers=self.h(tok))

    def delete(self, path, tok=None):
        return self.c.delete(B + path, headers=self.h(tok))

    def advance(self, s):
        self.t += s

    def reset_limits(self):
        self.backend.counters.clear()

    def server(self, name="web-1", tok=None):
        r = self.post(
            "/servers",
            {
                "name": name,
                "provider": "digitalocean",
                "region": "nyc1",
                "size": "s-4vcpu-8gb",
                "ssh_key_id": "key_xyz789",
            },
            tok,
        )
        assert r.status_code == 201, r.text
        return r.json()["data"]

    def instance(self, tok=None):
        s = self.server(tok=tok)
        self.advance(5)
        r = self.post(
            "/instances",
            {
                "name": "production-crm",
                "server_id": s["id"],
                "odoo_version": "17.0",
                "edition": "community",
                "database_name": "production_crm",
                "admin_email": "admin@example.com",
                "domain": "crm.example.com",
            },
            tok,
        )
        assert r.status_code == 201, r.text
        self.advance(5)
        return r.json()["data"]

    def backup(self, tok=None):
        i = self.instance(tok)
        r = self.post(f"/instances/{i['id']}/backups", {}, tok)
        assert r.status_code == 201, r.text
        self.advance(5)
        return i, r.json()["data"]


def err(r, status, code):
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert body["success"] is False and body["error"]["code"] == code, body
    return body["error"]


# ---- probes: each asserts a documented behaviour (or a stated choice) -------


def p_cross_account_restore(e):
    i, b = e.backup()
    err(e.post(f"/backups/{b['id']}/restore", {}, e.tok.other), 404, "NOT_FOUND")
    assert e.get(f"/instances/{i['id']}").json()["data"]["status"] == "running"
    r = e.post(f"/backups/{b['id']}/restore", {})
    assert r.status_code == 202 and e.get(f"/instances/{i['id']}").json()["data"]["status"] == "restoring"
    e.advance(5)
    assert e.get(f"/instances/{i['id']}").json()["data"]["status"] == "running"


def p_cross_account_subresources(e):
    i, b = e.backup()
    o = e.tok.other
    err(e.post(f"/instances/{i['id']}/actions", {"action": "stop"}, o), 404, "NOT_FOUND")
    err(e.post(f"/instances/{i['id']}/clone", {"name": "x", "backup_id": b["id"]}, o), 404, "NOT_FOUND")
    err(e.get(f"/instances/{i['id']}/backups", o), 404, "NOT_FOUND")
    err(e.post(f"/instances/{i['id']}/backups", {}, o), 404, "NOT_FOUND")
    err(e.get(f"/instances/{i['id']}", o), 404, "NOT_FOUND")
    assert e.get(f"/instances/{i['id']}").json()["data"]["status"] == "running"


def p_cross_account_read(e):
    s = e.server()
    err(e.get(f"/servers/{s['id']}", e.tok.other), 404, "NOT_FOUND")
    assert e.get("/servers", e.tok.other).json()["meta"]["total"] == 0
    err(e.delete(f"/servers/{s['id']}", e.tok.other), 404, "NOT_FOUND")
    assert e.get(f"/servers/{s['id']}", e.tok.same_account).status_code == 200


def p_revoked_token_works(e):
    assert e.get("/servers", e.tok.same_account).status_code == 200
    e.tok.revoke(e.tok.same_account)
    r = e.get("/servers", e.tok.same_account)
    assert r.status_code == 401 and r.json() == UNAUTH
    assert e.get("/servers").status_code == 200


def p_no_auth_required(e):
    r = e.c.get(B + "/servers")
    assert r.status_code == 401 and r.json() == UNAUTH


def p_readonly_can_write(e):
    i, b = e.backup()
    ro = e.tok.limited
    assert e.get("/servers", ro).status_code == 200
    assert e.get(f"/instances/{i['id']}/backups", ro).status_code == 200
    for r, perm in (
        (
            e.post(
                "/servers", {"name": "x", "provider": "hetzner", "region": "fsn1", "size": "s-1vcpu-2gb"}, ro
            ),
            "servers:write",
        ),
        (e.delete(f"/instances/{i['id']}", ro), "instances:write"),
        (e.post(f"/instances/{i['id']}/actions", {"action": "stop"}, ro), "instances:actions"),
        (e.post(f"/instances/{i['id']}/backups", {}, ro), "backups:write"),
        (e.post(f"/backups/{b['id']}/restore", {}, ro), "backups:restore"),
    ):
        assert err(r, 403, "FORBIDDEN")["message"] == f"Token does not have permission: {perm}"
    assert e.get(f"/instances/{i['id']}").json()["data"]["status"] == "running"


def p_forbidden_wrong_body(e):
    r = e.post("/servers", {}, e.tok.limited)
    assert r.status_code == 403 and r.json() == {
        "success": False,
        "error": {"code": "FORBIDDEN", "message": "Token does not have permission: servers:write"},
    }


def p_forbidden_wrong_code(e):
    r = e.post("/servers", {}, e.tok.limited)
    assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN", r.text


def p_unauthorized_wrong_body(e):
    for headers in (
        {},
        {"Authorization": "Bearer nsx_live_nope"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer " + e.tok.full[9:]},
        {"Authorization": "Bearer a.b.c"},
    ):
        r = e.c.get(B + "/servers", headers=headers)
        assert r.status_code == 401 and r.json() == UNAUTH, (headers, r.text)


def p_test_token_not_sandboxed(e):
    s = e.server()
    assert e.tok.test.startswith("nsx_test_") and e.tok.full.startswith("nsx_live_")
    assert e.get("/servers", e.tok.test).json()["meta"]["total"] == 0
    err(e.get(f"/servers/{s['id']}", e.tok.test), 404, "NOT_FOUND")
    e.server(tok=e.tok.test)
    assert e.get("/servers").json()["meta"]["total"] == 1


def p_login_any_password(e):
    r = e.c.post(B + "/auth/login", json={"email": e.tok.email, "password": "wrong-password"})
    assert r.status_code == 401 and r.json()["success"] is False
    r = e.c.post(B + "/auth/login", json={"email": e.tok.email, "password": e.tok.password})
    assert r.status_code == 200, r.text
    d = r.json()["data"]
    assert d["user"] == {"id": "usr_alpha01", "email": e.tok.email, "name": "Alice Example"}
    assert d["token"].count(".") == 2 and d["expires_at"].endswith("Z")
    assert e.get("/servers", d["token"]).status_code == 200
    e.advance(86401)
    assert e.get("/servers", d["token"]).json() == UNAUTH


def p_status_filter_ignored(e):
    e.server("a"), e.server("b")
    e.advance(5)
    e.server("c")
    assert [s["name"] for s in e.get("/servers?status=provisioning").json()["data"]] == ["c"]
    act = e.get("/servers", params={"status": "active"}).json()
    assert act["meta"]["total"] == 2 and {s["status"] for s in act["data"]} == {"active"}
    assert e.get("/servers?status=offline").json()["data"] == []
    err(e.get("/servers?status=bogus"), 422, "VALIDATION_ERROR")


def p_pagination_total_wrong(e):
    for k in range(25):
        if k % 15 == 0:
            e.reset_limits()
        e.server(f"s{k}")
    seen = []
    for page, n in ((1, 10), (2, 10), (3, 5), (4, 0)):
        body = e.get(f"/servers?page={page}&per_page=10").json()
        assert body["meta"] == {"page": page, "per_page": 10, "total": 25}
        assert len(body["data"]) == n
        seen += [s["id"] for s in body["data"]]
    assert len(set(seen)) == 25
    assert e.get("/servers").json()["meta"] == {"page": 1, "per_page": 20, "total": 25}


def p_per_page_uncapped(e):
    for k in range(105):
        if k % 15 == 0:
            e.reset_limits()
        e.server(f"s{k}")
    body = e.get("/servers?per_page=500").json()
    assert len(body["data"]) == 100 and body["meta"]["per_page"] == 100 and body["meta"]["total"] == 105


def p_provisioning_never_completes(e):
    s = e.server()
    assert s["status"] == "provisioning"
    e.advance(4.9)
    assert e.get(f"/servers/{s['id']}").json()["data"]["status"] == "provisioning"
    e.advance(0.1)
    d = e.get(f"/servers/{s['id']}").json()["data"]
    assert d["status"] == "active" and d["ip_address"]
    r = e.post("/instances", {"name": "crm", "server_id": s["id"]})
    assert r.json()["data"]["status"] == "provisioning"
    e.advance(5)
    assert e.get(f"/instances/{r.json()['data']['id']}").json()["data"]["status"] == "running"


def p_server_status_running(e):
    s = e.server()
    e.advance(5)
    assert e.get(f"/servers/{s['id']}").json()["data"]["status"] == "active"


def p_backup_never_completes(e):
    i = e.instance()
    r = e.post(f"/instances/{i['id']}/actions", {"action": "backup"})
    assert r.status_code == 202
    b = r.json()["data"]["backup"]
    assert b["status"] == "in_progress"
    e.advance(5)
    assert e.get(f"/backups/{b['id']}").json()["data"]["status"] == "completed"
    lst = e.get(f"/instances/{i['id']}/backups?status=completed").json()
    assert lst["meta"]["total"] == 1 and lst["data"][0]["id"] == b["id"]


def p_rate_limit_10pct_over(e):
    for _ in range(100):
        assert e.get("/servers").status_code == 200
    r = e.get("/servers", e.tok.same_account)  # the limit is per account
    err(r, 429, "RATE_LIMIT_EXCEEDED")
    assert r.headers["Retry-After"] == "2"
    e.advance(2)
    assert e.get("/servers").status_code == 200
    assert e.get("/servers", e.tok.other).status_code == 200


def p_create_limit_missing(e):
    for k in range(20):
        e.server(f"s{k}")
    err(
        e.post("/servers", {"name": "x", "provider": "vultr", "region": "ewr", "size": "s-1vcpu-1gb"}),
        429,
        "RATE_LIMIT_EXCEEDED",
    )
    assert e.get("/servers").status_code == 200  # reads still allowed
    e.advance(2)
    e.server("after")


def p_retry_after_short(e):
    e.advance(0.5)
    for _ in range(100):
        e.get("/servers")
    r = e.get("/servers")
    assert r.status_code == 429
    wait = int(r.headers["Retry-After"])
    assert wait >= 1.5 - 1e-9
    e.advance(wait)
    assert e.get("/servers").status_code == 200


def p_clone_password_missing(e):
    i, b = e.backup()
    r = e.post(
        f"/instances/{i['id']}/clone",
        {
            "name": "staging-crm",
            "domain": "staging-crm.example.com",
            "backup_id": b["id"],
            "neutralize": True,
            "restore_database": True,
            "restore_filestore": True,
        },
    )
    assert r.status_code == 201, r.text
    d = r.json()["data"]
    assert isinstance(d.get("admin_password"), str) and len(d["admin_password"]) >= 12
    assert (
        d["cloned_from"] == {"instance_id": i["id"], "backup_id": b["id"]} and d["status"] == "provisioning"
    )
    r = e.post(
        f"/instances/{i['id']}/clone", {"name": "s2", "backup_id": b["id"], "admin_password": "s3cret-pass"}
    )
    assert "admin_password" not in r.json()["data"]
    e.advance(5)
    assert e.get(f"/instances/{d['id']}").json()["data"]["status"] == "running"


def p_clone_incomplete_backup(e):
    i = e.instance()
    b = e.post(f"/instances/{i['id']}/backups").json()["data"]
    err(
        e.post(f"/instances/{i['id']}/clone", {"name": "s", "backup_id": b["id"]}),
        409,
        "BACKUP_NOT_COMPLETED",
    )
    err(e.post(f"/backups/{b['id']}/restore"), 409, "BACKUP_NOT_COMPLETED")


def p_server_name_optional(e):
    r = e.post("/servers", {"provider": "digitalocean", "region": "nyc1", "size": "s-4vcpu-8gb"})
    assert err(r, 422, "VALIDATION_ERROR")["details"] == {"field": "name", "reason": "Name is required"}


def p_non_ascii_500(e):
    s = e.server("сервер-é-東京")
    assert e.get(f"/servers/{s['id']}").json()["data"]["name"] == "сервер-é-東京"


def p_error_envelope_wrong(e):
    r = e.post("/servers", {"name": "x", "provider": "digitalocean", "region": "nyc1", "size": "huge"})
    assert r.status_code == 422
    assert r.json() == {
        "success": False,
        "error": {
            "code": "VALIDATION_ERROR",
            "message": "Invalid request parameters",
            "details": {"field": "size", "reason": "Size must look like s-4vcpu-8gb"},
        },
    }


def p_content_type_any(e):
    body = '{"name": "web-9", "provider": "digitalocean", "region": "nyc1", "size": "s-4vcpu-8gb"}'
    r = e.c.post(B + "/servers", content=body, headers={**e.h(), "Content-Type": "text/plain"})
    err(r, 415, "UNSUPPORTED_MEDIA_TYPE")
    r = e.c.post(B + "/servers", content=body, headers={**e.h(), "Content-Type": "application/json"})
    assert r.status_code == 201, r.text


def p_stop_keeps_running(e):
    i = e.instance()
    assert e.post(f"/instances/{i['id']}/actions", {"action": "stop"}).status_code == 202
    assert e.get(f"/instances/{i['id']}").json()["data"]["status"] == "stopped"


PROBES = {name[2:]: fn for name, fn in globals().items() if name.startswith("p_")}


# ---- honest-only behaviour --------------------------------------------------


def h_envelope_and_server_fields(e):
    s = e.server()
    assert set(s) >= {"id", "name", "ip_address", "status", "provider", "region", "specs", "created_at"}
    assert s["id"].startswith("srv_") and s["specs"] == {"cpu": 4, "memory_gb": 8, "disk_gb": 160}
    body = e.get(f"/servers/{s['id']}").json()
    assert body["success"] is True and body["data"]["id"] == s["id"]
    r = e.delete(f"/servers/{s['id']}")
    assert r.status_code == 200 and r.json()["data"] == {"id": s["id"], "deleted": True}
    err(e.get(f"/servers/{s['id']}"), 404, "NOT_FOUND")


def h_actions_lifecycle(e):
    i = e.instance()
    a = lambda act: e.post(f"/instances/{i['id']}/actions", {"action": act})  # noqa: E731
    err(a("start"), 409, "INVALID_STATE")
    assert a("stop").json()["data"]["instance"]["status"] == "stopped"
    assert a("start").json()["data"]["instance"]["status"] == "running"
    assert a("restart").json()["data"]["instance"]["status"] == "restarting"
    e.advance(5)
    assert e.get(f"/instances/{i['id']}").json()["data"]["status"] == "running"
    err(a("explode"), 422, "VALIDATION_ERROR")
    err(e.post(f"/instances/{i['id']}/actions", {}), 422, "VALIDATION_ERROR")


def h_validation_and_hostile_input(e):
    H = {**e.h(), "Content-Type": "application/json"}
    for raw, status in (
        (b"\xff\xfe\x00", 400),
        (b"[" * 50000 + b"]" * 50000, 400),
        (b"{bad", 400),
        (b'{"name": NaN}', 400),
        (b"[1,2]", 422),
        (b"9" * 5000, 400),
        (b'{"name": "\\ud800", "provider": "aws", "region": "nyc1", "size": "s-1vcpu-1gb"}', 400),
    ):
        r = e.c.post(B + "/servers", content=raw, headers=H)
        assert r.status_code == status and r.json()["success"] is False, (raw[:10], r.text)
    r = e.c.post(B + "/servers", content=b'{"name":"x"}', headers={**e.h(), "Content-Type": "text/plain"})
    err(r, 415, "UNSUPPORTED_MEDIA_TYPE")
    big = {"name": "x", "provider": "digitalocean", "region": "nyc1", "size": "s-" + "9" * 4000 + "vcpu-8gb"}
    err(e.post("/servers", big), 422, "VALIDATION_ERROR")
    err(
        e.post("/servers", {"name": ["x"], "provider": {}, "region": 1, "size": None}),
        422,
        "VALIDATION_ERROR",
    )
    for q in ("page=0", "page=-1", "per_page=abc", "page=" + "9" * 400, "per_page=1.5"):
        err(e.get("/servers?" + q), 422, "VALIDATION_ERROR")
    assert e.get("/servers?page=%FF%FE").status_code == 422
    err(e.get("/servers/%E2%98%83%FF"), 404, "NOT_FOUND")
    err(e.get("/nowhere"), 404, "NOT_FOUND")
    r = e.c.patch(B + "/servers", headers=e.h())
    assert r.status_code == 405 and "GET" in r.headers["Allow"]


def h_request_id_and_instances(e):
    r = e.c.get(B + "/servers", headers={**e.h(), "X-Request-ID": "trace-42"})
    assert r.headers["X-Request-ID"] == "trace-42"
    s = e.server()
    err(e.post("/instances", {"name": "crm"}), 422, "VALIDATION_ERROR")
    err(e.post("/instances", {"name": "crm", "server_id": "srv_missing"}), 422, "VALIDATION_ERROR")
    r = e.post("/instances", {"name": "crm", "server_id": s["id"], "admin_password": "given-password"})
    d = r.json()["data"]
    assert r.status_code == 201 and "admin_password" not in d and d["edition"] == "community"
    assert e.get("/instances").json()["meta"] == {"page": 1, "per_page": 20, "total": 1}
    err(e.delete(f"/servers/{s['id']}"), 409, "SERVER_HAS_INSTANCES")
    assert e.delete(f"/instances/{d['id']}").status_code == 200
    assert e.delete(f"/servers/{s['id']}").status_code == 200


def h_settings(e):
    assert e.get("/settings", e.tok.limited).json()["data"]["timezone"] == "UTC"
    err(
        e.c.put(B + "/settings", json={"timezone": "Europe/Paris"}, headers=e.h(e.tok.limited)),
        403,
        "FORBIDDEN",
    )
    r = e.c.put(B + "/settings", json={"timezone": "Europe/Paris"}, headers=e.h())
    assert r.status_code == 200 and r.json()["data"]["timezone"] == "Europe/Paris"


def h_login_validation(e):
    err(e.c.post(B + "/auth/login", json={"email": e.tok.email}), 422, "VALIDATION_ERROR")
    err(
        e.c.post(B + "/auth/login", json={"email": "nobody@example.com", "password": "x"}),
        401,
        "INVALID_CREDENTIALS",
    )
    r = e.c.post(B + "/auth/login", json={"email": e.tok.other_email, "password": e.tok.other_password})
    assert e.get("/servers", r.json()["data"]["token"]).status_code == 200


HONEST = {name[2:]: fn for name, fn in globals().items() if name.startswith("h_")}


@pytest.mark.parametrize("name", sorted(PROBES) + sorted(HONEST))
def test_honest(name):
    (PROBES.get(name) or HONEST[name])(Env())


@pytest.mark.parametrize("defect", sorted(nsx.DEFECTS))
def test_defect_breaks_its_probe(defect):
    assert defect in PROBES, f"no probe for {defect}"
    with pytest.raises((AssertionError, KeyError, TypeError, IndexError)):
        PROBES[defect](Env(defect))


def test_every_probe_is_a_defect():
    assert set(PROBES) == set(nsx.DEFECTS)


def test_default_window_is_a_minute():
    e = Env(window=60.0)
    e.t = 1_699_999_980.0  # a multiple of 60
    for _ in range(100):
        e.get("/servers")
    r = e.get("/servers")
    assert r.status_code == 429 and r.headers["Retry-After"] == "60"
    assert "X-RateLimit-Limit" not in r.headers
