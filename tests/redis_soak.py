"""The Redis soak: three `serve --store redis://` replicas behind a real HAProxy, one Redis (AOF,
`appendfsync always`), a distributed Locust (a master and workers, real processes) driving many
tokens at 10× their documented limits, one replica `kill -9`ed and started again mid-run. Then
from what every Locust process wrote down: the most requests a token had admitted in one window
(per bucket, counted as certain from the client's send and answer times), the 5xx, and every
acknowledged create read back through the balancer.

`python -m tests.redis_soak --seconds 600` runs the long version (`docs/redis.md`);
`tests/test_redis_soak.py` a short one."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.live import ROOT, free_port
from tests.redis_server import RedisServer

LIMITS = {"all": 100, "write": 20}  # cloudnexus' x-sandbox.rate-limits, per --rate-window here
LOCUSTFILE = ROOT / "tests" / "redis_soak_locustfile.py"
MISSING = (
    "REDIS SOAK NOT RUN: haproxy is not installed (as root: make system-tools, or apt-get install haproxy)"
)


@dataclass
class Options:
    seconds: float = 45.0
    window: float = 60.0  # --rate-window: the documented 60 s (every limit per this many seconds)
    tokens: int = 6
    users: int = 30
    workers: int = 2
    kill_at: float = 0.35  # replica 2 is killed at this fraction of the run...
    restart_at: float = 0.55  # ... and started again at this one
    writes: float = 0.3  # the share of creates among the requests

    load: float = 11.0  # times each token's limit asked for (what arrives falls a little short)

    @property
    def rate(self) -> float:
        """Requests per second per Locust user: `load` × the limit of each token, over the users."""
        return self.load * LIMITS["all"] / self.window * self.tokens / self.users


@dataclass
class Replica:
    url: str
    window: float
    folder: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.folder / f"replica-{self.port}.log", "ab")  # noqa: SIM115 - the child holds it
        args = ["serve", "--port", str(self.port), "--store", self.url, "--api", "cloudnexus"]
        args += ["--rate-window", str(self.window)]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mock_server", *args], cwd=ROOT, stdout=log, stderr=log
        )

    def wait(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/_mock/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.proc is not None and self.proc.poll() is None, "replica exited"
            assert time.monotonic() < deadline, "replica did not start"
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def haproxy_config(port: int, replicas: list[Replica]) -> str:
    """Round robin over the replicas, health-checked every 300 ms (down after 3 failed checks: a
    check slower than 300 ms on a busy machine is not a dead replica, and with `fall 1` all
    three were marked down at once under load, HAProxy answering 503 itself); a request whose
    replica died under it (no connection, or no answer at all) goes to another (L7 retries). A
    replica's own answers, 5xx included, pass through untouched."""
    servers = "\n".join(f"  server r{i} 127.0.0.1:{r.port}" for i, r in enumerate(replicas))
    return f"""global
  maxconn 4096
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 15s
  timeout check 2s
  retries 3
  option redispatch 1
  retry-on conn-failure empty-response response-timeout
  option http-buffer-request
frontend api
  bind 127.0.0.1:{port}
  default_backend sandboxes
backend sandboxes
  balance roundrobin
  option httpchk GET /_mock/health
  default-server check inter 300ms fall 3 rise 2
{servers}
"""


def _most_in_a_window(spans: list[tuple[float, float]], window: float) -> int:
    """The most admissions that certainly fell in one window: k requests sent at or after a
    moment and all answered less than a window after it."""
    spans = sorted(spans)
    most = 0
    for start, _ in spans:
        inside = sum(1 for s, e in spans if s >= start and e < start + window)
        most = max(most, inside)
    return most


def _all_ids(base: str, token: str) -> set[str]:
    ids: set[str] = set()
    auth = {"Authorization": f"Bearer {token}"}
    page = 1
    while True:
        r = httpx.get(
            f"{base}/cloudnexus/v1/servers", headers=auth, params={"per_page": 100, "page": page}, timeout=30
        )
        r.raise_for_status()
        data = r.json()["data"]
        ids |= {s["id"] for s in data}
        if len(data) < 100:
            return ids
        page += 1


def run(opt: Options, folder: Path) -> dict[str, Any]:
    haproxy = shutil.which("haproxy")
    if haproxy is None:
        raise FileNotFoundError(MISSING)
    redis = RedisServer(folder)
    redis.start()
    replicas = [Replica(redis.url, opt.window, folder) for _ in range(3)]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for r in replicas:
            r.start()
        for r in replicas:
            r.wait()
        port = free_port()
        cfg = folder / "haproxy.cfg"
        cfg.write_text(haproxy_config(port, replicas))
        procs.append(
            subprocess.Popen(
                [haproxy, "-f", str(cfg), "-db"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                if httpx.get(f"{base}/_mock/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "haproxy did not start"
            time.sleep(0.1)
        accounts = [f"soak-{i}" for i in range(opt.tokens)]
        tokens = [
            httpx.post(f"{base}/_mock/tokens", json={"api": "cloudnexus", "account": a}).json()["token"]
            for a in accounts
        ]
        (folder / "tokens.json").write_text(json.dumps(tokens))
        out = folder / "observed"
        out.mkdir()
        env = {**os.environ, "SOAK_TOKENS": str(folder / "tokens.json"), "SOAK_OUT": str(out)}
        env |= {"SOAK_RATE": repr(opt.rate), "SOAK_WRITES": repr(opt.writes)}
        mport = free_port()
        locust = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]
        master = [
            *locust,
            "--master",
            "--headless",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(mport),
        ]
        master += ["--expect-workers", str(opt.workers), "--expect-workers-max-wait", "60", "-H", base]
        master += ["-u", str(opt.users), "-r", str(opt.users), "-t", f"{int(opt.seconds)}s", "--only-summary"]
        master += ["--csv", str(folder / "locust"), "--stop-timeout", "10"]
        log = open(folder / "locust.log", "ab")  # noqa: SIM115 - closed with the processes
        procs.append(subprocess.Popen(master, cwd=ROOT, env=env, stdout=log, stderr=log))
        for _ in range(opt.workers):
            worker = [*locust, "--worker", "--master-host", "127.0.0.1", "--master-port", str(mport)]
            procs.append(subprocess.Popen(worker, cwd=ROOT, env=env, stdout=log, stderr=log))
        started = time.monotonic()
        events: list[str] = []

        def chaos() -> None:
            time.sleep(opt.seconds * opt.kill_at)
            replicas[2].kill()
            events.append(f"replica 3 killed (kill -9) at {time.monotonic() - started:.1f} s")
            time.sleep(opt.seconds * (opt.restart_at - opt.kill_at))
            replicas[2].start()
            replicas[2].wait()
            events.append(f"replica 3 started again, serving at {time.monotonic() - started:.1f} s")

        chaos_thread = threading.Thread(target=chaos, daemon=True)
        chaos_thread.start()
        procs[1].wait(opt.seconds + 120)
        chaos_thread.join(60)
        for p in procs[2:]:
            p.wait(30)
        return analyse(opt, out, base, accounts, events)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(10)
        for r in replicas:
            r.stop()
        redis.stop(kill=True)


def analyse(opt: Options, out: Path, base: str, accounts: list[str], events: list[str]) -> dict[str, Any]:
    rows = [
        json.loads(line) for f in sorted(out.glob("*.jsonl")) for line in f.read_text().splitlines() if line
    ]
    statuses = Counter(r["status"] for r in rows)
    first = min(r["sent"] for r in rows)
    spans = max(r["answered"] for r in rows) - first
    most: dict[str, int] = {"all": 0, "write": 0}
    offered = Counter(r["token"] for r in rows)
    for k in range(opt.tokens):
        admitted = [r for r in rows if r["token"] == k and 200 <= r["status"] < 300]
        most["all"] = max(
            most["all"], _most_in_a_window([(r["sent"], r["answered"]) for r in admitted], opt.window)
        )
        writes = [(r["sent"], r["answered"]) for r in admitted if r["write"]]
        most["write"] = max(most["write"], _most_in_a_window(writes, opt.window))
    acknowledged = {r["id"] for r in rows if r["status"] == 201}
    stored: set[str] = set()
    for account in accounts:  # a fresh token per account: its own budget for the read-back
        token = httpx.post(f"{base}/_mock/tokens", json={"api": "cloudnexus", "account": account}).json()[
            "token"
        ]
        stored |= _all_ids(base, token)
    return {
        "seconds": round(spans, 1),
        "window_s": opt.window,
        "tokens": opt.tokens,
        "locust": f"1 master + {opt.workers} workers, {opt.users} users",
        "requests": len(rows),
        "requests_per_s": round(len(rows) / spans, 1),
        "offered_per_token_per_window": round(min(offered.values()) / spans * opt.window),
        "limits": LIMITS,
        "statuses": dict(sorted(statuses.items())),
        "5xx": sum(n for s, n in statuses.items() if s >= 500),
        "max_admitted_in_a_window": most,
        "acknowledged_creates": len(acknowledged),
        "lost": len(acknowledged - stored),
        "stored_unacknowledged": len(stored - acknowledged),
        "client_errors": [  # no HTTP answer at all (the Locust side's own failures), when
            f"{r['sent'] - first:.1f} s: {r.get('error')}" for r in rows if r["status"] == 0
        ][:10],
        "events": events,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.redis_soak", description=__doc__)
    p.add_argument("--seconds", type=float, default=Options.seconds)
    p.add_argument("--window", type=float, default=Options.window)
    p.add_argument("--tokens", type=int, default=Options.tokens)
    p.add_argument("--users", type=int, default=Options.users)
    p.add_argument("--workers", type=int, default=Options.workers)
    a = p.parse_args(argv)
    opt = Options(seconds=a.seconds, window=a.window, tokens=a.tokens, users=a.users, workers=a.workers)
    with tempfile.TemporaryDirectory(prefix="redis-soak-") as tmp:
        try:
            figures = run(opt, Path(tmp))
        except FileNotFoundError as exc:
            print(exc, file=sys.stderr)
            return 2
    print(json.dumps(figures, indent=2))
    ok = figures["5xx"] == 0 and figures["lost"] == 0
    ok = ok and all(figures["max_admitted_in_a_window"][b] <= n for b, n in LIMITS.items())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
