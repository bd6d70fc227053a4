"""What every honest backend needs and nothing API-specific: tokens, an exact moving-window rate
limiter on an injectable clock, an in-memory store per (account, mode), JSON helpers, and a way to
serve an app with uvicorn on a free 127.0.0.1 port from a thread."""

from __future__ import annotations

import json
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any, NamedTuple

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.conformance.backends import serve as serve_app

Clock = Callable[[], float]

# Defects that can be planted in an honest backend with `make_app(defect=...)`.
DEFECTS: dict[str, str] = {
    "readonly-can-delete": "a token without the write permission can still delete",
    "total-counts-other-accounts": "list meta.total counts every account's records, not the caller's",
    "cross-account-restore": "POST /backups/{id}/restore accepts another account's backup",
    "ignored-filter": "the documented list filter (?status= / ?region=) is ignored",
    "enum-500": "a non-string value for an enum body field crashes the handler (500)",
}


class TestTokens(NamedTuple):
    full: str  # every permission, account "acme"
    limited: str  # read-only permissions (same as full where the document has no permissions)
    other: str  # every permission, another account


@dataclass
class Token:
    value: str
    account: str
    mode: str
    scopes: frozenset[str]
    user_id: str | None = None


class Tokens:
    """Bearer tokens by value; revocation removes them at once."""

    def __init__(self, prefixes: dict[str, str], all_scopes: tuple[str, ...] = ()) -> None:
        self.prefixes, self.all_scopes = prefixes, all_scopes
        self._by_value: dict[str, Token] = {}

    def mint(
        self,
        account: str = "acme",
        scopes: tuple[str, ...] | list[str] | None = None,
        mode: str = "live",
        user_id: str | None = None,
    ) -> str:
        value = self.prefixes[mode] + secrets.token_hex(16)
        chosen = self.all_scopes if scopes is None else tuple(scopes)
        self._by_value[value] = Token(value, account, mode, frozenset(chosen), user_id)
        return value

    def add(self, token: Token) -> None:
        self._by_value[token.value] = token

    def revoke(self, value: str) -> None:
        self._by_value.pop(value, None)

    def get(self, value: str) -> Token | None:
        return self._by_value.get(value)


def bearer(request: Request) -> str:
    kind, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if kind.lower() == "bearer" else ""


class Decision(NamedTuple):
    allowed: bool
    limit: int
    remaining: int
    reset_in: float  # seconds until the oldest request in the window leaves it (a slot frees)


class MovingWindow:
    """Exact "at most `limit` in any `window` seconds" per key (a log of accepted requests)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._logs: dict[tuple[str, ...], deque[float]] = {}
        self._lock = threading.Lock()

    def peek(self, key: tuple[str, ...], limit: int, window: float) -> Decision:
        with self._lock:
            now = self.clock()
            log = self._logs.setdefault(key, deque())
            while log and log[0] <= now - window:
                log.popleft()
            reset = min(window, log[0] + window - now) if log else window  # float error: never > window
            return Decision(len(log) < limit, limit, max(0, limit - len(log)), reset)

    def take(self, key: tuple[str, ...]) -> None:
        with self._lock:
            self._logs.setdefault(key, deque()).append(self.clock())


def check_limits(
    limiter: MovingWindow, who: str, buckets: list[tuple[str, int, float]]
) -> tuple[Decision, Decision | None]:
    """Count the request in every bucket if all have room. Returns the tightest bucket after the
    request, and the bucket that refused it (None when accepted)."""
    decisions = [(name, limiter.peek((who, name), limit, window)) for name, limit, window in buckets]
    for _name, d in decisions:
        if not d.allowed:
            return d, d
    for name, _limit, _window in buckets:
        limiter.take((who, name))
    after = [
        Decision(True, d.limit, d.remaining - 1, d.reset_in if d.remaining < d.limit else w)
        for (_n, d), (_nm, _l, w) in zip(decisions, buckets, strict=True)
    ]
    return min(after, key=lambda d: d.remaining), None


def ceil_seconds(seconds: float) -> int:
    return max(1, math.ceil(seconds))


@dataclass
class Store:
    """Records per (account, mode), per collection, in creation order."""

    data: dict[tuple[str, str], dict[str, dict[str, dict[str, Any]]]] = field(default_factory=dict)

    def coll(self, account: str, mode: str, name: str) -> dict[str, dict[str, Any]]:
        return self.data.setdefault((account, mode), {}).setdefault(name, {})

    def everyone(self, mode: str, name: str) -> list[dict[str, Any]]:
        """Every account's records (used only by the planted total-counting defect)."""
        return [
            r for (_acc, m), colls in self.data.items() if m == mode for r in colls.get(name, {}).values()
        ]

    def find_anywhere(self, mode: str, name: str, rid: str) -> dict[str, Any] | None:
        for (_acc, m), colls in self.data.items():
            if m == mode and rid in colls.get(name, {}):
                return colls[name][rid]
        return None


class HttpError(Exception):
    """An error a handler raises; each backend renders it in its own envelope."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details
        self.headers = headers or {}


def new_id(prefix: str, n: int = 10) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(n))


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


async def json_body(
    request: Request, *, require_json_type: bool = True, code: str = "VALIDATION_ERROR", status: int = 400
) -> Any:
    """The parsed JSON body. A wrong content type is 415; unparsable JSON is `status` / `code`."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if require_json_type and ctype != "application/json":
        raise HttpError(415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type must be application/json")
    try:
        return json.loads(raw or b"null")
    except (ValueError, RecursionError):
        raise HttpError(status, code, "Request body is not valid JSON") from None


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers=headers)


def query_int(request: Request, name: str, default: int, minimum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HttpError(400, "VALIDATION_ERROR", f"{name} must be an integer", {"field": name}) from None
    if value < minimum:
        raise HttpError(400, "VALIDATION_ERROR", f"{name} must be at least {minimum}", {"field": name})
    return value


def merge_routes(routes: list[Route]) -> list[Route]:
    """One Route per path holding every method, so that a 405 lists all of them in `Allow`
    (separate Routes per method would each announce only their own)."""
    by_path: dict[str, dict[str, Any]] = {}
    for route in routes:
        for method in route.methods or ():
            by_path.setdefault(route.path, {}).setdefault(method, route.endpoint)
    merged = []
    for path, handlers in by_path.items():

        async def dispatch(request: Request, handlers: dict[str, Any] = handlers) -> Response:
            response: Response = await handlers[request.method](request)
            return response

        merged.append(Route(path, dispatch, methods=sorted(handlers)))
    return merged


class DateHeader:
    """ASGI middleware: a `Date` header read from the clock for each response. (uvicorn's own is
    refreshed once a second, so it can lag by up to a second: a client reading an epoch
    `X-RateLimit-Reset` against it would see a reset a second further away than it is.)"""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def send_dated(message: Any) -> None:
            if message["type"] == "http.response.start":
                date = formatdate(time.time(), usegmt=True).encode()
                message = {**message, "headers": [*message.get("headers", []), (b"date", date)]}
            await send(message)

        await self.app(scope, receive, send_dated)


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve an honest backend on 127.0.0.1:<free port> from a thread, with an exact `Date` header
    per response (its own, not uvicorn's once-a-second one); yields `http://127.0.0.1:<port>`."""
    with serve_app(DateHeader(app), date_header=False) as url:
        yield url
