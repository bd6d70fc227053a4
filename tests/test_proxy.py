"""The validating proxy: bytes through unchanged both ways, redirects not followed, the
exchange judged by the documented contract (inferred differences apart), the request log, the
`X-Sandbox-Violations` header, `--fail-on-violation`, reports, and never a credential kept."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from contract import load
from mock_server.testing import SandboxServer
from proxy.app import ProxyApp
from proxy.report import write_reports
from tests.proxy_helpers import serve

SERVER = {"name": "web-1", "provider": "digitalocean", "region": "nyc1", "size": "s-1vcpu-1gb"}


class Echo:
    """An upstream that keeps what it received and answers what a test sets, byte for byte."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 200
        self.headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json")]
        self.body = b"{}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        self.received.append(
            {
                "method": scope["method"],
                "raw_path": scope["raw_path"],
                "query": scope["query_string"],
                "headers": list(scope["headers"]),
                "body": body,
            }
        )
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


@pytest.fixture
def echo() -> Iterator[tuple[Echo, ProxyApp, str]]:
    upstream = Echo()
    with serve(upstream) as origin:
        app = ProxyApp(load("nurosentrix"), origin + "/nurosentrix/api/v1")
        with serve(app) as proxied:
            yield upstream, app, proxied


def test_requests_reach_the_upstream_byte_for_byte(echo: tuple[Echo, ProxyApp, str]) -> None:
    upstream, _, proxied = echo
    body = b'{"name":  "web-1", "region":"nyc1" , "x": "\\u00e9"}'  # not canonical JSON: kept so
    raw = "/nurosentrix/api/v1/servers/srv%2Fodd?per_page=5&tag=a%20b&tag=c+d&empty="
    headers = [
        ("Authorization", "Bearer nsx_test_secretvalue_0001"),
        ("X-Custom", "one"),
        ("X-Custom", "two"),
        ("Content-Type", "application/json"),
        ("Cookie", "session=abc; other=1"),
    ]
    with httpx.Client() as client:
        client.request("PATCH", proxied + raw, headers=headers, content=body)
    got = upstream.received[-1]
    assert got["method"] == "PATCH" and got["body"] == body
    assert got["raw_path"] + b"?" + got["query"] == raw.encode()
    sent = [(k.decode(), v.decode()) for k, v in got["headers"] if k not in (b"host", b"content-length")]
    for name, value in headers:
        assert (name.lower(), value) in sent
    assert dict(got["headers"])[b"host"] != proxied.removeprefix("http://").encode()  # the upstream's


def test_responses_come_back_byte_for_byte_and_redirects_are_not_followed(
    echo: tuple[Echo, ProxyApp, str],
) -> None:
    upstream, _, proxied = echo
    payload = b'{"success":true,  "data":[],"meta":{"page":1,"per_page":20,"total":0}}'
    upstream.body = gzip.compress(payload)
    upstream.headers = [
        (b"content-type", b"application/json"),
        (b"content-encoding", b"gzip"),
        (b"x-twice", b"a"),
        (b"x-twice", b"b"),
        (b"server", b"vendor/1.0"),
        (b"date", b"Mon, 01 Jan 2024 00:00:00 GMT"),
    ]
    with httpx.Client() as client:
        r = client.get(proxied + "/nurosentrix/api/v1/servers", headers={"Accept-Encoding": "gzip"})
        assert r.status_code == 200
        assert r.read() == payload  # httpx decoded what came gzip-encoded: the same bytes
        raw = client.build_request("GET", proxied + "/nurosentrix/api/v1/servers")
        streamed = client.send(raw, stream=True)
        assert b"".join(streamed.iter_raw()) == upstream.body  # the encoded bytes themselves
        streamed.close()
        assert r.headers.get_list("x-twice") == ["a", "b"]
        assert r.headers["server"] == "vendor/1.0" and r.headers["date"] == "Mon, 01 Jan 2024 00:00:00 GMT"
        upstream.status, upstream.body = 302, b""
        upstream.headers = [(b"location", b"https://github.com/login/oauth/authorize?x=1")]
        r = client.get(proxied + "/nurosentrix/api/v1/servers")
        assert (
            r.status_code == 302 and r.headers["location"] == "https://github.com/login/oauth/authorize?x=1"
        )
        assert len(upstream.received) == 3  # the redirect was passed back, never followed


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(async_delay=0, rate_limit=False) as server:
        yield server


def _proxy_for(sandbox: SandboxServer, api: str, **kw: Any) -> ProxyApp:
    return ProxyApp(load(api), sandbox.base_url(api), **kw)


def test_the_sandbox_through_the_proxy_is_clean_and_unchanged(sandbox: SandboxServer) -> None:
    app = _proxy_for(sandbox, "nurosentrix")
    token = sandbox.token("nurosentrix")
    auth = {"Authorization": f"Bearer {token}", "X-Request-ID": "req_fixed"}
    with serve(app) as origin, httpx.Client(headers=auth) as client:
        base = origin + "/nurosentrix/api/v1"
        created = client.post(base + "/servers", json=SERVER)
        assert created.status_code == 201 and "x-sandbox-violations" not in created.headers
        sid = created.json()["data"]["id"]
        via = client.get(f"{base}/servers/{sid}")
        direct = client.get(f"{sandbox.base_url('nurosentrix')}/servers/{sid}")
        assert via.content == direct.content and via.status_code == direct.status_code
        drop = {"date", "server"}
        assert [(k, v) for k, v in via.headers.items() if k not in drop] == [
            (k, v) for k, v in direct.headers.items() if k not in drop
        ]
        refused = client.get(base + "/servers", params={"per_page": "many"})  # the client's mistake
        assert refused.status_code == 400
        assert (
            "x-sandbox-violations" not in refused.headers
            or "request " in refused.headers["x-sandbox-violations"]
        )
        log = client.get(origin + "/_mock/requests").json()["requests"]
        # the rest of /_mock is the sandbox's, forwarded: the dashboard loads, and reads the proxy's log
        assert client.get(origin + "/_mock/ui").status_code == 200
        assert client.get(origin + "/_mock/health").json()["status"] == "ok"
    assert [r["status"] for r in log] == [201, 200, 400]
    assert app.status()["violations"] == 0 and app.status()["refused_requests"] == 1
    assert log[-1]["problems"][0]["side"] == "request" and "per_page" in log[-1]["problems"][0]["reason"]
    assert token not in json.dumps(log)


def test_a_signed_nexos_webhook_still_verifies(sandbox: SandboxServer) -> None:
    app = _proxy_for(sandbox, "nexos")
    token = sandbox.token("nexos")
    with serve(app) as origin, httpx.Client() as client:
        base = origin + "/nexos/api"
        project = client.post(
            base + "/projects",
            json={
                "name": "hooked",
                "github_repo": "octocat/hooked",
                "dockerfile": "Dockerfile",
                "build_context": ".",
                "services": {},
            },
            headers={"Authorization": f"Bearer {token}"},
        )
        assert project.status_code == 201, project.text
        secret = project.json()["webhook_secret"]
        body = (
            b'{"ref": "refs/heads/main",  "after": "9fceb02d0ae598e95dc970b74767f19372d61af8", '
            b'"repository": {"full_name": "octocat/hooked"}, "head_commit": '
            b'{"id": "9fceb02d0ae598e95dc970b74767f19372d61af8", "message": "caf\\u00e9"}}'
        )
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        r = client.post(
            base + "/webhooks/github",
            content=body,
            headers={
                "Content-Type": "application/json",
                "X-GitHub-Event": "push",
                "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
                "X-Hub-Signature-256": signature,
            },
        )
    assert r.status_code in (200, 201, 202), r.text
    assert app.status()["violations"] == 0


def test_fail_on_violation_answers_502_in_the_envelope(echo: tuple[Echo, ProxyApp, str]) -> None:
    upstream, _, _ = echo
    upstream.body = b'{"result": []}'  # not the list envelope
    with serve(upstream) as origin:
        app = ProxyApp(load("nurosentrix"), origin + "/nurosentrix/api/v1", fail_on_violation=True)
        with serve(app) as proxied, httpx.Client() as client:
            r = client.get(proxied + "/nurosentrix/api/v1/servers", headers={"Authorization": "Bearer x"})
    assert r.status_code == 502
    assert r.json()["success"] is False and r.json()["error"]["code"] == "CONTRACT_VIOLATION"
    assert "envelope" in r.json()["error"]["message"]
    assert r.headers["x-sandbox-violations"].startswith(str(len(app.results.failing)))


def test_reports_and_reproductions_hold_no_credential(
    echo: tuple[Echo, ProxyApp, str], tmp_path: Path
) -> None:
    upstream, app, proxied = echo
    upstream.body = b'{"success": true, "data": [{"id": 1}], "meta": {}}'
    secret = "nsx_test_TOPSECRETTOKENVALUE0001"
    with httpx.Client() as client:
        r = client.get(
            proxied + "/nurosentrix/api/v1/servers",
            headers={"Authorization": f"Bearer {secret}", "Cookie": "sid=COOKIESECRET"},
        )
    assert "x-sandbox-violations" in r.headers
    for name in ("report.md", "report.xml", "report.html"):
        write_reports(app, str(tmp_path / name))
        text = (tmp_path / name).read_text()
        assert secret not in text and "COOKIESECRET" not in text, name
        assert "$TOKEN" in text and "response_schema_conformance" in text, name
    assert secret not in json.dumps(list(app.log))


def test_a_body_over_the_proxys_limit_is_413_and_not_forwarded(
    echo: tuple[Echo, ProxyApp, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import proxy.app

    upstream, _, proxied = echo
    monkeypatch.setattr(proxy.app, "MAX_REQUEST", 1000)
    with httpx.Client() as client:
        r = client.post(proxied + "/nurosentrix/api/v1/servers", content=b"x" * 5000)
    assert r.status_code == 413 and r.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert upstream.received == []


def test_a_request_only_an_inferred_rule_refuses_is_reported_apart(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    """`region` is required by the sandbox's choice (x-inferred), not by the documents: the refusal
    passes through, marked `inferred` in the header, counted and reported apart, never a failure.
    Before: no header, no count, no mention in the report."""
    app = _proxy_for(sandbox, "nurosentrix")
    auth = {"Authorization": f"Bearer {sandbox.token('nurosentrix')}"}
    with serve(app) as origin, httpx.Client(headers=auth) as client:
        no_region = {k: v for k, v in SERVER.items() if k != "region"}
        r = client.post(origin + "/nurosentrix/api/v1/servers", json=no_region)
    assert r.status_code == 400 and "region" in r.text
    assert r.headers["x-sandbox-violations"].startswith("0; inferred request request_validation: body region")
    status = app.status()
    assert status["refused_requests"] == 0 and status["refused_requests_inferred"] == 1, status
    for name in ("r.md", "r.html", "r.xml"):
        write_reports(app, str(tmp_path / name))
    md, page = (tmp_path / "r.md").read_text(), (tmp_path / "r.html").read_text()
    apart = md.split("## Requests only the sandbox's choices refuse")[1]
    assert "body region: is required" in apart and "curl -X POST" in apart and "**PASS**" in md
    assert 'id="client-requests-inferred"' in page and "body region: is required" in page
    root = ET.parse(tmp_path / "r.xml").getroot()
    suite = root.find("testsuite[@name='nurosentrix.client-requests-inferred']")
    assert suite is not None and suite.get("failures") == "0" and root.get("failures") == "0"


def test_a_2xx_to_a_request_only_an_inferred_rule_refuses_is_a_difference(
    echo: tuple[Echo, ProxyApp, str],
) -> None:
    upstream, app, proxied = echo
    upstream.status = 201
    no_region = {k: v for k, v in SERVER.items() if k != "region"}
    with httpx.Client() as client:
        client.post(proxied + "/nurosentrix/api/v1/servers", json=no_region, headers={"Authorization": "x"})
    accepted = [v for v in app.results.violations if v.check == "negative_data_rejection"]
    assert accepted and all(v.inferred for v in accepted), app.results.violations


def test_upstream_connections_are_kept_alive_one_per_request_in_flight(
    echo: tuple[Echo, ProxyApp, str],
) -> None:
    """`proxy/upstream.py` instead of httpx's pool (whose O(connections x requests) scans made
    32 clients slower than 1): sequential requests share one connection, concurrent ones open
    at most one each."""
    import asyncio

    _, app, proxied = echo
    url = proxied + "/nurosentrix/api/v1/servers"
    with httpx.Client() as client:
        assert all(client.get(url).status_code == 200 for _ in range(5))
    assert app.status()["upstream_connections"] == 1

    async def together() -> list[int]:
        async with httpx.AsyncClient() as client:
            return [r.status_code for r in await asyncio.gather(*(client.get(url) for _ in range(8)))]

    assert asyncio.run(together()) == [200] * 8
    assert 1 <= app.status()["upstream_connections"] <= 9
    assert app.status()["exchanges"] == 13
