"""How often the fingerprint is right, and what it costs: the prober against each reference
limiter of the zoo (`zoo.py`, written apart from the sandbox's) in virtual time, over many
random phases and latencies. `python -m load.fingerprint.accuracy --runs 100` prints, per
limiter, the runs where algorithm, limit (±1), window (±10%) and key were all right, and the
requests (as a multiple of the limit) and wall time (in windows) each run took."""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import zoo
from .model import Hint, Shape
from .probe import Budget, Prober
from .vtime import VirtualTime, sender

TOKENS = {"main": "acct1-a", "same": "acct1-b", "other": "acct2-a"}


def kinds(limit: int, window: float) -> dict[str, tuple[str, Callable[[], Any]]]:
    """Each reference limiter of `limit` per `window` and the algorithm it must be read as."""
    return {
        "fixed": ("fixed-window", lambda: zoo.FixedWindow(limit, window)),
        "log": ("sliding-window", lambda: zoo.SlidingLog(limit, window)),
        "counter": ("sliding-window", lambda: zoo.SlidingCounter(limit, window)),
        "bucket": ("token-bucket", lambda: zoo.TokenBucket(limit / window, limit)),
        "gcra": ("token-bucket", lambda: zoo.GCRA(limit / window, limit)),
    }


@dataclass
class Run:
    shape: Shape
    prober: Prober
    took: float  # virtual seconds

    @property
    def requests(self) -> int:
        return len(self.prober.obs)


def probe(
    limiter: Any,
    seed: int,
    limit: int,
    key: str = "token",
    lies: zoo.Lies | None = None,
    hint: Hint | None = None,
    max_requests: int = 1000,
) -> Run:
    """One fingerprint of `limiter` (keyed by `key`) from a random phase, in virtual time."""
    rng = random.Random(seed)
    vt = VirtualTime(1_767_225_600.0 + rng.uniform(0, 1000), seed)
    send = sender(zoo.app(limiter, vt.now, key, lies, limit_header=limit), vt, TOKENS)
    p = Prober(send, vt.now, vt.sleep, hint, max_requests=max_requests, max_time=3600, keys=("same", "other"))
    t0 = vt.t
    try:
        shape = asyncio.run(p.run())
    except Budget as exc:
        shape = Shape("none", evidence=[str(exc)])
    shape.key = p.key()
    return Run(shape, p, vt.t - t0)


def right(shape: Shape, algorithm: str, limit: int, window: float) -> bool:
    return (
        shape.algorithm == algorithm
        and abs((shape.limit or 0) - limit) <= 1
        and abs((shape.window_s or 0) - window) <= 0.1 * window
        and shape.key == "token"
    )


def table(
    runs: int, limit: int, window: float, hinted: bool, only: list[str] | None = None, out: Any = None
) -> dict[str, float]:
    """Print one line per limiter; returns the share of right runs per limiter."""
    shares = {}
    out = out or sys.stdout
    hint = Hint(limit, window) if hinted else None
    for name, (algorithm, make) in kinds(limit, window).items():
        if only and name not in only:
            continue
        rs = [probe(make(), seed, limit, hint=hint) for seed in range(runs)]
        ok = [right(r.shape, algorithm, limit, window) for r in rs]
        req = sorted(r.requests / limit for r in rs)
        wall = sorted(r.took / window for r in rs)
        shares[name] = sum(ok) / runs
        wrong = [
            (r.shape.algorithm, r.shape.limit, round(r.shape.window_s or 0, 2))
            for r, g in zip(rs, ok, strict=True)
            if not g
        ]
        print(
            f"{name:8} {sum(ok):4}/{runs} right; requests/limit median {statistics.median(req):.2f} "
            f"max {req[-1]:.2f}; wall/window median {statistics.median(wall):.2f} max {wall[-1]:.2f}"
            + (f"; wrong: {wrong[:3]}" if wrong else ""),
            file=out,
            flush=True,
        )
    return shares


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m load.fingerprint.accuracy", description=__doc__)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--window", type=float, default=10.0)
    ap.add_argument("--only", action="append", metavar="KIND", help="fixed, log, counter, bucket, gcra")
    ap.add_argument("--no-hint", action="store_true", help="without the documented limit and window")
    a = ap.parse_args(argv)
    hinted = not a.no_hint
    print(f"{a.limit} per {a.window:g} s, {'documented' if hinted else 'undocumented'}, {a.runs} runs each")
    table(a.runs, a.limit, a.window, hinted, a.only)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
