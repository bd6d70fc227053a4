"""Other web sites cannot drive the control API (`mock_server/siteguard.py`): a foreign `Origin`,
a rebound `Host` on a loopback server, a `text/plain` or form POST from a browser are refused
on `/_mock`; `--cors` opens the APIs, never `/_mock`. What the sandbox's own clients send (JSON,
curl's `-d`, no Origin) keeps working. Measured before: a cross-origin `text/plain` POST from a
page in Chromium reset the sandbox (its token 200 → 401)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mock_server.app import with_cors
from tests.conftest import Harness
from tests.sandbox_client import SyncASGIClient

BASE = "http://127.0.0.1:8080"  # the ASGI scope's server: a loopback bind
N = "/nurosentrix/api/v1"


def _client(app: Any, base: str = BASE) -> SyncASGIClient:
    return SyncASGIClient(app, base_url=base)


def _token_works(h: Harness, token: str) -> bool:
    c = _client(h.app)
    try:
        return c.get(N + "/servers", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    finally:
        c.close()


REFUSED = [
    # (label, method, path, headers, body, status)
    ("text/plain reset", "POST", "/_mock/reset", {"Content-Type": "text/plain"}, b'{"tokens": true}', 415),
    (
        "browser form reset",
        "POST",
        "/_mock/reset",
        {"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "same-origin"},
        b'{"tokens": true}',
        415,
    ),
    (
        "multipart reset",
        "POST",
        "/_mock/reset",
        {"Content-Type": "multipart/form-data; boundary=x"},
        b"",
        415,
    ),
    (
        "foreign origin JSON reset",
        "POST",
        "/_mock/reset",
        {"Content-Type": "application/json", "Origin": "http://evil.example"},
        b'{"tokens": true}',
        403,
    ),
    (
        "same host another port",
        "POST",
        "/_mock/reset",
        {"Content-Type": "application/json", "Origin": "http://127.0.0.1:3000"},
        b'{"tokens": true}',
        403,
    ),
    (
        "null origin",
        "POST",
        "/_mock/reset",
        {"Origin": "null", "Content-Type": "application/json"},
        b"{}",
        403,
    ),
    ("cross-site fetch", "GET", "/_mock/tokens", {"Sec-Fetch-Site": "cross-site"}, b"", 403),
    ("rebound host reads tokens", "GET", "/_mock/tokens", {"Host": "evil.example:8080"}, b"", 403),
    (
        "rebound host mints",
        "POST",
        "/_mock/tokens",
        {"Host": "rebind.evil.example"},
        b'{"api": "nexos"}',
        403,
    ),
    ("foreign origin revoke", "DELETE", "/_mock/tokens/tok_x", {"Origin": "https://evil.example"}, b"", 403),
]


@pytest.mark.parametrize(
    ("label", "method", "path", "headers", "body", "status"), REFUSED, ids=[r[0] for r in REFUSED]
)
def test_other_sites_are_refused_and_change_nothing(
    harness: Harness, label: str, method: str, path: str, headers: dict[str, str], body: bytes, status: int
) -> None:
    token = harness.token("nurosentrix")
    minted = len(harness.sandbox.tokens.list())
    c = _client(harness.app)
    r = c.request(method, path, headers=headers, content=body)
    c.close()
    assert r.status_code == status, (label, r.status_code, r.text)
    assert r.json()["error"]["code"] in ("FORBIDDEN_ORIGIN", "FORBIDDEN_HOST", "UNSUPPORTED_MEDIA_TYPE")
    assert "tokens" not in r.json() and "nsx_" not in r.text
    assert _token_works(harness, token), "the refused request reset the tokens"
    assert len(harness.sandbox.tokens.list()) == minted


ALLOWED = [
    ("JSON, no origin (CLI, MCP client)", {"Content-Type": "application/json"}, BASE),
    ("curl -d (form type, no browser marks)", {"Content-Type": "application/x-www-form-urlencoded"}, BASE),
    ("the dashboard: same origin", {"Content-Type": "application/json", "Origin": BASE}, BASE),
    (
        "localhost page, 127.0.0.1 host",
        {"Content-Type": "application/json", "Origin": "http://localhost:8080"},
        BASE,
    ),
    ("localhost name", {"Content-Type": "application/json"}, "http://localhost:8080"),
    ("IPv6 loopback", {"Content-Type": "application/json"}, "http://[::1]:8080"),
    ("a public bind keeps its name", {"Content-Type": "application/json"}, "http://sandbox.internal:8080"),
]


@pytest.mark.parametrize(("label", "headers", "base"), ALLOWED, ids=[a[0] for a in ALLOWED])
def test_the_sandboxs_own_clients_still_work(
    harness: Harness, label: str, headers: dict[str, str], base: str
) -> None:
    c = _client(harness.app, base)
    r = c.post("/_mock/tokens", headers=headers, content=b'{"api": "nexos"}')
    assert r.status_code == 201, (label, r.status_code, r.text)
    r = c.post("/_mock/clock/advance", headers=headers, content=b'{"seconds": 5}')
    assert r.status_code == 200, (label, r.text)
    c.close()


def test_cors_opens_the_apis_but_never_the_control_api(harness: Harness) -> None:
    app = with_cors(harness.app, ["*"])
    token = harness.token("nurosentrix")
    c = _client(app)
    evil = {"Origin": "http://evil.example"}
    pre = {**evil, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    api = c.request("OPTIONS", N + "/servers", headers=pre)
    assert api.status_code == 200 and api.headers.get("access-control-allow-origin") == "*"
    got = c.get(N + "/servers", headers={**evil, "Authorization": f"Bearer {token}"})
    assert got.headers.get("access-control-allow-origin") == "*"
    control = c.request("OPTIONS", "/_mock/tokens", headers=pre)
    assert "access-control-allow-origin" not in control.headers
    read = c.get("/_mock/tokens", headers=evil)
    assert read.status_code == 403 and "access-control-allow-origin" not in read.headers
    mint = c.post(
        "/_mock/tokens", headers={**evil, "Content-Type": "application/json"}, json={"api": "nexos"}
    )
    assert mint.status_code == 403
    assert c.get("/_mock/tokens").status_code == 200  # the sandbox's own clients, unchanged
    c.close()


def test_a_public_bind_checks_origin_not_host() -> None:
    """Bound to 0.0.0.0 (behind a name the operator chose), any Host is the operator's business;
    foreign origins are still refused."""
    from mock_server.siteguard import refusal

    scope = {
        "method": "GET",
        "server": ("0.0.0.0", 8080),
        "scheme": "http",
        "headers": [(b"host", b"sandbox.example.com:8080")],
    }
    assert refusal(scope) is None
    scope["headers"].append((b"origin", b"http://evil.example"))
    r = refusal(scope)
    assert r is not None and r.status_code == 403
    assert httpx.Response(403, content=r.body).json()["error"]["code"] == "FORBIDDEN_ORIGIN"
