"""The request budget every phase shares: pace requests under the backend's limits, honour
`Retry-After`, and keep count.

Two modes (`--rate-limit`):

* `N/m` (or `N/s`, `N/h`): never more than N requests in any window of that length (a moving
  window, the only pacing that cannot overshoot a moving-window server), plus the spec's own
  buckets (`x-sandbox.rate-limits`) for operations that declare them in `x-rate-limit`.
* `auto`: no pacing of our own; read the backend's headers instead. When a response says the
  bucket is empty (`X-RateLimit-Remaining: 0` / `RateLimit: ...;r=0`), wait `t` seconds before the
  next request.

In both modes a 429 with `Retry-After` pauses *every* caller until that moment; the HTTP layers
(our httpx transport, Schemathesis' `rate-limit = "auto"` retry) then resend the request.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from judge.headers import header, rate_state, reset_seconds, retry_after_seconds

if TYPE_CHECKING:
    from contract import Bucket

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$", re.IGNORECASE)
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
MAX_WAIT = 120.0  # never sleep longer than this at once on the backend's word


class BudgetError(ValueError):
    pass


class Interrupted(KeyboardInterrupt):
    """The run was asked to stop (a signal, `--max-time`): no new request goes out.

    A KeyboardInterrupt, so Schemathesis, when a hook raises it, ends its scenario as interrupted
    rather than reporting an error; our families never catch it."""


@dataclass
class Window:
    limit: int
    seconds: float
    log: deque[float] = field(default_factory=deque)

    def wait(self, now: float) -> float:
        while self.log and self.log[0] <= now - self.seconds:
            self.log.popleft()
        if len(self.log) < self.limit:
            return 0.0
        # A little slack: the server stamps a request when it arrives, a bit after we did.
        return self.log[len(self.log) - self.limit] + self.seconds * 1.01 + 0.2 - now


def parse_rate(value: str) -> tuple[int, float] | None:
    """`100/m` → (100, 60.0); `auto` → None."""
    if value.strip().lower() == "auto":
        return None
    m = _SPEC.match(value)
    if not m or int(m.group(1)) < 1:
        raise BudgetError(f"--rate-limit must be N/s, N/m, N/h or auto, not {value!r}")
    return int(m.group(1)), _UNITS[m.group(2)[0].lower()]


class Budget:
    """Thread-safe; one per run, shared by Schemathesis (via hooks) and the domain probes."""

    def __init__(
        self,
        rate: str = "auto",
        spec_buckets: Mapping[str, Bucket] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parsed = parse_rate(rate)
        self.mode = "auto" if parsed is None else "paced"
        self.rate = rate
        self.clock, self.sleep = clock, sleep
        self.windows: dict[str, Window] = {}
        if parsed is not None:
            self.windows["*"] = Window(*parsed)
            for name, b in (spec_buckets or {}).items():
                self.windows[name] = Window(b.limit, b.window)
        self.buckets = set(spec_buckets or {})
        self._paused: dict[str, float] = {}  # bucket name ("*": every request) → paused until
        self._lock = threading.Lock()
        self.requests = 0
        self.by_bucket: dict[str, int] = {}
        self.current = ""  # the operation being requested (for the progress display)
        self.section = "setup"  # what the run is doing (a family or a Schemathesis phase)
        self.by_section: dict[str, dict[str, int]] = {}  # section → bucket ("*": all) → requests
        self.rate_limited = 0
        self.waited = 0.0
        self.stop = threading.Event()  # set by a signal or --max-time: requests raise Interrupted
        self.stop_reason: str | None = None
        self.on_wait: Callable[[float, str], None] | None = None  # (seconds, why): for the progress display
        self.on_request: Callable[[], None] | None = None

    def interrupt(self, reason: str) -> None:
        if not self.stop.is_set():
            self.stop_reason = reason
            self.stop.set()

    def resume(self) -> None:
        """Let requests out again (the cleanup after an interruption)."""
        self.stop.clear()

    def pause(self, seconds: float) -> None:
        """Sleep, but wake up (and raise Interrupted) as soon as the run is stopped."""
        if self.sleep is time.sleep:
            if self.stop.wait(seconds):
                raise Interrupted(self.stop_reason or "stopped")
        else:
            self.sleep(seconds)

    def acquire(self, buckets: list[str] | tuple[str, ...] = ()) -> None:
        """Block until one more request may go out, then count it."""
        while True:
            if self.stop.is_set():
                raise Interrupted(self.stop_reason or "stopped")
            with self._lock:
                now = self.clock()
                wait = max(0.0, *(self._paused.get(name, 0.0) - now for name in ("*", *buckets)))
                for name in ("*", *buckets):
                    w = self.windows.get(name)
                    if w is not None:
                        wait = max(wait, w.wait(now))
                if wait <= 0:
                    for name in ("*", *buckets):
                        w = self.windows.get(name)
                        if w is not None:
                            w.log.append(now)
                    self.requests += 1
                    if self.on_request is not None:
                        self.on_request()
                    counts = self.by_section.setdefault(self.section, {})
                    for name in ("*", *buckets):
                        self.by_bucket[name] = self.by_bucket.get(name, 0) + 1
                        counts[name] = counts.get(name, 0) + 1
                    return
                self.waited += wait
                why = self._why(now, buckets)
            if self.on_wait is not None and wait >= 1.0:
                self.on_wait(wait, why)
            self.pause(min(wait, MAX_WAIT))

    def _why(self, now: float, buckets: tuple[str, ...] | list[str]) -> str:
        """What a wait is for: a 429's Retry-After, the backend's empty bucket, or our own pacing."""
        for name in ("*", *buckets):
            if self._paused.get(name, 0.0) > now:
                what = "every request" if name == "*" else f"the {name} bucket"
                return f"{what}: the backend said to wait (Retry-After or an empty RateLimit bucket)"
        for name in ("*", *buckets):
            w = self.windows.get(name)
            if w is not None and w.wait(now) > 0:
                what = "--rate-limit" if name == "*" else f"the spec's {name} bucket"
                return f"{what}: {w.limit} per {w.seconds:g}s"
        return "rate limit"

    def observe(self, status: int, headers: Mapping[str, object]) -> float | None:
        """Learn from a response; returns the Retry-After of a 429 (seconds), if any.

        A pause applies to the bucket the `RateLimit` header names when the spec declares it
        (only requests counting in that bucket wait), else to every request."""
        pause: float | None = None
        retry: float | None = None
        combined = header(headers, "RateLimit")
        named, state_r, state_t = rate_state(combined)
        bucket = named if named is not None and named in self.buckets else "*"
        if status == 429:
            self.rate_limited += 1
            retry = retry_after_seconds(headers)
            pause = retry if retry is not None else 1.0
        elif self.mode == "auto":
            remaining = header(headers, "X-RateLimit-Remaining")
            reset = header(headers, "X-RateLimit-Reset")
            if remaining is None:
                remaining = state_r
            if reset is None:
                reset = state_t
            seconds = reset_seconds(reset, headers)
            if remaining is not None and remaining.strip() == "0" and seconds is not None:
                pause = seconds
        if pause:
            with self._lock:
                until = self.clock() + min(math.ceil(pause), MAX_WAIT)
                self._paused[bucket] = max(self._paused.get(bucket, 0.0), until)
        return retry

    def estimate(self, limits: Mapping[str, Bucket]) -> float:
        """Seconds the requests counted so far need at least under `limits` (the spec's buckets)."""
        need = 0.0
        for name, count in self.by_bucket.items():
            if name == "*":
                continue
            b = limits.get(name)
            if b:
                # a moving window admits `limit` at once, then `limit` more each `window`
                need = max(need, (math.ceil(count / b.limit) - 1) * b.window)
        return need

    def describe(self) -> str:
        if self.mode == "auto":
            return "auto (backend's RateLimit headers and Retry-After)"
        w = self.windows["*"]
        return f"{w.limit} requests per {w.seconds:g}s (+ the spec's buckets), Retry-After honoured"
