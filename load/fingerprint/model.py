"""What the fingerprinter observes and what it concludes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

ALGORITHMS = ("fixed-window", "sliding-window", "token-bucket", "none")


@dataclass
class Obs:
    """One request as the client saw it: monotonic send/receive times, wall time at receipt."""

    who: str  # "main" | "other" | "same" (the token that sent it) | an operation id
    start: float
    end: float
    status: int  # 0: no HTTP answer
    headers: Mapping[str, str]
    wall: float
    body: Any = None

    @property
    def mid(self) -> float:
        return (self.start + self.end) / 2

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300

    @property
    def refused(self) -> bool:
        return self.status == 429


Send = Callable[[str], Awaitable[Obs]]  # who -> one request with that token (or of that operation)


@dataclass
class Sweep:
    """A refusal and the first admission after it: the true wait lies in [lo, hi] from `refusal.end`."""

    refusal: Obs
    lo: float  # monotonic time of the last refusal before the admission (mid)
    hi: float  # monotonic time of the admission (mid)


@dataclass
class Shape:
    """The limiter as inferred from timing alone."""

    algorithm: str
    limit: int | None = None
    window_s: float | None = None
    burst: int | None = None
    rate: float | None = None  # admissions per second in the long run
    key: str = "unknown"  # token | account | global | unknown
    evidence: list[str] = field(default_factory=list)


@dataclass
class Hint:
    """What the documents say (or None): used to place polls, never to decide."""

    limit: int | None = None
    window: float | None = None
