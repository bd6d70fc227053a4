"""Per-caller rate limits: by default a moving window (never more than `limit` accepted in any
`window`); a bucket may declare a fixed window or a token bucket instead (`algorithms.py`)."""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from judge.headers import NAMES, rate_headers

from . import algorithms as alg
from .clock import Clock


@dataclass(frozen=True)
class Bucket:
    name: str
    limit: int
    window: float
    algorithm: str = alg.SLIDING
    burst: int = 0  # token-bucket: capacity (0: limit)

    @property
    def capacity(self) -> int:
        return self.burst or self.limit


@dataclass(slots=True)
class Decision:
    allowed: bool
    bucket: Bucket  # the tightest bucket: the one the headers describe
    remaining: int
    reset: int  # seconds until the tightest bucket frees a slot (0 when it is full)
    retry_after: int  # seconds until the request would be admitted (0 when allowed)
    policies: tuple[Bucket, ...]

    def headers(self) -> dict[str, str]:
        """IETF httpapi-ratelimit-headers (draft -11) plus the common X-RateLimit-* trio."""
        return {NAMES[k]: v.decode("latin-1") for k, v in self.raw_headers()}

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """`headers()` as a response carries them: lowercase names, latin-1 values."""
        retry = None if self.allowed else self.retry_after
        return rate_headers(self.bucket, self.remaining, self.reset, self.policies, retry)


class RateLimiter:
    """A log of accepted request times per (caller, bucket); rejected requests are not logged.

    A log whose every entry has left its window says nothing any more: such logs (idle callers,
    revoked tokens) are dropped by a sweep that runs after as many hits as there are logs (so
    it costs O(1) a hit), or after `SWEEP_EVERY` hits once a window has passed since the last
    one; `forget` drops a caller's at once (a revoked token). Memory holds
    only the callers seen within one window: measured flat over 50,000 tokens minted, used and
    revoked (it grew ~1 MB per 1,000 before)."""

    SWEEP_EVERY = 1024  # hits between sweeps, at the least

    def __init__(self, clock: Clock, window_override: float | None = None, enabled: bool = True) -> None:
        self.clock = clock
        self.window_override = window_override
        self.enabled = enabled
        self._log: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()
        self._windows: dict[str, float] = {}  # bucket name -> its longest window
        self._since_sweep = 0
        self._swept_at = float("-inf")

    def bucket(
        self, name: str, limit: int, window: float, algorithm: str = alg.SLIDING, burst: int | None = None
    ) -> Bucket:
        b = Bucket(name, limit, self.window_override or window, algorithm, burst or 0)
        self._windows[name] = max(self._windows.get(name, 0.0), b.window)
        return b

    def forget(self, key: str) -> None:
        """Drop `key`'s logs (a revoked token: nothing it did can matter again)."""
        with self._lock:
            for name in self._windows:
                self._log.pop((key, name), None)

    def _sweep(self, now: float) -> None:
        """Drop the logs of callers idle for a whole window (the lock is held)."""
        self._since_sweep, self._swept_at = 0, now
        windows = self._windows
        dead = [k for k, log in self._log.items() if not log or log[-1] <= now - windows.get(k[1], 0.0)]
        for k in dead:
            del self._log[k]

    def hit(self, key: str, buckets: Sequence[Bucket]) -> Decision | None:
        """Admit and record, or refuse, one request of `key` against every bucket at once."""
        if not self.enabled or not buckets:
            return None
        with self._locked():
            now = self.clock.now()  # read under the lock: each log stays in time order across threads
            logs = self._logs(key, buckets)
            full = False
            for b, log in zip(buckets, logs, strict=True):
                alg.prune(b.algorithm, log, b.limit, b.window, now)
                if alg.full(b.algorithm, log, b.limit, b.window, b.capacity, now):
                    full = True
            policies = buckets if isinstance(buckets, tuple) else tuple(buckets)
            if full:
                waits = [
                    (alg.wait(b.algorithm, log, b.limit, b.window, b.capacity, now), i)
                    for i, (b, log) in enumerate(zip(buckets, logs, strict=True))
                    if alg.full(b.algorithm, log, b.limit, b.window, b.capacity, now)
                ]
                wait, i = max(waits, key=lambda w: w[0])  # the longest wait (the first, if tied)
                retry = max(1, math.ceil(wait))
                self._save(key, buckets, logs)
                return Decision(False, buckets[i], 0, retry, retry, policies)
            for b, log in zip(buckets, logs, strict=True):
                alg.admit(b.algorithm, log, b.limit, b.window, now)
            self._save(key, buckets, logs)
            self._since_sweep += 1
            if self._since_sweep >= self.SWEEP_EVERY and (
                self._since_sweep >= len(self._log) or now - self._swept_at >= buckets[0].window
            ):
                self._sweep(now)
            lefts = [
                alg.left(b.algorithm, log, b.limit, b.window, b.capacity, now)
                for b, log in zip(buckets, logs, strict=True)
            ]
            tight = min(range(len(buckets)), key=lambda i: lefts[i])
            b, log = buckets[tight], logs[tight]
            reset = math.ceil(alg.reset(b.algorithm, log, b.window, now) - 1e-9)
            return Decision(True, b, lefts[tight], max(reset, 0), 0, policies)

    # -- where the logs live: here, this process's memory (`shared.SharedRateLimiter`: SQLite) --
    def _locked(self) -> AbstractContextManager[object]:
        return self._lock

    def _logs(self, key: str, buckets: Sequence[Bucket]) -> list[deque[float]]:
        """The live log of each bucket, oldest first."""
        return [self._log.setdefault((key, b.name), deque()) for b in buckets]

    def _save(self, key: str, buckets: Sequence[Bucket], logs: list[deque[float]]) -> None:
        """Keep the logs `hit` changed (in memory they were changed in place)."""

    def reset(self, key_prefix: str = "") -> None:
        with self._lock:
            for k in [k for k in self._log if k[0].startswith(key_prefix)]:
                del self._log[k]
