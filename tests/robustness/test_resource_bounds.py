"""Bounded resources: what a caller can make the server hold is bounded. Rate-limit logs of
idle or revoked tokens are freed (memory flat over many distinct tokens; measured before: ~+20 MB
per 20,000 tokens, never freed); the token list comes a page at a time (before: 50,000 tokens
were one 17 MB answer holding the server 0.6-0.75 s); a URL or headers over the limits get 414 /
431 in the API's envelope; connections that never finish their request head are closed after
`--header-timeout` and idle kept-alive ones after `--keep-alive-timeout`, while a normal client is
served at once (before: 1,100 half-open connections exhausted the 1,024 open files and took the
server down while held)."""

from __future__ import annotations

import contextlib
import gc
import json
import resource
import socket
import statistics
import time
import tracemalloc
from pathlib import Path
from typing import Any

import httpx
import pytest

from mock_server.clock import FrozenClock
from mock_server.httpguard import MAX_HEADER_BYTES, MAX_URL_BYTES
from mock_server.ratelimit import RateLimiter
from tests.conftest import Harness
from tests.robustness.support import FIGURES, ServerProcess, count, live_seen, raw_request

N = "/nurosentrix/api/v1"


# -- rate-limit state ------------------------------------------------------------------------------
def test_idle_callers_logs_are_swept_and_limits_still_hold() -> None:
    clock = FrozenClock()
    limiter = RateLimiter(clock)
    all_, write = limiter.bucket("all", 100, 60), limiter.bucket("write", 20, 60)
    for i in range(20_000):
        assert limiter.hit(f"tok_{i}", [all_, write]) is not None
    assert len(limiter._log) <= 2 * 20_000  # each within its window: remembered, as it must be
    clock.advance(30)
    busy = [limiter.hit("busy", [all_]) for _ in range(100)]
    assert all(d is not None and d.allowed for d in busy)
    clock.advance(31)  # the 20,000 are idle for a whole window now; "busy" is not
    for i in range(2_000):
        limiter.hit(f"late_{i}", [all_])
    assert len(limiter._log) <= 2_000 + 1  # the sweep ran: only callers seen within one window
    refused = limiter.hit("busy", [all_])
    assert refused is not None and not refused.allowed  # swept or not, the limit holds
    count("ratelimit_logs_swept", 40_000)


def test_revoking_a_token_frees_its_rate_limit_logs(harness: Harness) -> None:
    ctl = harness.client()
    ids = []
    for _ in range(50):
        minted = ctl.post("/_mock/tokens", json={"api": "nurosentrix"}).json()
        c = harness.client("nurosentrix", minted["token"])
        assert c.get("/servers").status_code == 200
        ids.append(minted["id"])
    assert {k[0] for k in harness.sandbox.limiter._log} >= set(ids)
    for rid in ids:
        assert ctl.delete(f"/_mock/tokens/{rid}").status_code == 204
    assert not {k[0] for k in harness.sandbox.limiter._log} & set(ids)


def test_memory_is_flat_over_many_tokens_minted_used_and_revoked(harness: Harness) -> None:
    """The soak of the issue in process: tokens minted, used (authenticated, rate-limited) and
    revoked as the control API does; the heap after 4,000 cycles and after 20,000 more."""
    sb = harness.sandbox
    engine = sb.engines["nurosentrix"]
    buckets = engine.buckets["listServers"]

    def cycles(n: int) -> None:
        for _ in range(n):
            token, _ = sb.mint("nurosentrix")
            principal = sb.tokens.authenticate("nurosentrix", token)
            assert principal is not None and sb.limiter.hit(principal.subject, buckets) is not None
            rid = sb.tokens.token_id(token)
            assert sb.tokens.revoke(rid)
            sb.limiter.forget(rid)

    tracemalloc.start()
    try:
        cycles(4_000)
        gc.collect()
        warm = tracemalloc.get_traced_memory()[0]
        cycles(20_000)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - warm
    finally:
        tracemalloc.stop()
    FIGURES["token_soak_heap_growth_bytes_per_20k"] = grown
    assert grown < 256 * 1024, f"{grown} bytes kept by 20,000 revoked tokens"


# -- the token list ------------------------------------------------------------------------------
def test_token_list_comes_a_page_at_a_time(harness: Harness) -> None:
    ctl = harness.client()
    minted = [ctl.post("/_mock/tokens", json={"api": "nurosentrix"}).json()["id"] for _ in range(230)]
    minted += [ctl.post("/_mock/tokens", json={"api": "nexos"}).json()["id"] for _ in range(20)]
    seen: list[str] = []
    offset: Any = 0
    pages = []
    while offset is not None:
        body = ctl.get("/_mock/tokens", params={"limit": 100, "offset": offset}).json()
        assert body["total"] == 250 and body["limit"] == 100 and body["offset"] == offset
        assert all("hash" not in t and "token" not in t for t in body["tokens"])
        pages.append(len(body["tokens"]))
        seen += [t["id"] for t in body["tokens"]]
        offset = body["next_offset"]
    assert pages == [100, 100, 50] and seen == minted  # minting order, each once
    default = ctl.get("/_mock/tokens").json()
    assert len(default["tokens"]) == 100 and default["next_offset"] == 100
    nexos = ctl.get("/_mock/tokens", params={"api": "nexos", "limit": 15}).json()
    assert nexos["total"] == 20 and [t["id"] for t in nexos["tokens"]] == minted[230:245]
    for bad in ({"limit": "0"}, {"limit": "1001"}, {"offset": "-1"}, {"limit": "x"}, {"offset": "9" * 40}):
        r = ctl.get("/_mock/tokens", params=bad)
        assert r.status_code == 400 and r.json()["error"]["code"] == "VALIDATION_ERROR", (bad, r.text)


# -- request heads ---------------------------------------------------------------------------------
def test_long_url_and_large_headers_are_refused_in_the_envelope(make_harness: Any) -> None:
    h: Harness = make_harness()
    h.sandbox.self_check = False  # 414 and 431 come from the sandbox, not the vendor documents
    token = h.token("nurosentrix")
    auth = [(b"authorization", f"Bearer {token}".encode())]
    path = (N + "/servers").encode()
    cases = {
        "long path": (path + b"/" + b"a" * MAX_URL_BYTES, b"", auth, 414, "URI_TOO_LONG"),
        "long query": (path, b"name=" + b"a" * MAX_URL_BYTES, auth, 414, "URI_TOO_LONG"),
        "large headers": (path, b"", [*auth, (b"x-big", b"a" * MAX_HEADER_BYTES)], 431, None),
        "many headers": (path, b"", auth + [(b"x-h%d" % i, b"v" * 40) for i in range(1000)], 431, None),
    }
    for label, (p, q, headers, status, code) in cases.items():
        got, hdrs, body = raw_request(h.app, "GET", p, query=q, headers=headers)
        count("hand_written_inputs")
        assert got == status, (label, body[:200])
        parsed = json.loads(body)
        assert parsed["success"] is False
        assert parsed["error"]["code"] == (code or "REQUEST_HEADER_FIELDS_TOO_LARGE")
        assert hdrs.get("x-request-id", "").startswith("req_")
    ok, _, _ = raw_request(h.app, "GET", path, query=b"name=" + b"a" * 1000, headers=auth)
    assert ok == 200
    got, _, body = raw_request(h.app, "GET", b"/_mock/" + b"a" * MAX_URL_BYTES)
    assert got == 414 and b"URI_TOO_LONG" in body


# -- connections, with a real server ----------------------------------------------------------------
def _raise_soft_nofile(want: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            pytest.skip(f"this machine allows {hard} open files; the test needs {want}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def _closed_by_server(s: socket.socket, wait: float) -> bool:
    s.settimeout(wait)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return True
    except (TimeoutError, OSError) as exc:
        return isinstance(exc, ConnectionResetError)


@pytest.mark.slow
def test_half_open_connections_time_out_while_others_are_served(tmp_path: Path) -> None:
    held_n = 1_100
    _raise_soft_nofile(held_n + 512)
    args = ("--memory", "--no-rate-limit", "--header-timeout", "4", "--keep-alive-timeout", "1")
    proc = ServerProcess(tmp_path, *args, nofile=1024)  # the common 1,024 open files: it lifts its own
    proc.start()
    held: list[socket.socket] = []
    try:
        token = httpx.post(f"{proc.base}/_mock/tokens", json={"api": "nurosentrix"}).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        opened = time.monotonic()
        for i in range(held_n):
            s = socket.create_connection(("127.0.0.1", proc.port))
            if i % 2:
                s.sendall(b"GET " + N.encode() + b"/servers HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # never ends
            held.append(s)
        latencies = []
        with httpx.Client(base_url=proc.base + N, headers=auth, timeout=5) as c:
            for _ in range(100):
                t0 = time.perf_counter()
                r = live_seen(c.get("/servers"))
                latencies.append(time.perf_counter() - t0)
                assert r.status_code == 200
        assert time.monotonic() - opened < 3.5, "the measurement ran past the head timeout"
        latencies.sort()
        FIGURES["half_open_1100_p50_us"] = int(statistics.median(latencies) * 1e6)
        FIGURES["half_open_1100_p99_us"] = int(latencies[98] * 1e6)
        assert latencies[98] < 0.5, latencies[-5:]
        # every held connection is closed by the server once its head is 4 s late
        closed = sum(_closed_by_server(s, max(0.1, opened + 8 - time.monotonic())) for s in held)
        FIGURES["half_open_closed_by_timeout"] = closed
        assert closed == held_n
        # an idle kept-alive connection: closed after --keep-alive-timeout
        idle = socket.create_connection(("127.0.0.1", proc.port))
        idle.sendall(b"GET /_mock/health HTTP/1.1\r\nHost: x\r\n\r\n")
        t0 = time.monotonic()
        assert _closed_by_server(idle, 5) and 0.5 < time.monotonic() - t0 < 4
        idle.close()
        # a head that grows without end: 431 at 64 KiB, not 64 MiB held in memory
        big = socket.create_connection(("127.0.0.1", proc.port))
        big.sendall(b"GET /_mock/health HTTP/1.1\r\nX-Big: ")
        answer = b""
        try:
            for _ in range(64):
                big.sendall(b"a" * 16384)
        except OSError:
            pass
        big.settimeout(5)
        with contextlib.suppress(OSError):
            while chunk := big.recv(65536):
                answer += chunk
        big.close()
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
        assert httpx.get(f"{proc.base}/_mock/health").status_code == 200
    finally:
        for s in held:
            s.close()
        proc.stop()
    assert "Traceback" not in proc.output(), proc.output()[-3000:]
