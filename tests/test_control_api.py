"""The control API under /_mock: health, tokens, reset, request log, clock, specs."""

from __future__ import annotations

import re

import pytest
import yaml

from contract import load
from tests.apis import APIS
from tests.conftest import Harness


def test_health_lists_the_apis(harness: Harness) -> None:
    body = harness.client().get("/_mock/health").json()
    assert body["apis"] == {api: load(api).base_path for api in APIS}
    assert body["apis"]["nurosentrix"] == "/nurosentrix/api/v1"  # /<api> + the server URL's path


def test_mint_use_list_and_revoke_a_token(harness: Harness) -> None:
    ctl = harness.client()
    r = ctl.post(
        "/_mock/tokens",
        json={"api": "nurosentrix", "scopes": ["servers:read"], "account": "acme", "name": "ci"},
    )
    assert r.status_code == 201
    minted = r.json()
    assert minted["token"].startswith("nsx_test_") and minted["scopes"] == ["servers:read"]
    assert minted["mode"] == "test" and minted["account"] == "acme" and "hash" not in minted
    api = harness.client("nurosentrix", minted["token"])
    assert api.get("/servers").status_code == 200
    listed = ctl.get("/_mock/tokens", params={"api": "nurosentrix"}).json()["tokens"]
    assert [t["masked"] for t in listed] == [minted["masked"]]
    assert minted["token"] not in str(listed)
    assert ctl.delete(f"/_mock/tokens/{minted['token']}").status_code == 204
    assert api.get("/servers").status_code == 401
    assert ctl.delete(f"/_mock/tokens/{minted['token']}").status_code == 404


def test_a_user_made_through_the_control_api_can_log_in(harness: Harness) -> None:
    ctl = harness.client()
    body = {"api": "nurosentrix", "email": "ci@example.com", "password": "s3cret-pass", "account": "acme"}
    r = ctl.post("/_mock/users", json=body)
    assert r.status_code == 201 and r.json()["email"] == "ci@example.com"
    assert "password" not in r.text and "s3cret" not in r.text
    api = harness.client("nurosentrix", None)
    good = api.post("/auth/login", json={"email": "ci@example.com", "password": "s3cret-pass"})
    assert good.status_code == 200 and "ci@example.com" in good.text  # its session token
    assert api.post("/auth/login", json={"email": "ci@example.com", "password": "wrong"}).status_code == 401
    assert ctl.post("/_mock/users", json={"api": "nurosentrix"}).status_code == 400
    assert ctl.post("/_mock/users", json={"api": "nope", "email": "x@example.com"}).status_code == 400
    too_long = {"api": "nurosentrix", "email": "y@example.com", "password": "p" * 100}
    assert ctl.post("/_mock/users", json=too_long).status_code == 400


def test_defaults_are_every_scope_test_mode_default_account(harness: Harness) -> None:
    minted = harness.client().post("/_mock/tokens", json={"api": "cloudnexus"}).json()
    assert minted["scopes"] == sorted(harness.sandbox.specs["cloudnexus"].scopes)
    assert (minted["mode"], minted["account"]) == ("test", "default")
    assert minted["token"].startswith("cn_test_sk_")
    live = harness.client().post("/_mock/tokens", json={"api": "cloudnexus", "mode": "live"}).json()
    assert live["token"].startswith("cn_live_sk_")


def test_bad_mint_requests_are_400(harness: Harness) -> None:
    ctl = harness.client()
    for body in (
        {},
        {"api": "nope"},
        {"api": "nurosentrix", "mode": "prod"},
        {"api": "nurosentrix", "scopes": ["root"]},
        {"api": "nurosentrix", "scopes": "x"},
        {"api": "nurosentrix", "token": "wrongprefix_123456789"},
    ):
        assert ctl.post("/_mock/tokens", json=body).status_code == 400, body
    assert (
        ctl.post("/_mock/tokens", content=b"{", headers={"Content-Type": "application/json"}).status_code
        == 400
    )


def test_reset_empties_resources_but_keeps_tokens(harness: Harness) -> None:
    c = harness.api("nurosentrix")
    io = harness.api("cloudnexus-io")
    c.post("/servers", json={"name": "a", "provider": "p", "region": "r", "size": "s"})
    io.post("/instances", json={"name": "a", "plan": "pro", "region": "us-east-1"})
    assert harness.client().post("/_mock/reset", json={"api": "nurosentrix"}).status_code == 200
    assert c.get("/servers").json()["meta"]["total"] == 0
    assert io.get("/instances").json()["meta"]["total"] == 1
    harness.client().post("/_mock/reset")
    assert io.get("/instances").json()["meta"]["total"] == 0
    harness.client().post("/_mock/reset", json={"tokens": True})
    assert c.get("/servers").status_code == 401


def test_request_log_shows_status_operation_and_problems_without_secrets(harness: Harness) -> None:
    token = harness.token("nurosentrix")
    c = harness.client("nurosentrix", token)
    c.post("/servers", json={"name": "a"})
    c.get("/servers")
    rows = harness.client().get("/_mock/requests", params={"api": "nurosentrix"}).json()["requests"]
    assert [(r["method"], r["status"], r["operation"]) for r in rows] == [
        ("POST", 400, "createServer"),
        ("GET", 200, "listServers"),
    ]
    assert {"field": "provider", "reason": "is required"} in rows[0]["problems"]
    assert token not in str(rows)


def test_clock_advance_moves_lifecycles(make_harness) -> None:  # type: ignore[no-untyped-def]
    h = make_harness(async_delay=None)
    c = h.api("nurosentrix")
    sid = c.post("/servers", json={"name": "a", "provider": "p", "region": "r", "size": "s"}).json()["data"][
        "id"
    ]
    assert c.get(f"/servers/{sid}").json()["data"]["status"] == "provisioning"
    r = h.client().post("/_mock/clock/advance", json={"seconds": 5})
    assert r.status_code == 200
    assert c.get(f"/servers/{sid}").json()["data"]["status"] == "active"
    assert h.client().post("/_mock/clock/advance", json={"seconds": -1}).status_code == 400


def test_spec_is_served_with_the_sandbox_as_server(harness: Harness) -> None:
    body = harness.client().get("/_mock/specs/cloudnexus").json()
    assert body["servers"] == [{"url": "http://sandbox.test/cloudnexus/v1", "description": "sandbox"}]


def test_unknown_paths(harness: Harness) -> None:
    assert harness.client().get("/_mock/nope").status_code == 404
    r = harness.client().get("/elsewhere")
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"


def test_request_ids_are_echoed_or_generated(harness: Harness) -> None:
    c = harness.api("cloudnexus")
    r = c.get("/servers", headers={"X-Request-ID": "trace-42"})
    assert r.headers["X-Request-ID"] == "trace-42" and r.json()["meta"]["request_id"] == "trace-42"
    r = c.get("/servers")
    generated = r.headers["X-Request-ID"]
    assert generated.startswith("req_") and r.json()["meta"]["request_id"] == generated
    assert r.json()["meta"]["timestamp"] == "2026-01-01T00:00:00Z"
    r = harness.api("nurosentrix").get("/servers", headers={"X-Request-ID": "bad id with spaces"})
    assert r.status_code == 400 and r.headers["X-Request-ID"].startswith("req_")


def test_control_api_spec_is_valid_and_every_route_has_its_handler(harness: Harness) -> None:
    from openapi_spec_validator import validate

    from mock_server import control_routes

    doc = yaml.safe_load(control_routes.SPEC.read_text())
    validate(doc)
    routes = control_routes.routes()
    assert {f"/{r.template}" for r in routes} == set(doc["paths"])
    control = harness.app.control
    assert set(control.handlers) == {r.operation_id for r in routes}
    for r in routes:  # each route reaches its own handler
        path = re.sub(r"\{\w+\}", "x", r.template)
        assert control_routes.match(r.method, path)[0] == r


def test_a_route_without_a_handler_fails_at_load(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    from mock_server import control_routes
    from mock_server.control import ControlApi

    extra = control_routes.Route("shredEverything", "POST", "shred", re.compile("shred"), None)
    documented = control_routes.routes()
    monkeypatch.setattr(control_routes, "routes", lambda: (*documented, extra))
    with pytest.raises(RuntimeError, match="shredEverything"):
        ControlApi(harness.sandbox)


def test_a_body_is_judged_by_its_documented_schema(harness: Harness) -> None:
    ctl = harness.client()
    r = ctl.post("/_mock/clock/advance", json={"seconds": "soon"})
    assert r.status_code == 400 and r.json()["error"]["message"] == "seconds: value is not of type 'number'"
    r = ctl.post("/_mock/tokens", json={"api": "nurosentrix", "name": ""})
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("name: ")


def test_admin_token_protects_the_control_api(harness: Harness) -> None:
    from mock_server.app import SandboxApp
    from tests.sandbox_client import SyncASGIClient

    guarded = SyncASGIClient(SandboxApp(harness.sandbox, admin_token="s3cret-admin"))
    try:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-admin"}):
            r = guarded.post("/_mock/tokens", json={"api": "nurosentrix"}, headers=headers)
            assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"
        r = guarded.post(
            "/_mock/tokens", json={"api": "nurosentrix"}, headers={"Authorization": "Bearer s3cret-admin"}
        )
        assert r.status_code == 201
        token = r.json()["token"]
        # the vendor APIs are not behind the admin token
        assert (
            guarded.get(
                "/nurosentrix/api/v1/servers", headers={"Authorization": f"Bearer {token}"}
            ).status_code
            == 200
        )
    finally:
        guarded.close()
