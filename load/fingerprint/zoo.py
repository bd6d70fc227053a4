"""Reference limiters, written apart from the sandbox's (mock_server/ratelimit.py), each as it
is usually written in the wild, behind a tiny Starlette app; and planted lies in their headers.
Every limiter takes its clock as a callable, so tests run them in virtual time."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

Clock = Callable[[], float]


@dataclass
class Answer:
    allowed: bool
    wait: float  # seconds until a request would be admitted
    remaining: int
    reset: float  # seconds until the budget is back (window end / bucket full / oldest leaves)


class FixedWindow:
    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self.counts: dict[tuple[str, int], int] = {}

    def hit(self, key: str, now: float) -> Answer:
        slot = math.floor(now / self.window)
        end = (slot + 1) * self.window
        n = self.counts.get((key, slot), 0)
        if n >= self.limit:
            return Answer(False, end - now, 0, end - now)
        self.counts[(key, slot)] = n + 1
        return Answer(True, 0, self.limit - n - 1, end - now)


class SlidingLog:
    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self.logs: dict[str, list[float]] = {}

    def hit(self, key: str, now: float) -> Answer:
        log = [t for t in self.logs.get(key, []) if t > now - self.window]
        self.logs[key] = log
        if len(log) >= self.limit:
            wait = log[-self.limit] + self.window - now
            return Answer(False, wait, 0, wait)
        log.append(now)
        return Answer(True, 0, self.limit - len(log), log[0] + self.window - now)


class SlidingCounter:
    """The weighted two-window counter (Cloudflare's, `limits`' sliding-window-counter)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self.counts: dict[tuple[str, int], int] = {}

    def hit(self, key: str, now: float) -> Answer:
        slot = math.floor(now / self.window)
        frac = now / self.window - slot
        prev, cur = self.counts.get((key, slot - 1), 0), self.counts.get((key, slot), 0)
        used = prev * (1 - frac) + cur
        if used + 1 > self.limit:
            # prev*(1-f') + cur + 1 <= limit  ->  f' = 1 - (limit - cur - 1) / prev, in this slot
            # if it can be; else in the next one, where this slot's count is the previous one
            need = 1 - (self.limit - cur - 1) / prev if prev else 2.0
            if need <= 1:
                wait = max((need - frac) * self.window, 0.001)
            else:
                wait = (1 - frac + max(0.0, 1 - (self.limit - 1) / cur)) * self.window
            return Answer(False, wait, 0, wait)
        self.counts[(key, slot)] = cur + 1
        return Answer(True, 0, int(self.limit - used - 1), (1 - frac) * self.window)


class TokenBucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.state: dict[str, tuple[float, float]] = {}

    def hit(self, key: str, now: float) -> Answer:
        tokens, last = self.state.get(key, (float(self.burst), now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1:
            self.state[key] = (tokens, now)
            return Answer(False, (1 - tokens) / self.rate, 0, (self.burst - tokens) / self.rate)
        tokens -= 1
        self.state[key] = (tokens, now)
        return Answer(True, 0, int(tokens), (self.burst - tokens) / self.rate)


class GCRA:
    """Generic cell rate algorithm (redis-cell): one theoretical arrival time per key."""

    def __init__(self, rate: float, burst: int) -> None:
        self.t, self.tau = 1 / rate, (burst - 1) / rate
        self.tat: dict[str, float] = {}

    def hit(self, key: str, now: float) -> Answer:
        tat = max(self.tat.get(key, now), now)
        if tat - now > self.tau:
            wait = tat - self.tau - now
            return Answer(False, wait, 0, tat - now)
        self.tat[key] = tat + self.t
        left = int((self.tau - (tat + self.t - now)) / self.t + 1)
        return Answer(True, 0, max(left, 0), tat + self.t - now)


@dataclass
class Lies:
    retry_after_short: float = 0.0  # seconds taken off Retry-After
    remaining_off: int = 0
    reset_ms: bool = False  # reset in milliseconds, as if seconds
    only_on_429: bool = False
    retry_after: bool = True  # send Retry-After at all
    counters: bool = True  # send X-RateLimit-* at all


def app(
    limiter: Any, clock: Clock, key: str = "token", lies: Lies | None = None, limit_header: int = 0
) -> Starlette:
    """Any path, any method: 200 `{"ok": true}` or 429. `key`: token | account (the token's
    part before the last '-') | global."""
    lie = lies or Lies()

    async def handle(request: Request) -> JSONResponse:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        k = {"token": token, "account": token.rsplit("-", 1)[0], "global": "*"}[key]
        a = limiter.hit(k, clock())
        h: dict[str, str] = {}
        if lie.counters and (a.allowed is False or not lie.only_on_429):
            reset = a.reset * 1000 if lie.reset_ms else a.reset
            h["X-RateLimit-Limit"] = str(limit_header)
            h["X-RateLimit-Remaining"] = str(a.remaining + lie.remaining_off)
            h["X-RateLimit-Reset"] = str(math.ceil(reset))
        if not a.allowed:
            if lie.retry_after:
                h["Retry-After"] = str(max(0, math.ceil(a.wait - lie.retry_after_short)))
            return JSONResponse({"error": "slow down"}, 429, headers=h)
        return JSONResponse({"ok": True}, headers=h)

    return Starlette(routes=[Route("/{path:path}", handle, methods=["GET", "POST", "DELETE"])])
