"""Request bodies have a deadline and a size limit (`httpguard.py`): each read within
`--header-timeout` of the last, the whole body within `--body-timeout`, else `408`; past the
documented maximum, `413`; a body still trickling after its answer (a 401) is closed a moment
later, not read for ever. Measured before: a client declaring 100 MB and sending a byte every
3 s kept its connection for ever, even after its 401 (`measure_limits.py slow-body` gives the
1,100-client figure)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx

from tests.robustness.support import ServerProcess, count, live_seen

N = "/nurosentrix/api/v1"


def _open(port: int, head: bytes, first: bytes = b"") -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(head + first)
    return s


def _trickle(socks: list[socket.socket], every: float, until: float, stop: threading.Event) -> None:
    """Send one byte on each socket every `every` s until the server closes it or `until`."""
    live = list(socks)
    while live and time.monotonic() < until and not stop.is_set():
        for s in list(live):
            try:
                s.send(b"a")
            except OSError:
                live.remove(s)
        stop.wait(every)


def _answer_and_close(s: socket.socket, wait: float) -> tuple[bytes, float]:
    """What the server sent until it closed the connection, and when (monotonic; inf if never)."""
    s.settimeout(0.2)
    got, deadline = b"", time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            return got, time.monotonic()
        if not chunk:
            return got, time.monotonic()
        got += chunk
    return got, float("inf")


def test_slow_and_oversized_bodies_are_cut_while_others_are_served(tmp_path: Path) -> None:
    proc = ServerProcess(
        tmp_path, "--memory", "--no-rate-limit", "--header-timeout", "1", "--body-timeout", "2.5"
    )
    proc.start()
    port = proc.port
    stop = threading.Event()
    try:
        token = httpx.post(f"{proc.base}/_mock/tokens", json={"api": "nurosentrix"}).json()["token"]
        minted = len(httpx.get(f"{proc.base}/_mock/tokens").json()["tokens"])
        host = f"Host: 127.0.0.1:{port}\r\n".encode()
        # 40 clients declaring 100 MB to an API with a wrong token, a byte every 0.3 s: their 401
        # comes at once, then the connection is closed
        unauth = (
            (
                f"POST {N}/servers HTTP/1.1\r\nAuthorization: Bearer nsx_test_wrong\r\n"
                "Content-Type: application/json\r\nContent-Length: 100000000\r\n"
            ).encode()
            + host
            + b"\r\n"
        )
        after_401 = [_open(port, unauth, b"{") for _ in range(40)]
        # 10 clients sending a small body too slowly in all (each read in time): 408 at the budget
        slow = b"POST /_mock/tokens HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 500\r\n"
        budget = [_open(port, slow + host + b"\r\n", b'{"api": "nexos", "name": "') for _ in range(10)]
        # 10 clients that stop sending mid-body: 408 after one read timeout
        stalled = [_open(port, slow + host + b"\r\n", b'{"api"') for _ in range(10)]
        opened = time.monotonic()
        threading.Thread(
            target=_trickle, args=(after_401 + budget, 0.3, opened + 8, stop), daemon=True
        ).start()
        # others are served meanwhile
        with httpx.Client(base_url=proc.base + N, headers={"Authorization": f"Bearer {token}"}) as c:
            for _ in range(30):
                assert live_seen(c.get("/servers")).status_code == 200
        results = {  # read in the order they are due (a close is seen when its socket is read)
            "stalled": [_answer_and_close(s, 8) for s in stalled],
            "after_401": [_answer_and_close(s, 8) for s in after_401],
            "budget": [_answer_and_close(s, 8) for s in budget],
        }
        for got, closed in results["after_401"]:
            assert got.startswith(b"HTTP/1.1 401 "), got[:100]
            assert closed - opened < 3.5, "a body trickling after its answer was read on"
        for got, closed in results["budget"]:
            assert got.startswith(b"HTTP/1.1 408 "), got[:200]
            assert 2.0 < closed - opened < 4.5
        for got, closed in results["stalled"]:
            assert got.startswith(b"HTTP/1.1 408 "), got[:200]
            assert 0.8 < closed - opened < 2.5
        count("slow_body_clients_cut", sum(len(v) for v in results.values()))
        # past the documented maximum: 413, not buffered (the control API reads bodies whole)
        big = _open(port, b"POST /_mock/tokens HTTP/1.1\r\nContent-Type: application/json\r\n" + host)
        big.sendall(b"Transfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(80):
                big.sendall(b"4000\r\n" + b" " * 0x4000 + b"\r\n")
        except OSError:
            pass
        got, _ = _answer_and_close(big, 5)
        assert got.startswith(b"HTTP/1.1 413 "), got[:200]
        assert b"PAYLOAD_TOO_LARGE" in got
        # nothing minted by any of it; the server still serves
        assert len(httpx.get(f"{proc.base}/_mock/tokens").json()["tokens"]) == minted
        assert httpx.get(f"{proc.base}/_mock/health").status_code == 200
        # a body sent in a few reads, each in time, is read whole and answered as ever
        body = b'{"api": "nexos", "name": "' + b"n" * 200 + b'"}'
        head = (
            f"POST /_mock/tokens HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        s = _open(port, head)
        for i in range(0, len(body), 80):
            time.sleep(0.3)
            s.sendall(body[i : i + 80])
        got, _ = _answer_and_close(s, 5)
        assert got.startswith(b"HTTP/1.1 201 "), got[:300]
    finally:
        stop.set()
        proc.stop()
    assert "Traceback" not in proc.output(), proc.output()[-3000:]
