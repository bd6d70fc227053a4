"""Tests of the blind CloudNexus (.com, v1.4.2) backend: every documented
behaviour holds on the honest app, and every planted defect breaks its probe."""

from __future__ import annotations

import importlib.util
import pathlib
import re

import pytest
from starlette.testclient import TestClient

_spec = importlib.util.spec_from_file_location(
    "blind_cloudnexus_com", pathlib.Path(__file__).with_name("cloudnexus_com.py")
)
cn = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cn)

B = "/v1"
T0 = 1_700_000_040.0  # a multiple of 2 and of 60
SERVER = {
    "name": "production-web-01",
    "plan": "pro",
    "region": "us-east-1",
    "image": "ubuntu-22.04",
    "ssh_keys": ["key_8f3k29", "key_9d2m41"],
}
DB = {
    "engine": "postgresql",
    "version": "15.4",
    "plan": "standard",
    "name": "app-db-prod",
    "region": "us-east-1",
}


class Env:
    def __init__(self, defect=None, window=2.0, delay=5.0):
        self.t = T0
        self.app = cn.make_app(window=window, delay=delay, defect=defect, clock=lambda: self.t)
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

    def server(self, tok=None, **over):
        r = self.post("/servers", {**SERVER, **over}, tok)
        assert r.status_code == 201, r.text
        return r.json()["data"]

    def database(self, tok=None, **over):
        r = self.post("/databases", {**DB, **over}, tok)
        assert r.status_code == 201, r.text
        return r.json()["data"]


def err(r, status, code):
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert body["status"] == "error" and body["error"]["code"] == code, body
    return body["error"]


def success(r, status=200):
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert body["status"] == "success", body
    assert body["meta"]["request_id"].startswith("req_")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["meta"]["timestamp"])
    return body


# ---- probes ----------------------------------------------------------------


def p_cross_account_read(e):
    s = e.server()
    err(e.get(f"/servers/{s['id']}", e.tok.other), 404, "not_found")
    assert e.get("/servers", e.tok.other).json()["data"] == []
    success(e.get(f"/servers/{s['id']}", e.tok.same_account))


def p_cross_account_list(e):
    e.server()
    assert e.get("/servers", e.tok.other).json()["data"] == []


def p_cross_account_delete(e):
    d = e.database()
    err(e.delete(f"/databases/{d['id']}", e.tok.other), 404, "not_found")
    err(e.get(f"/databases/{d['id']}", e.tok.other), 404, "not_found")
    success(e.get(f"/databases/{d['id']}"))
    assert success(e.delete(f"/databases/{d['id']}"))["data"]["status"] == "deleted"
    err(e.get(f"/databases/{d['id']}"), 404, "not_found")


def p_readonly_can_write(e):
    success(e.get("/servers", e.tok.limited))
    success(e.get("/databases", e.tok.limited))
    assert (
        err(e.post("/servers", SERVER, e.tok.limited), 403, "forbidden")["required_scope"] == "servers:write"
    )
    err(e.post("/databases", DB, e.tok.limited), 403, "forbidden")
    s = e.server()
    err(e.delete(f"/servers/{s['id']}", e.tok.limited), 403, "forbidden")
    assert len(e.get("/servers").json()["data"]) == 1


def p_unknown_key_accepted(e):
    for h in (
        {},
        {"Authorization": "Bearer cn_live_sk_4f29"},
        {"Authorization": "Token " + e.tok.full},
        {"Authorization": "Bearer " + e.tok.full + "x"},
    ):
        err(e.c.get(B + "/servers", headers=h), 401, "unauthorized")


def p_unauthorized_is_403(e):
    r = e.c.get(B + "/servers")
    assert r.status_code == 401
    assert r.json()["error"] == {"code": "unauthorized", "message": "Invalid or missing API key."}


def p_envelope_status_wrong(e):
    assert e.get("/servers").json()["status"] == "success"
    assert success(e.post("/servers", SERVER), 201)["data"]["name"] == SERVER["name"]


def p_meta_missing(e):
    success(e.get("/servers"))
    success(e.post("/databases", DB), 201)


def p_plan_optional(e):
    for field in ("name", "plan", "region"):
        body = {k: v for k, v in SERVER.items() if k != field}
        assert err(e.post("/servers", body), 400, "missing_parameter")["param"] == field
    assert e.get("/servers").json()["meta"]["pagination"]["total"] == 0


def p_image_default_wrong(e):
    s = e.server(image=None)
    assert s["image"] == "ubuntu-22.04"
    assert e.server(image="debian-12")["image"] == "debian-12"


def p_create_status_200(e):
    body = success(e.post("/servers", SERVER), 201)
    d = body["data"]
    assert set(d) >= {"id", "name", "plan", "region", "status", "ipv4", "created_at"}
    assert d["id"].startswith("srv_") and d["status"] == "provisioning"
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", d["ipv4"])
    assert {k: d[k] for k in ("name", "plan", "region")} == {k: SERVER[k] for k in ("name", "plan", "region")}
    assert d["ssh_keys"] == SERVER["ssh_keys"]


def p_created_active(e):
    s = e.server()
    assert s["status"] == "provisioning"
    e.advance(4.5)
    assert e.get(f"/servers/{s['id']}").json()["data"]["status"] == "provisioning"


def p_never_provisions(e):
    s = e.server()
    e.advance(5)
    assert e.get(f"/servers/{s['id']}").json()["data"]["status"] == "active"


def p_status_filter_ignored(e):
    e.server(name="a"), e.server(name="b")
    e.advance(5)
    e.server(name="c")
    prov = e.get("/servers?status=provisioning").json()
    assert [s["name"] for s in prov["data"]] == ["c"] and prov["meta"]["pagination"]["total"] == 1
    assert [s["name"] for s in e.get("/servers", params={"status": "active"}).json()["data"]] == ["a", "b"]
    assert e.get("/servers?status=suspended").json()["data"] == []
    err(e.get("/servers?status=deleted"), 400, "invalid_parameter")


def _many(e, n):
    for k in range(n):
        if k % 100 == 0:
            e.backend.counters.clear()
        e.server(name=f"s{k}")
    e.backend.counters.clear()


def p_per_page_max_ignored(e):
    _many(e, 3)
    assert err(e.get("/servers?per_page=101"), 400, "invalid_parameter")["param"] == "per_page"
    assert len(e.get("/servers?per_page=100").json()["data"]) == 3


def p_pagination_total_wrong(e):
    _many(e, 25)
    e.server(e.tok.other, name="theirs")
    seen = []
    for page, n in ((1, 10), (2, 10), (3, 5), (4, 0)):
        body = success(e.get(f"/servers?page={page}&per_page=10"))
        assert body["meta"]["pagination"] == {"page": page, "per_page": 10, "total": 25, "total_pages": 3}
        assert len(body["data"]) == n
        seen += [s["name"] for s in body["data"]]
    assert seen == [f"s{k}" for k in range(25)]


def p_default_per_page_wrong(e):
    _many(e, 25)
    body = e.get("/servers").json()
    assert len(body["data"]) == 20 and body["meta"]["pagination"]["per_page"] == 20
    assert body["meta"]["pagination"]["page"] == 1


def p_page_ignored(e):
    _many(e, 5)
    first = [s["id"] for s in e.get("/servers?per_page=2").json()["data"]]
    second = [s["id"] for s in e.get("/servers?page=2&per_page=2").json()["data"]]
    assert len(second) == 2 and not set(first) & set(second)


def p_validation_is_422(e):
    err(e.post("/servers", {"plan": "pro"}), 400, "missing_parameter")
    err(e.post("/servers", {**SERVER, "region": "Mars"}), 400, "invalid_parameter")
    err(e.post("/servers", {**SERVER, "ssh_keys": "key_1"}), 400, "invalid_parameter")
    err(e.get("/servers?page=0"), 400, "invalid_parameter")


def p_rate_limit_10pct_over(e):
    for k in range(120):
        r = e.get("/servers")
        assert r.status_code == 200 and r.headers["X-RateLimit-Remaining"] == str(119 - k)
    r = e.get("/servers")
    err(r, 429, "rate_limit_exceeded")
    assert r.headers["Retry-After"] == "2" and r.headers["X-RateLimit-Limit"] == "120"
    success(e.get("/servers", e.tok.same_account))  # per key
    e.advance(2)
    success(e.get("/servers"))


def p_retry_after_short(e):
    e.advance(0.5)
    for _ in range(120):
        e.get("/servers")
    r = e.get("/servers")
    assert r.status_code == 429
    wait = int(r.headers["Retry-After"])
    assert wait >= 1.5
    e.advance(wait)
    success(e.get("/servers"))


def p_engine_unchecked(e):
    for engine in ("postgresql", "mysql", "redis", "mongodb"):
        d = e.database(engine=engine, version=None)
        assert d["engine"] == engine and d["status"] == "provisioning" and d["version"]
    assert (
        err(e.post("/databases", {**DB, "engine": "oracle"}), 400, "invalid_parameter")["param"] == "engine"
    )


def p_non_ascii_500(e):
    s = e.server(name="サーバー-ü-01")
    assert e.get(f"/servers/{s['id']}").json()["data"]["name"] == "サーバー-ü-01"
    assert e.database(name="база")["name"] == "база"


def p_full_key_forbidden(e):
    e.database()


def p_unknown_id_found(e):
    err(e.get("/servers/srv_nothing0"), 404, "not_found")


PROBES = {name[2:]: fn for name, fn in globals().items() if name.startswith("p_")}


# ---- honest-only behaviour --------------------------------------------------


def h_database_lifecycle_and_filters(e):
    d = success(e.post("/databases", DB), 201)["data"]
    assert d["id"].startswith("db_") and d["port"] == 5432 and d["version"] == "15.4"
    for f in ("engine", "plan", "name", "region"):
        body = {k: v for k, v in DB.items() if k != f}
        assert err(e.post("/databases", body), 400, "missing_parameter")["param"] == f
    e.database(engine="redis")
    assert [x["engine"] for x in e.get("/databases?engine=redis").json()["data"]] == ["redis"]
    e.advance(5)
    assert e.get(f"/databases/{d['id']}").json()["data"]["status"] == "active"
    assert e.get("/databases?status=active").json()["meta"]["pagination"]["total"] == 2


def h_hostile_input(e):
    H = {**e.h(), "Content-Type": "application/json"}
    for raw in (
        b"\xff\xfe",
        b"[" * 50000,
        b"{",
        b'{"name": Infinity}',
        b"[]",
        b"1" * 5000,
        b"",
        b'{"name": "\\udfff", "plan": "pro", "region": "us-east-1"}',
    ):
        err(e.c.post(B + "/servers", content=raw, headers=H), 400, "invalid_request")
    err(
        e.c.post(B + "/servers", content=b"name=x", headers={**e.h(), "Content-Type": "text/plain"}),
        400,
        "invalid_request",
    )
    err(e.post("/servers", {"name": {"a": 1}, "plan": ["pro"], "region": 10**400}), 400, "invalid_parameter")
    err(e.post("/servers", {**SERVER, "name": "x" * 101}), 400, "invalid_parameter")
    for q in ("page=abc", "per_page=-5", "page=" + "9" * 500, "page=%FF"):
        err(e.get("/servers?" + q), 400, "invalid_parameter")
    err(e.get("/servers/%FF%FE"), 404, "not_found")
    err(e.get("/nothing"), 404, "not_found")
    r = e.c.put(B + "/servers", headers=e.h())
    err(r, 405, "method_not_allowed")
    assert "POST" in r.headers["Allow"]


def h_delete_server_and_revocation(e):
    s = e.server()
    body = success(e.delete(f"/servers/{s['id']}"))
    assert body["data"]["id"] == s["id"] and body["data"]["status"] == "deleted"
    err(e.get(f"/servers/{s['id']}"), 404, "not_found")
    e.tok.revoke(e.tok.same_account)
    err(e.get("/servers", e.tok.same_account), 401, "unauthorized")
    success(e.get("/servers"))


HONEST = {name[2:]: fn for name, fn in globals().items() if name.startswith("h_")}


@pytest.mark.parametrize("name", sorted(PROBES) + sorted(HONEST))
def test_honest(name):
    (PROBES.get(name) or HONEST[name])(Env())


@pytest.mark.parametrize("defect", sorted(cn.DEFECTS))
def test_defect_breaks_its_probe(defect):
    assert defect in PROBES, f"no probe for {defect}"
    with pytest.raises((AssertionError, KeyError, TypeError, IndexError)):
        PROBES[defect](Env(defect))


def test_every_probe_is_a_defect():
    assert set(PROBES) == set(cn.DEFECTS)


def test_default_window_is_a_minute():
    e = Env(window=60.0)
    for _ in range(120):
        e.get("/servers")
    r = e.get("/servers")
    assert r.status_code == 429 and r.headers["Retry-After"] == "60"
    assert r.headers["X-RateLimit-Reset"] == str(int(T0) + 60)
