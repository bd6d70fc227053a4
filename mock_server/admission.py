"""A request's admission: who calls (authentication) and whether their rate limit admits them.
The engine's `authenticate` and `limit` stages (`stages.py`) decide it in process; on Redis the
`authenticate` stage awaits `admit`, which decides both, and `limit` only reads its decision.

On Redis (`serve --store redis://`) this is also where a request meets the shared state, in one
round trip (`RedisRateLimiter.admit`): the process's cache catches up (under the store's lease
for a write) and the limit is decided. After it, nothing in the request waits on Redis but its
commit (`RedisStore.settle`, awaited by the app). The caller is known before the round trip
from the tokens this process has already seen valid, and checked again on the caught-up cache
after it; a token this process has not seen yet costs a second round trip for its decision."""

from __future__ import annotations

from typing import Protocol

from starlette.requests import Request

from contract import Contract, Operation

from . import diagnose
from .errors import ApiError
from .ratelimit import Bucket, Decision
from .services import Services
from .shared_redis import RedisRateLimiter
from .tokens import Principal


class Engine(Protocol):
    """What admission needs of an API's engine (`engine.ApiEngine`)."""

    spec: Contract
    sandbox: Services
    buckets: dict[str, tuple[Bucket, ...]]


def authenticate(engine: Engine, request: Request) -> Principal:
    """The caller of a non-public operation; a 401 (`ApiError`) when there is none."""
    spec = engine.spec
    token, _ = diagnose.credential(spec, request)
    principal = engine.sandbox.authenticate(spec, token) if token else None
    if principal is None:
        raise ApiError(
            401,
            "UNAUTHORIZED",
            "Invalid or missing authentication token",
            headers={"WWW-Authenticate": 'Bearer realm="' + spec.name + '"'},
        )
    return principal


async def admit(engine: Engine, request: Request, op: Operation) -> tuple[Principal | None, Decision | None]:
    """The principal (401 raised as `ApiError`) and the rate-limit decision (None: no limit)."""
    limiter, buckets = engine.sandbox.limiter, engine.buckets[op.operation_id]
    if not isinstance(limiter, RedisRateLimiter):
        principal = None if op.public else authenticate(engine, request)
        return principal, limiter.hit(principal.subject if principal else _ip(request), buckets)
    write = request.method not in ("GET", "HEAD")
    if op.public:
        return None, await limiter.admit(_ip(request), buckets, write)
    token, _ = diagnose.credential(engine.spec, request)
    tokens = getattr(engine.sandbox, "tokens", None)  # the sandbox's token book (`tokens.TokenService`)
    guess = tokens.known(engine.spec.name, token) if token and tokens is not None else None
    decision = await limiter.admit(guess.subject if guess else None, buckets, write)
    principal = authenticate(engine, request)  # on the caught-up cache: revoked since is a 401
    if guess is None or guess.subject != principal.subject:
        decision = await limiter.ahit(principal.subject, buckets)
    return principal, decision


def _ip(request: Request) -> str:
    """The rate-limit key of a caller without a token (a public operation)."""
    return f"ip:{request.client.host if request.client else '-'}"
