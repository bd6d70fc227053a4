"""The engine's clock: wall time plus an offset that tests and `/_mock/clock/advance` move."""

from __future__ import annotations

import math
import threading
import time
from datetime import UTC, datetime


class Clock:
    """Monotonic-enough seconds since the epoch; `advance` jumps ahead like a Stripe test clock."""

    def __init__(self, start: float | None = None, frozen: bool = False) -> None:
        self._lock = threading.Lock()
        self._frozen = frozen
        self._base = start if start is not None else time.time()
        self._started = time.monotonic()
        self._offset = 0.0

    def now(self) -> float:
        # No lock: `advance` replaces `_offset` in one assignment, which a reader sees whole.
        elapsed = 0.0 if self._frozen else time.monotonic() - self._started
        return self._base + elapsed + self._offset

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._offset += seconds
        return self.now()

    def isoformat(self, at: float | None = None) -> str:
        return iso(self.now() if at is None else at)


class FrozenClock(Clock):
    """A clock that moves only when told to: what tests inject."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        super().__init__(start=start, frozen=True)


def iso(ts: float) -> str:
    """RFC 3339 UTC with a Z, seconds precision (`2025-05-22T10:42:00Z`)."""
    global _last
    second = math.floor(ts)
    if ts - second > 0.999:  # microseconds may round up into the next second: as datetime does
        return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    last = _last  # one read: another thread may replace it meanwhile
    if last[0] == second:
        return last[1]
    text = datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    _last = (second, text)
    return text


_last: tuple[int, str] = (-1, "")  # the last second formatted: most responses fall in the same one
