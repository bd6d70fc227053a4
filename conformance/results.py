"""What a run found: violations (each with a reproducing request), skips (always with a reason)
and the (check, operation) pairs that passed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

SCHEMATHESIS = "schemathesis"
DOMAIN = "domain"


def is_success(status: int, documented: Iterable[str] = ()) -> bool:
    """A success path answered: a 2xx, or a 3xx the operation documents (an OAuth redirect)."""
    return 200 <= status < 300 or (300 <= status < 400 and str(status) in documented)


@dataclass
class Violation:
    check: str  # a Schemathesis check name, or one of our families (envelope, auth, ...)
    operation: str  # "GET /servers/{id}", or "*" for API-wide findings
    message: str
    curl: str | None = None
    response: str | None = None  # "HTTP 200" plus a body excerpt
    source: str = DOMAIN
    count: int = 1  # how many times the same finding recurred
    key: str = ""  # stable identity of the finding (what a baseline records)
    inferred: str | None = None  # why it departs only from the sandbox's choice (never fails a run)
    known: bool = False  # listed in the --baseline file: reported, does not fail the run

    @property
    def failing(self) -> bool:
        return self.inferred is None and not self.known


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
    profile: str = "strict"  # documented: only what the vendor documents say fails a run
    inferred_ops: dict[str, str] = field(default_factory=dict)  # label → why the endpoint is inferred
    inferred_checks: dict[str, str] = field(default_factory=dict)  # check → why all it judges is inferred
    baseline: frozenset[tuple[str, str, str]] = frozenset()  # (check, operation, key) known already
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    successes: dict[str, int] = field(default_factory=dict)  # operation → 2xx responses seen
    operations: list[str] = field(default_factory=list)  # every operation of the spec, in order
    incomplete: str | None = None  # why the run stopped early (a signal, --max-time)
    cleanup: str | None = None  # "created N, deleted N, left M (why)"
    meta: dict[str, str] = field(default_factory=dict)  # date, tool and spec versions, seed, ...
    hints: list[str] = field(default_factory=list)  # "check your tokens, or the backend ignores ..."
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
        inferred: str | None = None,
        api_wide: bool = False,
    ) -> None:
        """Record a violation; the same (check, operation, key) is reported once, with a count.

        In the documented profile, a finding on an endpoint the documents do not show is the
        sandbox's choice (`inferred`), whatever the check: it is reported apart, never fails;
        unless it breaks a sentence the documents state of every endpoint (`api_wide`: a status
        table's "404 ... The requested resource does not exist")."""
        k = (check, operation, key if key is not None else message)
        inferred_op = operation in self.inferred_ops and not api_wide
        if self.profile == "documented" and inferred is None and inferred_op:
            inferred = f"the endpoint is not in the documents ({self.inferred_ops[operation]})"
        if self.profile == "documented" and inferred is None and check in self.inferred_checks:
            inferred = self.inferred_checks[check]
        if self.profile == "strict":
            inferred = None
        with self._lock:
            existing = self._keys.get(k)
            if existing is not None:
                existing.count += 1
                return
            v = Violation(check, operation, message, curl, response, source)
            v.key, v.inferred, v.known = k[2], inferred, k in self.baseline
            self._keys[k] = v
            self.violations.append(v)

    def success(self, operation: str) -> None:
        with self._lock:
            self.successes[operation] = self.successes.get(operation, 0) + 1

    @property
    def unexercised(self) -> list[str]:
        """Operations that never answered 2xx in this run: their success path went untested."""
        return [op for op in self.operations if not self.successes.get(op)]

    def skip(self, check: str, reason: str, operation: str = "*") -> None:
        with self._lock:
            if not any(s.check == check and s.operation == operation for s in self.skips):
                self.skips.append(Skip(check, reason, operation))

    def ok(self, check: str, operation: str) -> None:
        with self._lock:
            self.passed.add((check, operation))

    @property
    def failing(self) -> list[Violation]:
        """What fails the run: documented, and not in the baseline."""
        return [v for v in self.violations if v.failing]

    @property
    def differences(self) -> list[Violation]:
        """Where the backend differs only from the sandbox's inferred choices."""
        return [v for v in self.violations if v.inferred is not None]

    @property
    def known(self) -> list[Violation]:
        return [v for v in self.violations if v.known and v.inferred is None]

    @property
    def failed_checks(self) -> list[str]:
        return sorted({v.check for v in self.failing})

    @property
    def duration(self) -> float:
        return (self.finished or time.monotonic()) - self.started
