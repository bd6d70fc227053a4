"""The proxy never reports PASS over an exchange it could not judge, and stays bounded: with each
fault rule upstream (the sandbox's `/_mock/faults` plays the upstream), a dropped connection, a
truncated body, a stalled answer become a 502 in the API's envelope and a counted, reported
failure; a JSON answer past `MAX_JUDGED` is streamed through with a bounded buffer (reported
unjudged); a client that leaves stops the reading from upstream; secrets in query strings and
bodies never reach the log or the report. Before: a truncated body was a plain-text 500, 0
exchanges counted and a PASS report; a 50 MB chunked answer was held whole (343-754 MB)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from contract import load
from mock_server.testing import SandboxServer
from proxy import app as proxy_app
from proxy.app import ProxyApp
from proxy.report import write_reports
from tests.proxy_helpers import serve

N = "/nurosentrix/api/v1"


@pytest.fixture(scope="module")
def upstream() -> Iterator[SandboxServer]:
    with SandboxServer(apis=["nurosentrix"], async_delay=0) as sandbox:
        yield sandbox


FAULTS = {
    "drop": ({"drop": True}, "did not answer"),
    "truncate": ({"truncate": 10}, "broke the HTTP protocol"),
    "stall": ({"latency_ms": 3000}, "did not answer"),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_each_fault_upstream_is_a_502_and_a_reported_failure(
    upstream: SandboxServer, tmp_path: Path, name: str
) -> None:
    rule, said = FAULTS[name]
    token = upstream.token("nurosentrix")
    upstream.control("POST", "reset", {})
    upstream.control("POST", "faults", {"api": "nurosentrix", "operation": "listServers", **rule})
    try:
        app = ProxyApp(load("nurosentrix"), upstream.base_url("nurosentrix"), timeout=0.5)
        with serve(app) as proxied:
            r = httpx.get(f"{proxied}{N}/servers", headers={"Authorization": f"Bearer {token}"}, timeout=10)
            status = httpx.get(f"{proxied}/_mock/proxy").json()
            log = httpx.get(f"{proxied}/_mock/requests").json()["requests"]
    finally:
        upstream.control("DELETE", "faults")
    assert r.status_code == 502, (name, r.status_code, r.text[:300])
    body = r.json()
    assert body["error"]["code"] == "BAD_GATEWAY" and said in body["error"]["message"], body
    assert status["exchanges"] == 1 and status["violations"] == 1, status
    assert log[-1]["status"] == 502 and log[-1]["problems"][0]["field"] == "upstream"
    report = tmp_path / "report.md"
    write_reports(app, str(report))
    text = report.read_text()
    assert "PASS" not in text and "FAIL" in text and said in text
    junit = tmp_path / "report.xml"
    write_reports(app, str(junit))
    root = ET.parse(junit).getroot()
    assert int(root.get("failures", "0")) >= 1 and said in junit.read_text()


class BigJson:
    """An upstream answering a chunked JSON body of `size` bytes, counting what it sent."""

    def __init__(self, size: int) -> None:
        self.size, self.sent, self.finished, self.cut = size, 0, False, False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await receive()  # the (empty) request body

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            self.cut = True  # the proxy closed its connection

        watcher = asyncio.ensure_future(watch())
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        piece = b'{"data": [' + b'"x",' * 16000 + b'"x"]}\n'
        self.sent = 0
        while self.sent < self.size and not self.cut:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            self.sent += len(piece)
            await asyncio.sleep(0)
        watcher.cancel()
        if not self.cut:
            await send({"type": "http.response.body", "body": b""})
            self.finished = True


def test_a_large_chunked_json_answer_streams_through_a_bounded_buffer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(proxy_app, "MAX_JUDGED", 256 * 1024)
    big = BigJson(48 * 1024 * 1024)
    with serve(big) as origin:
        app = ProxyApp(load("nurosentrix"), origin + N)
        with serve(app) as proxied, httpx.stream("GET", f"{proxied}{N}/servers", timeout=30) as r:
            total, upstream_when_first = 0, -1
            for chunk in r.iter_raw():
                if upstream_when_first < 0:
                    upstream_when_first = big.sent
                total += len(chunk)
        assert r.status_code == 200 and total >= big.size
        # the client had its first bytes while the upstream was far from done: nothing held whole
        assert upstream_when_first < big.size // 2, upstream_when_first
    status = app.status()
    assert status["unjudged_bodies"] == 1 and status["exchanges"] == 1


def test_a_client_that_leaves_stops_the_upstream() -> None:
    big = BigJson(200 * 1024 * 1024)
    with serve(big) as origin:
        app = ProxyApp(load("nurosentrix"), origin + N)
        with serve(app) as proxied:
            port = int(proxied.rsplit(":", 1)[1])
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(f"GET {N}/servers HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            got = 0
            while got < 2 * 1024 * 1024:
                got += len(s.recv(65536))
            s.close()
            deadline = time.monotonic() + 5
            while not big.cut and time.monotonic() < deadline:
                time.sleep(0.05)
            assert big.cut and not big.finished, "the proxy kept pulling from upstream after its client left"
            assert big.sent < 64 * 1024 * 1024, big.sent
            assert app.status()["clients_left"] == 1


def test_secrets_in_query_and_body_never_reach_the_log_or_report(tmp_path: Path) -> None:
    class Refuse:
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return
            while (await receive()).get("more_body"):
                pass
            body = json.dumps({"error": "nope", "token": "nsx_live_leaked_in_answer", "password": "hunter2!"})
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body.encode()})

    with serve(Refuse()) as origin:
        app = ProxyApp(load("nurosentrix"), origin + N)
        with serve(app) as proxied:
            httpx.post(
                f"{proxied}{N}/auth/login?api_key=sk_query_secret&access_token=qs_tok_secret&page=2",
                json={"email": "a@example.com", "password": "correct-horse-battery"},
                headers={"Authorization": "Bearer nsx_test_header_secret", "X-Api-Key": "hdr_secret_value"},
            )
            log = httpx.get(f"{proxied}/_mock/requests").text
    out = [log]
    for name in ("r.md", "r.xml", "r.html"):
        write_reports(app, str(tmp_path / name))
        out.append((tmp_path / name).read_text())
    text = "\n".join(out)
    assert "api_key=" in text and "correct-horse" not in text  # the reproduction is there, masked
    for leaked in (
        "sk_query_secret",
        "qs_tok_secret",
        "correct-horse-battery",
        "nsx_test_header_secret",
        "hdr_secret_value",
        "nsx_live_leaked_in_answer",
        "hunter2!",
    ):
        assert leaked not in text, leaked
