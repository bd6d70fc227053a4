"""What a run found: violations (each with a reproducing request), skips (always with a reason)
and the (check, operation) pairs that passed."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

SCHEMATHESIS = "schemathesis"
DOMAIN = "domain"


@dataclass
class Violation:
    check: str  # a Schemathesis check name, or one of our families (envelope, auth, ...)
    operation: str  # "GET /servers/{id}", or "*" for API-wide findings
    message: str
    curl: str | None = None
    response: str | None = None  # "HTTP 200" plus a body excerpt
    source: str = DOMAIN
    count: int = 1  # how many times the same finding recurred


@dataclass
class Skip:
    check: str
    reason: str
    operation: str = "*"


@dataclass
class Results:
    api: str
    base_url: str
    violations: list[Violation] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)
    passed: set[tuple[str, str]] = field(default_factory=set)
    ran: dict[str, float] = field(default_factory=dict)  # phase or family → seconds
    notes: list[str] = field(default_factory=list)
    requests: int = 0
    rate_limited: int = 0
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    _keys: dict[tuple[str, str, str], Violation] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def fail(
        self,
        check: str,
        operation: str,
        message: str,
        *,
        curl: str | None = None,
        response: str | None = None,
        key: str | None = None,
        source: str = DOMAIN,
    ) -> None:
        """Record a violation; the same (check, operation, key) is reported once, with a count."""
        k = (check, operation, key if key is not None else message)
        with self._lock:
            existing = self._keys.get(k)
            if existing is not None:
                existing.count += 1
                return
            v = Violation(check, operation, message, curl, response, source)
            self._keys[k] = v
            self.violations.append(v)

    def skip(self, check: str, reason: str, operation: str = "*") -> None:
        with self._lock:
            if not any(s.check == check and s.operation == operation for s in self.skips):
                self.skips.append(Skip(check, reason, operation))

    def ok(self, check: str, operation: str) -> None:
        with self._lock:
            self.passed.add((check, operation))

    @property
    def failed_checks(self) -> list[str]:
        return sorted({v.check for v in self.violations})

    @property
    def duration(self) -> float:
        return (self.finished or time.monotonic()) - self.started
