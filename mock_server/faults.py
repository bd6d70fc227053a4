"""Fault rules (`/_mock/faults`, `serve --faults FILE`): latency, an error status, a dropped
connection, a truncated body, a forced 429 — as data, seeded, listable and removable (after
Toxiproxy's toxics and WireMock's faults).

A rule matches requests by API, operationId, method, path pattern (a glob on the path below the
API's base path: `/servers/*`), token (a value or its `tok_` id; only the id is kept) or
account; it fires with `probability` (default 1), at most `count` times (default: no limit).
Whether it fires on the n-th request it matches is decided by `seed` and n alone, so a run is
reproducible. Rules live in the store (table `_mock:faults`), so `serve --workers N` share them
and their counters; a request costs one version check while no rule exists.

Effects, which may be combined with `latency_ms` (a fixed number, or `[min, max]` for a uniform
draw):
- `status`: an error in the API's own envelope; only a status every matched operation documents
  (else the rule is refused, naming the statuses they document); a 429 or 503 carries
  `Retry-After: retry_after` (default 1) and a 429 coherent rate-limit headers;
- `drop: true`: the connection is closed before any byte of a response (the handler never runs);
- `truncate: N`: the real response (the handler runs: its writes are kept) cut after N bytes of
  body, its `Content-Length` still announcing the whole.
"""

from __future__ import annotations

import asyncio
import builtins
import fnmatch
import random
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from contract import Contract, Operation

from .clock import Clock
from .ids import IdGenerator
from .store import Store
from .tokens import TokenService

# An effect is applied by the engine's `fault` stage to its per-request record; typed loosely
# here, since the engine and its stages import this module (the layer test forbids the circle).
ApiEngine = Any
Pass = Any

TABLE = "_mock:faults"
MATCH = ("api", "operation", "method", "path", "token", "account")
EFFECTS = ("status", "drop", "truncate")
FIELDS = {*MATCH, *EFFECTS, "latency_ms", "retry_after", "probability", "count", "seed", "message", "name"}
MAX_LATENCY_MS = 600_000


class FaultError(ValueError):
    """A rule the sandbox refuses (400 from the control API, an error from `serve --faults`)."""


@dataclass(frozen=True)
class Fault:
    """What a rule does to one request."""

    rule: str
    latency: float  # seconds
    status: int | None = None
    retry_after: int = 1
    drop: bool = False
    truncate: int | None = None
    message: str | None = None

    @property
    def effects(self) -> tuple[Effect, ...]:
        """Its effects in the order they apply; the first that answers ends the request's way."""
        out: list[Effect] = [Delay(self.latency)] if self.latency else []
        if self.drop:
            out.append(Drop())
        if self.status is not None:
            out.append(Fail(self.status, self.message or "Injected fault", self.retry_after))
        if self.truncate is not None:
            out.append(Truncate(self.truncate))
        return tuple(out)


class Effect:
    """One effect of a fault on the request it fires on (`stages.fault` applies them)."""

    async def apply(self, engine: ApiEngine, p: Pass) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Delay(Effect):
    seconds: float

    async def apply(self, engine: ApiEngine, p: Pass) -> None:
        await engine.sleep(self.seconds)


@dataclass(frozen=True)
class Drop(Effect):
    """No response at all: the connection closes."""

    async def apply(self, engine: ApiEngine, p: Pass) -> None:
        p.final = Dropped()


@dataclass(frozen=True)
class Fail(Effect):
    """An error of `status` as the operation documents it (a 429 with coherent rate-limit headers)."""

    status: int
    message: str
    retry_after: int

    async def apply(self, engine: ApiEngine, p: Pass) -> None:
        p.reply = engine.forced_error(p, self.status, self.message, self.retry_after)


@dataclass(frozen=True)
class Truncate(Effect):
    """The real response (the handler runs), its body cut after `keep` bytes."""

    keep: int

    async def apply(self, engine: ApiEngine, p: Pass) -> None:
        p.truncate = self.keep


def _int(value: Any, name: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise FaultError(f"{name} must be an integer from {low} to {high}")
    return value


class FaultBook:
    """The rules, and the choice of which fires for a request."""

    def __init__(self, store: Store, specs: dict[str, Contract], ids: IdGenerator, clock: Clock) -> None:
        self.store, self.specs, self.ids, self.clock = store, specs, ids, clock
        self._rules: list[dict[str, Any]] = []
        self._version = -1
        self._lock = threading.Lock()

    # -- rules ----------------------------------------------------------------------------
    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        unknown = set(body) - FIELDS
        if unknown:
            known = ", ".join(sorted(FIELDS))
            raise FaultError(f"unknown fields: {', '.join(sorted(unknown))}; known: {known}")
        rule: dict[str, Any] = {}
        for key in ("api", "operation", "method", "path", "account", "name", "message"):
            value = body.get(key)
            if value is not None:
                if not isinstance(value, str) or not 0 < len(value) <= 256:
                    raise FaultError(f"{key} must be a string of 1 to 256 characters")
                rule[key] = value.upper() if key == "method" else value
        if "api" in rule and rule["api"] not in self.specs:
            raise FaultError(f"unknown api {rule['api']!r}; known: {', '.join(self.specs)}")
        token = body.get("token")
        if token is not None:
            if not isinstance(token, str) or not 0 < len(token) <= 4096:
                raise FaultError("token must be a token or its tok_ id")
            rule["token"] = TokenService.token_id(token)  # never the value
        ops = self._operations(rule)
        if not ops:
            raise FaultError("the rule matches no operation of the APIs served")
        effects = [e for e in EFFECTS if body.get(e) not in (None, False)]
        if len(effects) > 1:
            raise FaultError(f"one of {', '.join(EFFECTS)} per rule (with latency_ms if wanted)")
        if not effects and body.get("latency_ms") is None:
            raise FaultError("a rule needs an effect: latency_ms, status, drop or truncate")
        if body.get("status") is not None:
            status = _int(body["status"], "status", 400, 599)
            missing = [op for op in ops if not op.documents(status)]
            if missing:
                common = sorted(set.intersection(*(_statuses(op) for op in ops)))
                names = ", ".join(op.operation_id for op in missing[:5])
                raise FaultError(
                    f"status {status} is not documented for {names}; documented by every operation the "
                    f"rule matches: {', '.join(common) or 'none (narrow the rule)'}"
                )
            rule["status"] = status
            if status in (429, 503):
                rule["retry_after"] = _int(body.get("retry_after", 1), "retry_after", 0, 86_400)
        elif body.get("retry_after") is not None:
            raise FaultError("retry_after goes with status 429 or 503")
        if body.get("drop") not in (None, False):
            if body["drop"] is not True:
                raise FaultError("drop must be true")
            rule["drop"] = True
        if body.get("truncate") is not None:
            rule["truncate"] = _int(body["truncate"], "truncate", 0, 10**9)
        latency = body.get("latency_ms")
        if latency is not None:
            if isinstance(latency, list) and len(latency) == 2:
                low, high = (_int(x, "latency_ms", 0, MAX_LATENCY_MS) for x in latency)
                if low > high:
                    raise FaultError("latency_ms [min, max] needs min <= max")
                rule["latency_ms"] = [low, high]
            else:
                rule["latency_ms"] = _int(latency, "latency_ms", 0, MAX_LATENCY_MS)
        probability = body.get("probability", 1)
        if (
            not isinstance(probability, (int, float))
            or isinstance(probability, bool)
            or not 0 <= probability <= 1
        ):
            raise FaultError("probability must be a number from 0 to 1")
        rule["probability"] = float(probability)
        count = body.get("count")
        rule["count"] = None if count is None else _int(count, "count", 1, 10**9)
        seed = body.get("seed")
        rule["seed"] = _int(seed, "seed", 0, 2**63) if seed is not None else int(self.ids.short("", 9), 36)
        rule.update(
            id=self.ids.short("flt_", 12),
            seen=0,
            fired=0,
            remaining=rule["count"],
            created_at=self.clock.isoformat(),
        )
        with self.store.transaction():
            self.store.insert(TABLE, rule)
        return rule

    def list(self, api: str | None = None) -> builtins.list[dict[str, Any]]:
        return [r for r in self.store.find(TABLE) if api is None or r.get("api") in (None, api)]

    def delete(self, rid: str) -> bool:
        with self.store.transaction():
            return self.store.delete(TABLE, rid)

    def clear(self, api: str | None = None) -> int:
        """Remove every rule (of one API: the rules naming it)."""
        with self.store.transaction():
            gone = [r["id"] for r in self.store.find(TABLE) if api is None or r.get("api") == api]
            for rid in gone:
                self.store.delete(TABLE, rid)
        return len(gone)

    def _operations(self, rule: dict[str, Any]) -> builtins.list[Operation]:
        out: builtins.list[Operation] = []
        for name, spec in self.specs.items():
            if rule.get("api") not in (None, name):
                continue
            for op in spec.operations:
                if rule.get("operation") not in (None, op.operation_id):
                    continue
                if rule.get("method") not in (None, op.method.upper()):
                    continue
                if "path" in rule and not fnmatch.fnmatchcase(op.path, rule["path"]):
                    continue
                out.append(op)
        return out

    # -- per request ----------------------------------------------------------------------
    def pick(
        self, api: str, op: Operation, method: str, path: str, subject: str | None, account: str | None
    ) -> Fault | None:
        """The first rule (in creation order) that matches this request and fires, if any."""
        version = self.store.version(TABLE)
        if version != self._version:
            with self._lock:
                self._rules = self.store.find(TABLE)
                self._version = version
        if not self._rules:
            return None
        for rule in self._rules:
            if not _matches(rule, api, op, method, path, subject, account):
                continue
            with self.store.transaction():  # the counters are shared: read them again, locked
                fresh = self.store.get(TABLE, rule["id"])
                if fresh is None or fresh.get("remaining") == 0:
                    continue
                n = int(fresh["seen"])
                fires = random.Random(f"{fresh['seed']}:{n}").random() < fresh["probability"]
                changes: dict[str, Any] = {"seen": n + 1}
                if fires:
                    changes["fired"] = int(fresh["fired"]) + 1
                    if fresh.get("remaining") is not None:
                        changes["remaining"] = int(fresh["remaining"]) - 1
                self.store.update(TABLE, fresh["id"], changes)
            if fires:
                return _fault(fresh, n)
        return None


def load_faults(book: FaultBook, path: Path) -> list[dict[str, Any]]:
    """`serve --faults FILE`: a YAML or JSON list of rules (or `{faults: [...]}`)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise FaultError(f"{path}: cannot read fault rules ({exc})") from None
    if isinstance(data, dict) and set(data) == {"faults"}:
        data = data["faults"]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise FaultError(f"{path}: fault rules are a list of mappings (or faults: [...])")
    made = []
    for i, body in enumerate(data):
        try:
            made.append(book.create(body))
        except FaultError as exc:
            raise FaultError(f"{path}: faults[{i}]: {exc}") from None
    return made


def _statuses(op: Operation) -> set[str]:
    return {c for c in op.responses if c.isdigit() and c >= "400"}


def _matches(
    rule: dict[str, Any],
    api: str,
    op: Operation,
    method: str,
    path: str,
    subject: str | None,
    account: str | None,
) -> bool:
    return (
        rule.get("api", api) == api
        and rule.get("operation", op.operation_id) == op.operation_id
        and rule.get("method", method) == method
        and ("path" not in rule or fnmatch.fnmatchcase(path, rule["path"]))
        and rule.get("token", subject) == subject
        and rule.get("account", account) == account
    )


def _fault(rule: dict[str, Any], n: int) -> Fault:
    latency = rule.get("latency_ms") or 0
    if isinstance(latency, list):
        latency = random.Random(f"{rule['seed']}:{n}:latency").uniform(latency[0], latency[1])
    return Fault(
        rule=rule["id"],
        latency=float(latency) / 1000,
        status=rule.get("status"),
        retry_after=int(rule.get("retry_after", 1)),
        drop=bool(rule.get("drop")),
        truncate=rule.get("truncate"),
        message=rule.get("message"),
    )


def _transport(send: Send) -> Any:
    """The connection under uvicorn's `send` (its request cycle's transport), if there is one."""
    return getattr(getattr(send, "__self__", None), "transport", None)


async def _close(send: Send) -> None:
    transport = _transport(send)
    if transport is not None:
        transport.close()
        for _ in range(3):  # let the server see the connection gone (no 500 of its own)
            await asyncio.sleep(0)


class Dropped(Response):
    """No response at all: the connection closes (a client sees a reset / incomplete read)."""

    def __init__(self) -> None:
        super().__init__(status_code=0)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if _transport(send) is None:
            raise ConnectionResetError("fault: connection dropped")
        await _close(send)


class Truncated(Response):
    """`response` with only its first `keep` bytes of body, then the connection closed."""

    def __init__(self, response: Response, keep: int) -> None:
        self.whole = response
        self.keep = keep
        self.status_code = response.status_code
        self.body = bytes(response.body)[:keep]
        self.background = None
        self.raw_headers = response.raw_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body, "more_body": True})
        if _transport(send) is None:
            raise ConnectionResetError("fault: body truncated")
        await _close(send)
