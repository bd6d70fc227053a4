"""Hostile input below the API, on a real server: bytes no HTTP client library would send. What
uvicorn refuses before the app sees it (non-ASCII request targets, conflicting Content-Length) is
a plain-text 400 from uvicorn, not the API's envelope; everything that reaches the app is
answered in the envelope; nothing is a 5xx, nothing is a traceback in the log, and the server
keeps serving others while clients stall or vanish mid-request."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.robustness.support import count, seen, server


def _exchange(port: int, data: bytes, wait: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(data)
        out = b""
        try:
            while b"\r\n\r\n" not in out or len(out) < out.index(b"\r\n\r\n") + 4 + _length(out):
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except TimeoutError:
            pass
        return out


def _length(head: bytes) -> int:
    for line in head.split(b"\r\n\r\n")[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


def _status(response: bytes) -> int:
    return int(response.split(b" ")[1]) if response.startswith(b"HTTP/1.1 ") else 0


@pytest.mark.slow
def test_raw_http_abuse_is_refused_and_the_server_keeps_serving(tmp_path: Path) -> None:
    with server(tmp_path, "--memory", "--async-delay", "0", "--no-rate-limit") as proc:
        token = httpx.post(f"{proc.base}/_mock/tokens", json={"api": "nurosentrix"}).json()["token"]
        auth = f"Authorization: Bearer {token}\r\n".encode()
        servers = b"/nurosentrix/api/v1/servers"

        def req(line: bytes, headers: bytes = b"", body: bytes = b"") -> bytes:
            return line + b"\r\nHost: x\r\n" + auth + headers + b"\r\n" + body

        before_uvicorn = {  # refused by uvicorn itself: a plain-text 400
            "non-ASCII in the path": req(b"GET " + servers + b"/\xff\xfe HTTP/1.1"),
            "non-ASCII in the query": req(b"GET " + servers + b"?page=\xc3\xa9 HTTP/1.1"),
            "control character in the path": req(b"GET " + servers + b"/a\x01b HTTP/1.1"),
            "two Content-Lengths": req(
                b"POST " + servers + b" HTTP/1.1", b"Content-Length: 2\r\nContent-Length: 9\r\n", b"{}"
            ),
            "negative Content-Length": req(b"POST " + servers + b" HTTP/1.1", b"Content-Length: -5\r\n"),
            "Content-Length and chunked": req(
                b"POST " + servers + b" HTTP/1.1",
                b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
                b"0\r\n\r\n",
            ),
            "bad chunk size": req(
                b"POST " + servers + b" HTTP/1.1", b"Transfer-Encoding: chunked\r\n", b"zz\r\n"
            ),
            "not HTTP at all": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,
            "header without a colon": req(b"GET " + servers + b" HTTP/1.1", b"NoColonHere\r\n"),
        }
        for label, data in before_uvicorn.items():
            got = _exchange(proc.port, data)
            seen(_status(got) or 400, "live")
            count("http_level_inputs")
            assert _status(got) in (0, 400), (label, got[:200])  # 0: the connection was closed
        in_envelope = {
            "dot segments to the control API": (
                req(b"POST /nurosentrix/api/v1/../../_mock/reset HTTP/1.1"),
                {404},
            ),
            "encoded traversal": (req(b"GET " + servers + b"/..%2F..%2F_mock%2Fhealth HTTP/1.1"), {404}),
            "encoded invalid UTF-8": (req(b"GET " + servers + b"/%ff%fe HTTP/1.1"), {400}),
            "a 60 KB query": (req(b"GET " + servers + b"?status=" + b"a" * 60_000 + b" HTTP/1.1"), {414}),
            "20 KB URL": (req(b"GET " + servers + b"/" + b"a" * 20_000 + b" HTTP/1.1"), {414}),
            "40 KB of headers": (
                req(b"GET " + servers + b" HTTP/1.1", b"X-Big: " + b"a" * 40_000 + b"\r\n"),
                {431},
            ),
            # over 64 KiB: refused by the protocol (httpguard.py) before the app: JSON, not the envelope
            "200 KB of headers": (
                req(b"GET " + servers + b" HTTP/1.1", b"X-Big: " + b"a" * 200_000 + b"\r\n"),
                {431},
            ),
            "a 100 KB request line": (req(b"GET " + servers + b"?q=" + b"a" * 100_000 + b" HTTP/1.1"), {414}),
            "1000 headers": (
                req(b"GET " + servers + b" HTTP/1.1", b"".join(b"X-H%d: v\r\n" % i for i in range(1000))),
                {200},
            ),
            "non-ASCII header value": (
                req(b"GET " + servers + b" HTTP/1.1", b"X-Request-ID: \xff\xfe\r\n"),
                {400},
            ),
            "non-ASCII bearer": (
                b"GET " + servers + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n\r\n",
                {401},
            ),
            "absolute-form target": (req(b"GET http://evil.example" + servers + b" HTTP/1.1"), {200}),
            "HTTP/1.0": (req(b"GET " + servers + b" HTTP/1.0"), {200}),
            "declared 2 GB body": (
                req(
                    b"POST " + servers + b" HTTP/1.1",
                    b"Content-Type: application/json\r\nContent-Length: 2000000000\r\n",
                    b"{",
                ),
                {413},
            ),
        }
        for label, (data, expected) in in_envelope.items():
            got = _exchange(proc.port, data)
            status = _status(got)
            seen(status, "live")
            count("http_level_inputs")
            assert status in expected, (label, got[:300])
            body = json.loads(got.split(b"\r\n\r\n", 1)[1])
            assert body["error"]["code"] if status >= 400 else body["success"], label
        # clients that stall mid-body or vanish mid-body: the server serves everyone else meanwhile
        stalled = []
        for _ in range(50):
            s = socket.create_connection(("127.0.0.1", proc.port))
            s.sendall(
                req(
                    b"POST " + servers + b" HTTP/1.1",
                    b"Content-Type: application/json\r\nContent-Length: 100\r\n",
                    b'{"na',
                )
            )
            stalled.append(s)
        with httpx.Client(base_url=proc.base, headers={"Authorization": f"Bearer {token}"}) as c:
            for _ in range(20):
                t0 = time.monotonic()
                r = c.get("/nurosentrix/api/v1/servers")
                seen(r.status_code, "live")
                assert r.status_code == 200 and time.monotonic() - t0 < 2.0
        for s in stalled:
            s.close()  # vanish mid-body
        count("http_level_inputs", 50)
        time.sleep(0.5)
        log = httpx.get(f"{proc.base}/_mock/requests", params={"limit": "500"}).json()["requests"]
        cut = [r for r in log if r["operation"] == "createServer" and r["status"] == 400]
        assert len(cut) >= 50  # every client that vanished mid-body: a 400 in the log, not a 500
        assert all(r["status"] < 500 for r in log)
        assert httpx.get(f"{proc.base}/_mock/health").status_code == 200
    output = proc.output()
    assert "Traceback" not in output and "unhandled error" not in output, output[-2000:]
