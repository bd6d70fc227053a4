"""`/_mock/requests` says why a request was refused (`reason`), with the masked token it carried,
and filters by API, status, token; `/_mock/resources` and `/_mock/settling` feed the dashboard."""

from __future__ import annotations

from typing import Any

from tests.conftest import Harness

SERVER = {"name": "web-1", "provider": "digitalocean", "region": "nyc1", "size": "s-1vcpu-1gb"}


def _last(harness: Harness, **params: Any) -> dict[str, Any]:
    rows = harness.client().get("/_mock/requests", params=params).json()["requests"]
    assert rows, params
    return dict(rows[-1])


def test_a_401_says_why_never_an_empty_story(harness: Harness) -> None:
    ctl = harness.client()
    nsx = "/nurosentrix/api/v1/servers"
    c = harness.client()
    assert c.get(nsx).status_code == 401
    assert _last(harness)["reason"].startswith("no token: no `Authorization: Bearer` header")
    assert c.get(nsx, headers={"Authorization": "Basic abc"}).status_code == 401
    assert "is not `Bearer <token>`" in _last(harness)["reason"]

    unknown = "nsx_test_" + "x" * 32
    assert c.get(nsx, headers={"Authorization": f"Bearer {unknown}"}).status_code == 401
    row = _last(harness)
    assert row["reason"].startswith("unknown token (nsx_") and "never minted by this sandbox" in row["reason"]
    assert unknown not in str(row) and row["token"] == row["reason"].split("(")[1].split(")")[0]

    minted = ctl.post("/_mock/tokens", json={"api": "nurosentrix"}).json()
    assert ctl.delete(f"/_mock/tokens/{minted['id']}").status_code == 204
    assert c.get(nsx, headers={"Authorization": f"Bearer {minted['token']}"}).status_code == 401
    row = _last(harness)
    assert row["reason"] == f"{minted['id']} ({minted['masked']}) was revoked at 2026-01-01T00:00:00Z"
    assert (row["token"], row["token_id"]) == (minted["masked"], minted["id"])
    assert minted["token"] not in str(row)

    other = harness.token("cloudnexus")
    assert c.get(nsx, headers={"Authorization": f"Bearer {other}"}).status_code == 401
    assert _last(harness)["reason"].endswith("is a token of cloudnexus, not of nurosentrix")
    foreign = "cn_test_sk_" + "y" * 32
    assert c.get(nsx, headers={"Authorization": f"Bearer {foreign}"}).status_code == 401
    assert "its prefix cn_test_sk_ is cloudnexus's (test)" in _last(harness)["reason"]

    reset = harness.token("nurosentrix")
    assert ctl.post("/_mock/reset", json={"tokens": True}).status_code == 200
    assert c.get(nsx, headers={"Authorization": f"Bearer {reset}"}).status_code == 401
    assert "was revoked by a reset at" in _last(harness)["reason"]


def test_an_expired_session_is_named(harness: Harness) -> None:
    from mock_server.sessions import SESSION_SECONDS, issue
    from mock_server.users import save_user

    user = save_user(harness.sandbox.store, harness.sandbox.ids, {"api": "nurosentrix", "email": "a@x.io"})
    jwt, _ = issue(harness.sandbox, "nurosentrix", user)
    c = harness.client("nurosentrix", jwt)
    assert c.get("/servers").status_code == 200
    harness.clock.advance(SESSION_SECONDS + 1)
    assert c.get("/servers").status_code == 401
    assert _last(harness)["reason"] == (
        "the session expired at 2026-01-02T00:00:00Z (the sandbox clock is at 2026-01-02T00:00:01Z)"
    )
    nexos = harness.client("nexos", jwt)
    assert nexos.get("/projects").status_code == 401
    assert _last(harness, api="nexos")["reason"] == "a session of nurosentrix, not of nexos"


def test_400_403_429_reasons(make_harness: Any) -> None:
    h = make_harness(rate_window=60)
    api = h.api("cloudnexus")
    assert api.post("/databases", json={}).status_code == 400
    fields = ("engine", "version", "plan", "name", "region")
    assert _last(h)["reason"] == "; ".join(f"{f}: is required" for f in fields)
    assert [p["field"] for p in _last(h)["problems"]] == list(fields), "a 400 keeps its problems too"

    read_only = h.client("nurosentrix", h.token("nurosentrix", scopes=["servers:read"]))
    assert read_only.post("/servers", json=SERVER).status_code == 403
    assert _last(h)["reason"] == "the token lacks servers:write (it has: servers:read)"

    writer = h.api("nurosentrix")
    statuses = [writer.post("/servers", json={**SERVER, "name": f"s{i}"}).status_code for i in range(21)]
    assert statuses[-1] == 429
    assert _last(h)["reason"] == 'bucket "write" (20 per 60 s) is used up; a slot frees in 60 s (Retry-After)'


def test_filters_by_status_token_and_api(harness: Harness) -> None:
    token = harness.token("nurosentrix")
    ok = harness.client("nurosentrix", token)
    ok.get("/servers")
    harness.client("nurosentrix").get("/servers")
    harness.api("cloudnexus").get("/servers")
    ctl = harness.client()

    def rows(**params: Any) -> list[tuple[str, int]]:
        got = ctl.get("/_mock/requests", params=params).json()["requests"]
        return [(r["api"], r["status"]) for r in got]

    assert rows(status="401") == [("nurosentrix", 401)]
    assert rows(status="2xx") == [("nurosentrix", 200), ("cloudnexus", 200)]
    assert rows(api="cloudnexus") == [("cloudnexus", 200)]
    minted = ctl.get("/_mock/tokens", params={"api": "nurosentrix"}).json()["tokens"][0]
    assert rows(token=minted["masked"]) == rows(token=minted["id"]) == [("nurosentrix", 200)]
    assert rows(method="post") == []
    assert ctl.post("/_mock/reset", json={"requests": True}).json()["requests"] is True
    assert rows() == []


def test_resources_browse_and_settling(make_harness: Any) -> None:
    h = make_harness(async_delay=None)
    api = h.api("nurosentrix", account="acme")
    created = api.post("/servers", json=SERVER).json()["data"]
    ctl = h.client()
    listing = ctl.get("/_mock/resources", params={"api": "nurosentrix"}).json()["apis"]["nurosentrix"]
    assert listing["collections"]["servers"] == 1
    assert listing["owners"] == [{"account": "acme", "mode": "test", "records": 1}]
    page = ctl.get("/_mock/resources/nurosentrix/servers", params={"account": "acme"}).json()
    assert page["total"] == 1 and page["items"][0]["id"] == created["id"]
    assert ctl.get("/_mock/resources/nurosentrix/servers").json()["total"] == 0  # account default
    one = ctl.get(f"/_mock/resources/nurosentrix/servers/{created['id']}", params={"account": "acme"})
    assert one.json()["name"] == "web-1" and "_account" not in one.json()
    assert ctl.get(f"/_mock/resources/nurosentrix/servers/{created['id']}").status_code == 404
    assert ctl.get("/_mock/resources/nurosentrix/nope").status_code == 404
    assert ctl.get("/_mock/resources", params={"api": "nope"}).status_code == 404

    settling = ctl.get("/_mock/settling").json()["settling"]
    assert [(s["collection"], s["id"], s["status"], s["next"], s["in_seconds"]) for s in settling] == [
        ("servers", created["id"], "provisioning", "active", 5)
    ]
    ctl.post("/_mock/clock/advance", json={"seconds": 5})
    assert ctl.get("/_mock/settling").json()["settling"] == []


def test_the_log_never_shows_most_of_a_credential(harness: Harness) -> None:
    """A sandbox token shows as in `token list`; a long foreign secret (a real key pasted by
    mistake, a session JWT) never by more than 16 characters and its last 4."""
    from mock_server.diagnose import log_mask
    from mock_server.tokens import mask

    token = harness.token("cloudnexus")
    assert log_mask(token) == mask(token)
    c = harness.client()
    for secret in ("sk_live_" + "Z" * 90, "a.b" + "J" * 200 + ".sig", "short-secret-123", "x" * 30):
        c.get("/nurosentrix/api/v1/servers", headers={"Authorization": f"Bearer {secret}"})
        row = _last(harness)
        shown = row["token"].replace("…", "")
        assert len(shown) <= 20 and len(secret) - len(shown) >= min(len(secret) // 2, 24), row
        assert secret[:-4] not in str(row)


def test_the_why_of_a_403_comes_from_the_stage_that_refused_not_a_second_authentication(
    harness: Harness,
) -> None:
    sandbox = harness.sandbox
    calls: list[str] = []
    authenticate = sandbox.authenticate

    def counted(spec: Any, token: str) -> Any:
        calls.append(spec.name)
        return authenticate(spec, token)

    sandbox.authenticate = counted  # type: ignore[method-assign]
    try:
        read_only = harness.client("nurosentrix", harness.token("nurosentrix", scopes=["servers:read"]))
        assert read_only.post("/servers", json=SERVER).status_code == 403
    finally:
        sandbox.authenticate = authenticate  # type: ignore[method-assign]
    assert calls == ["nurosentrix"]  # the engine's own, once
    assert _last(harness)["reason"] == "the token lacks servers:write (it has: servers:read)"
