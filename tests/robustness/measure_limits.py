"""Figures for the README's robustness table, from real server processes (not a test: it runs
for minutes). `python -m tests.robustness.measure_limits [--code DIR]` measures the sandbox
whose code is in DIR (default: this checkout), so an older commit can be measured the same way
(`git archive <commit> | tar -x -C DIR`):

- RSS of a server over 50,000 tokens each minted, used once and revoked (the control API);
- `GET /_mock/tokens` with 50,000 tokens held: answer size and time;
- a normal client's latency while 1,100 connections that never finish their request head are
  held (the server started with the common soft limit of 1,024 open files);
- normal requests failed while 1,100 clients trickle 100 MB bodies (`--only slow-body`; the
  server held to 1,024 open files, soft and hard).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from tests.live import ROOT, free_port

N = "/nurosentrix/api/v1"


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _start(code: Path, log: Path, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()

    def limit() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))

    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mock_server", "serve", "--port", str(port), "--memory", *args],
            cwd=code,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=limit,
        )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/_mock/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(log.read_text())


def soak(code: Path, log: Path, total: int = 50_000, threads: int = 4) -> dict[str, object]:
    proc, base = _start(code, log)  # rate limits on: each token's use is logged
    out: dict[str, object] = {}
    try:
        rss = [(0, round(_rss_mib(proc.pid), 1))]
        done = 0
        lock = threading.Lock()

        def work(n: int) -> None:
            nonlocal done
            with httpx.Client(base_url=base, timeout=30) as c:
                for _ in range(n):
                    minted = c.post("/_mock/tokens", json={"api": "nurosentrix"}).json()
                    r = c.get(N + "/servers", headers={"Authorization": f"Bearer {minted['token']}"})
                    assert r.status_code == 200, r.text
                    assert c.delete(f"/_mock/tokens/{minted['id']}").status_code == 204
                    with lock:
                        done += 1

        step = total // 5
        started = time.monotonic()
        for _ in range(5):
            pool = [threading.Thread(target=work, args=(step // threads,)) for _ in range(threads)]
            for t in pool:
                t.start()
            for t in pool:
                t.join()
            rss.append((done, round(_rss_mib(proc.pid), 1)))
        out["soak_seconds"] = round(time.monotonic() - started, 1)
        out["rss_mib_by_tokens_revoked"] = rss
        # then 50,000 tokens held, and the list of them
        with httpx.Client(base_url=base, timeout=60) as c:

            def mint(n: int) -> None:
                with httpx.Client(base_url=base, timeout=30) as m:
                    for _ in range(n):
                        m.post("/_mock/tokens", json={"api": "nurosentrix"})

            pool = [threading.Thread(target=mint, args=(total // threads,)) for _ in range(threads)]
            for t in pool:
                t.start()
            for t in pool:
                t.join()
            out["rss_mib_with_50k_tokens_held"] = round(_rss_mib(proc.pid), 1)
            t0 = time.perf_counter()
            r = c.get("/_mock/tokens")
            out["token_list_ms"] = round((time.perf_counter() - t0) * 1000, 1)
            out["token_list_bytes"] = len(r.content)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    return out


def half_open(code: Path, log: Path, held_n: int = 1_100) -> dict[str, object]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, held_n + 1024), hard))
    proc, base = _start(code, log, "--no-rate-limit")
    port = int(base.rsplit(":", 1)[1])
    held: list[socket.socket] = []
    out: dict[str, object] = {}
    try:
        token = httpx.post(f"{base}/_mock/tokens", json={"api": "nurosentrix"}).json()["token"]
        request = (
            f"GET {N}/servers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()

        def one() -> float | None:
            """A new client: connect, ask, read the whole answer; None when it fails or stalls."""
            t0 = time.perf_counter()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                    s.sendall(request)
                    got = b""
                    while chunk := s.recv(65536):
                        got += chunk
            except OSError:
                return None
            return time.perf_counter() - t0 if got.startswith(b"HTTP/1.1 200") else None

        quiet = [t for t in (one() for _ in range(100)) if t is not None]
        refused = 0
        for i in range(held_n):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=1)
                if i % 2:
                    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            except OSError:
                refused += 1
                continue
            held.append(s)
        out["held_connect_failures"] = refused
        time.sleep(0.5)
        tries = [one() for _ in range(100)]
        latencies = [t for t in tries if t is not None]
        failures = len(tries) - len(latencies)
        latencies.sort()
        out["quiet_p50_ms"] = round(statistics.median(quiet) * 1000, 2)
        out["quiet_p99_ms"] = round(sorted(quiet)[98] * 1000, 2)
        out["held"] = held_n
        out["new_connection_requests"] = len(tries)
        out["failed_or_timed_out"] = failures
        if latencies:
            out["p50_ms"] = round(statistics.median(latencies) * 1000, 2)
            out["p99_ms"] = round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2)
        print(json.dumps(out), file=sys.stderr, flush=True)
        deadline, closed = time.monotonic() + 15, 0
        with selectors.DefaultSelector() as sel:
            for s in held:
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ)
            while sel.get_map() and time.monotonic() < deadline:
                for key, _ in sel.select(timeout=max(0.0, deadline - time.monotonic())):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    try:
                        if sock.recv(65536):
                            continue
                    except OSError:
                        pass
                    sel.unregister(sock)
                    closed += 1
        out["held_closed_by_server_within_15s"] = closed
        out["server_alive"] = proc.poll() is None
    finally:
        for s in held:
            s.close()
        proc.terminate()
        proc.wait(timeout=20)
    return out


def slow_body(code: Path, log: Path, held_n: int = 1_100, seconds: float = 30.0) -> dict[str, object]:
    """`held_n` clients each declaring a 100 MB body (a wrong token) and sending a byte every 3 s,
    while a normal client makes new-connection requests for `seconds`: how many fail. The
    server runs with a soft and hard limit of 1,024 open files (it cannot lift it)."""
    port = free_port()

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, held_n + 1024), hard))
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mock_server",
                "serve",
                "--port",
                str(port),
                "--memory",
                "--no-rate-limit",
            ],
            cwd=code,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=limit,
        )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/_mock/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    held: list[socket.socket] = []
    out: dict[str, object] = {"slow_body_clients": held_n}
    stop = threading.Event()
    try:
        token = httpx.post(f"{base}/_mock/tokens", json={"api": "nurosentrix"}).json()["token"]
        head = (
            f"POST {N}/servers HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer nsx_test_wrong\r\n"
            "Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{"
        ).encode()
        refused = 0
        for _ in range(held_n):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=1)
                s.sendall(head)
                s.setblocking(False)
                held.append(s)
            except OSError:
                refused += 1
        out["slow_body_connect_failures"] = refused

        def trickle() -> None:
            while not stop.wait(3.0):
                for s in held:
                    with contextlib.suppress(OSError):
                        s.send(b"a")

        threading.Thread(target=trickle, daemon=True).start()
        ok = failed = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"{base}{N}/servers", headers={"Authorization": f"Bearer {token}"}, timeout=2)
                ok += r.status_code == 200
                failed += r.status_code != 200
            except httpx.HTTPError:
                failed += 1
                time.sleep(0.05)
        out["normal_requests"] = ok + failed
        out["normal_requests_failed"] = failed
        open_now = 0
        for s in held:
            try:
                while s.recv(65536):  # the answer (a 401), then the end: closed by the server
                    pass
            except BlockingIOError:
                open_now += 1  # nothing more, not closed: still held
            except OSError:
                pass
        out[f"slow_body_connections_still_open_after_{seconds:g}s"] = open_now
        out["server_alive"] = proc.poll() is None
    finally:
        stop.set()
        for s in held:
            s.close()
        proc.terminate()
        proc.wait(timeout=20)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--code", type=Path, default=ROOT)
    parser.add_argument("--only", choices=["soak", "half-open", "slow-body"])
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="measure-"))
    result: dict[str, object] = {"code": str(args.code)}
    if args.only in (None, "slow-body"):
        result["slow_body"] = slow_body(args.code, logs / "slow-body.log")
        print(json.dumps(result), flush=True)
    if args.only in (None, "half-open"):
        result["half_open"] = half_open(args.code, logs / "half-open.log")
        print(json.dumps(result), flush=True)
    if args.only in (None, "soak"):
        result["soak"] = soak(args.code, logs / "soak.log")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
