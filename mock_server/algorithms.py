"""The three limiter algorithms a bucket may declare (`x-sandbox.rate-limits.<b>.algorithm`),
each over the same state: a deque of floats per (caller, bucket), which every store keeps as
it keeps the moving window's log.

- sliding-window (default): the admission times of the last window; never more than
  `limit` in any window;
- fixed-window: the admission times since the current window began (windows aligned on the
  epoch, as most vendors count "per minute");
- token-bucket: one number, the theoretical arrival time of GCRA: `limit` per `window`
  refilled continuously, up to `burst` (default `limit`) at once."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

from contract import Contract, SpecError

SLIDING, FIXED, BUCKET = "sliding-window", "fixed-window", "token-bucket"


def prune(algorithm: str, log: deque[float], limit: int, window: float, now: float) -> None:
    """Drop what no longer counts."""
    if algorithm == BUCKET:
        if log and log[0] <= now:
            log.clear()  # a full bucket: nothing to remember
        return
    edge = now - window if algorithm == SLIDING else math.floor(now / window) * window
    while log and (log[0] <= edge if algorithm == SLIDING else log[0] < edge):
        log.popleft()


def full(algorithm: str, log: deque[float], limit: int, window: float, burst: int, now: float) -> bool:
    if algorithm == BUCKET:
        per = window / limit
        tat = max(log[0], now) if log else now
        return tat + per - now > burst * per + 1e-9
    return len(log) >= limit


def wait(algorithm: str, log: deque[float], limit: int, window: float, burst: int, now: float) -> float:
    """Seconds until a request would be admitted (the bucket is full)."""
    if algorithm == BUCKET:
        per = window / limit
        return max(log[0], now) + per - burst * per - now
    if algorithm == FIXED:
        return math.floor(now / window) * window + window - now
    return log[len(log) - limit] + window - now


def admit(algorithm: str, log: deque[float], limit: int, window: float, now: float) -> None:
    if algorithm == BUCKET:
        tat = max(log[0], now) if log else now
        log.clear()
        log.append(tat + window / limit)
    else:
        log.append(now)


def left(algorithm: str, log: deque[float], limit: int, window: float, burst: int, now: float) -> int:
    """What remains after this admission."""
    if algorithm == BUCKET:
        per = window / limit
        return max(0, math.floor((burst * per - (log[0] - now)) / per + 1e-9)) if log else burst
    return limit - len(log)


def reset(algorithm: str, log: deque[float], window: float, now: float) -> float:
    """Seconds until the bucket's budget is whole again (sliding: until a slot frees)."""
    if not log:
        return 0.0
    if algorithm == BUCKET:
        return log[0] - now
    if algorithm == FIXED:
        return math.floor(now / window) * window + window - now
    return log[0] + window - now


def refuse_on_redis(specs: Iterable[Contract]) -> None:
    """The Redis store's Lua limiter keeps only the sliding window for now: refuse to start
    with another algorithm rather than serve it wrongly (SpecError: one line, exit 2)."""
    other = [
        f"{spec.name}.{b.name} ({b.algorithm})"
        for spec in specs
        for b in spec.buckets.values()
        if b.algorithm != SLIDING
    ]
    if other:
        raise SpecError(
            f"--store redis:// serves only sliding-window rate limits for now; not {', '.join(other)} "
            "(serve them with --memory, the file store or --workers)"
        )
