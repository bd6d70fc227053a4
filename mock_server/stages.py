"""One API's request pipeline as named stages over one per-request record (`Pass`):

    route → authenticate → limit → scopes → fault → prefer → validate → dispatch

Each stage is a plain function of (engine, pass). A stage refuses by raising `ApiError`, having
written the reason into the pass (`why`, for the request log: no second authentication to
explain a 403 or a 429); a stage answers early by setting `reply` (a fault's error, a `Prefer`
choice) or `final` (no response at all: a dropped connection). A stage that must wait returns
an awaitable, which the engine awaits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response

from contract import Contract, Operation
from judge.headers import policy_number
from judge.request import validate_body

from . import actions, admission, forced, generic
from .calls import Call, Handler, Reply
from .errors import ApiError
from .ratelimit import Bucket, Decision
from .resources import Resources
from .services import Services
from .shared_redis import RedisRateLimiter
from .tokens import Principal


class ApiEngine(Protocol):
    """What the stages use of the engine (`engine.ApiEngine`, which imports this module)."""

    spec: Contract
    sandbox: Services
    resources: Resources
    handlers: dict[str, Handler]
    buckets: dict[str, tuple[Bucket, ...]]

    @property
    def sleep(self) -> Callable[..., Awaitable[Any]]: ...

    def params(
        self, request: Request, heads: dict[bytes, bytes], op: Operation, path_params: dict[str, str]
    ) -> dict[str, Any]: ...

    async def read_body(self, request: Request, heads: dict[bytes, bytes]) -> bytes: ...

    def error_reply(self, err: ApiError, request_id: str) -> Reply: ...


@dataclass(slots=True, eq=False)
class Pass:
    """One request on its way through the stages."""

    request: Request
    subpath: str
    heads: dict[bytes, bytes]  # the first of each header, by its ASGI (lowercase) name
    request_id: str
    started: float
    op: Operation | None = None
    path_params: dict[str, str] = field(default_factory=dict)
    principal: Principal | None = None
    decision: Decision | None = None
    admitted: bool = False  # the limit's decision is already taken (on Redis, with authentication)
    problems: list[dict[str, str]] = field(default_factory=list)  # the log's problems
    why: str | None = None  # a refusal's reason in words, from the stage that refused
    reply: Reply | None = None  # the answer, once a stage has one
    final: Response | None = None  # a response that is no reply (a dropped connection)
    truncate: int | None = None  # bytes of body to keep (a fault)
    call: Call | None = None  # what the handler gets, once validated

    def header(self, name: bytes) -> str | None:
        value = self.heads.get(name)
        return None if value is None else value.decode("latin-1")


Stage = Callable[[ApiEngine, Pass], "Awaitable[None] | None"]


def route(engine: ApiEngine, p: Pass) -> None:
    method = p.request.method
    op, p.path_params, allowed = engine.spec.match(method.lower(), p.subpath or "/")
    if op is None:
        if allowed:
            raise ApiError(
                405,
                "METHOD_NOT_ALLOWED",
                f"Method {method} not allowed",
                headers={"Allow": ", ".join(sorted(set(allowed)))},
            )
        p.why = f"no operation of {engine.spec.name} matches {method} {p.request.url.path}"
        raise ApiError(404, "NOT_FOUND", "No such endpoint")
    p.op = op


def authenticate(engine: ApiEngine, p: Pass) -> Awaitable[None] | None:
    assert p.op is not None
    if isinstance(engine.sandbox.limiter, RedisRateLimiter):
        return _admit(engine, p)  # Redis: the caller and the limit's decision in one round trip
    if not p.op.public:
        p.principal = admission.authenticate(engine, p.request)
    return None


async def _admit(engine: ApiEngine, p: Pass) -> None:
    assert p.op is not None
    p.principal, p.decision = await admission.admit(engine, p.request, p.op)
    p.admitted = True


def limit(engine: ApiEngine, p: Pass) -> None:
    assert p.op is not None
    if not p.admitted:  # in process: decided here (on Redis, `authenticate` decided it)
        principal, client = p.principal, p.request.client
        key = principal.subject if principal else f"ip:{client.host if client else '-'}"
        p.decision = engine.sandbox.limiter.hit(key, engine.buckets[p.op.operation_id])
    d = p.decision
    if d is not None and not d.allowed:
        b, w = d.bucket, policy_number(d.bucket.window)
        shown = f" ({b.limit} per {w} s)" if w.isdigit() else ""
        p.why = f'bucket "{b.name}"{shown} is used up; a slot frees in {d.reset} s (Retry-After)'
        raise ApiError(429, "RATE_LIMITED", f"Rate limit exceeded. Retry after {d.retry_after} seconds.")


def scopes(engine: ApiEngine, p: Pass) -> None:
    principal, op = p.principal, p.op
    if principal is None or op is None:
        return
    missing = [s for s in op.scopes if s not in principal.scopes]
    if missing:
        has = ", ".join(sorted(principal.scopes)) or "none"
        p.why = f"the token lacks {', '.join(missing)} (it has: {has})"
        raise ApiError(403, "FORBIDDEN", f"Token does not have permission: {missing[0]}")


def fault(engine: ApiEngine, p: Pass) -> Awaitable[None] | None:
    assert p.op is not None
    principal = p.principal
    found = engine.sandbox.faults.pick(
        engine.spec.name,
        p.op,
        p.request.method,
        p.subpath or "/",
        principal.subject if principal else None,
        principal.account if principal else None,
    )
    if found is None:
        return None
    p.problems = [{"field": "fault", "reason": f"{found.rule} fired"}]
    return _apply(engine, p, found.effects)


async def _apply(engine: ApiEngine, p: Pass, effects: tuple[Any, ...]) -> None:
    for effect in effects:
        await effect.apply(engine, p)
        if p.reply is not None or p.final is not None:
            return


def prefer(engine: ApiEngine, p: Pass) -> Awaitable[None] | None:
    """`Prefer: code=…, example=…, delay=…` from a test-mode token: wait, then the chosen
    response (never reaching a handler: stored state is never changed)."""
    if p.principal is None or p.principal.mode != "test":
        return None
    header = p.header(b"prefer")
    return None if header is None else _prefer(engine, p, header)


async def _prefer(engine: ApiEngine, p: Pass, header: str) -> None:
    assert p.op is not None
    pref = forced.parse_prefer(header)
    if pref.delay_ms:
        await engine.sleep(pref.delay_ms / 1000)
    if not pref.forces:
        return
    chosen = forced.preferred(engine.spec, p.op, pref, p.decision)
    p.reply = engine.error_reply(chosen, p.request_id) if isinstance(chosen, ApiError) else chosen
    p.problems = [{"field": "Prefer", "reason": f"chosen by the client: {header[:80]}"}]
    p.truncate = None  # a chosen response is answered whole


async def validate(engine: ApiEngine, p: Pass) -> None:
    """The typed parameters and the schema-valid body: the handler's `Call`."""
    op = p.op
    assert op is not None
    params = engine.params(p.request, p.heads, op, p.path_params)
    # A body is read only where the operation takes one: elsewhere it is ignored, unread.
    raw_body = await engine.read_body(p.request, p.heads) if op.body_schema is not None else b""
    body = validate_body(op, raw_body, p.header(b"content-type"))
    client = p.request.client
    p.call = Call(
        engine.spec,
        op,
        p.principal,
        params,
        body,
        engine.resources,
        engine.sandbox,
        raw_body,
        p.request,
        client.host if client else "-",
    )


def dispatch(engine: ApiEngine, p: Pass) -> Awaitable[None] | None:
    op, call = p.op, p.call
    assert op is not None and call is not None
    run = engine.handlers[op.handler] if op.handler else actions.run if op.action else generic.run
    if p.request.method in ("GET", "HEAD"):
        p.reply = run(call)
        return None
    return _write(engine, p, run, call)


async def _write(engine: ApiEngine, p: Pass, run: Handler, call: Call) -> None:
    """Every write of the request saved together, or none (StorageError: 507/503)."""
    p.reply = await engine.sandbox.store.write(lambda: run(call))  # Redis: see `RedisStore.write`


STAGES: tuple[Stage, ...] = (route, authenticate, limit, scopes, fault, prefer, validate, dispatch)
