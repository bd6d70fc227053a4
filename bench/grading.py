"""Grading the client's log at scale: CPU time (best and median of 5) to grade 10,000 logged
requests of 50 clients. The machine is shared, so it is CPU time, not wall time, and a figure to
report, never a test that fails on a slow machine.

    python -m bench.grading [--requests 10000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from typing import Any

from contract import load_all
from mock_server.grading import grade

API = "nurosentrix"
TOKENS = {f"tok_{i:016d}": {"scopes": ["servers:read", "servers:write"], "mode": "test"} for i in range(50)}


def logged_rows(n: int) -> list[dict[str, Any]]:
    """`n` logged requests of 50 clients: listings, reads, creates, refusals, as the log holds them."""
    rnd = random.Random(7)
    kinds = [
        ("GET", "/nurosentrix/api/v1/servers", "listServers", 200),
        ("GET", "/nurosentrix/api/v1/servers/srv_{i}", "getServer", 200),
        ("POST", "/nurosentrix/api/v1/servers", "createServer", 201),
        ("GET", "/nurosentrix/api/v1/servers/srv_{i}", "getServer", 404),
        ("POST", "/nurosentrix/api/v1/servers", "createServer", 429),
        ("GET", "/nurosentrix/api/v1/nope", None, 404),
    ]
    out = []
    for k in range(n):
        method, path, op, status = rnd.choices(kinds, weights=[30, 30, 10, 5, 3, 1])[0]
        listing = op == "listServers"
        out.append(
            {
                "at": 1_700_000_000 + k * 0.05,
                "api": API,
                "method": method,
                "path": path.format(i=rnd.randrange(40)),
                "status": status,
                "operation": op,
                "request_id": f"req_{k:016d}",
                "problems": [],
                "reason": "the token lacks servers:write" if status == 403 else None,
                "token": None,
                "token_id": f"tok_{rnd.randrange(50):016d}",
                "ms": 0.4,
                "wait": 12 if status == 429 else None,
                "bucket": "write" if status == 429 else None,
                "body": f"{rnd.randrange(1000):08x}" if method == "POST" else None,
                "page": {"at": rnd.randrange(1, 4), "size": 20, "query": None} if listing else None,
            }
        )
    return out


def measure(requests: int = 10_000, rounds: int = 5) -> dict[str, float]:
    """CPU milliseconds to grade `requests` logged rows: best and median of `rounds`."""
    spec = load_all([API])[0]
    rows = logged_rows(requests)
    times = []
    for _ in range(rounds):
        started = time.process_time()
        grade(spec, rows, TOKENS)
        times.append((time.process_time() - started) * 1000)
    return {"requests": requests, "best_ms": min(times), "median_ms": statistics.median(times)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.grading", description=__doc__)
    p.add_argument("--requests", type=int, default=10_000)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    m = measure(args.requests, args.rounds)
    best, median = m["best_ms"], m["median_ms"]
    print(f"grading {m['requests']:,} logged requests: best {best:.1f} ms CPU, median {median:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
