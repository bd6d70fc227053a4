"""The proxy's connections to its upstream: one per request in flight, idle ones kept for the next.

httpx's own pool (httpcore 1.0's `AsyncConnectionPool`) re-scans every connection for every
queued request at each step, O(connections x requests) (encode/httpcore#1035, unmerged in 1.0.9):
with 32 clients the proxy spent more time there than judging. `Transport` is httpx's transport,
its request/response API and exception mapping unchanged, with that pool replaced by a stack of
idle connections: a request takes the last idle one still open, or opens one; nothing is queued
or scanned. The proxy holds at most as many connections as it has requests in flight."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpcore
import httpx

MAX_IDLE = 256  # idle connections kept; more are closed when released
KEEPALIVE_EXPIRY = 5.0  # seconds an idle connection is kept (httpx's default)


class _Stack:
    """The pool interface httpx's transport calls (`handle_async_request`, `aclose`)."""

    def __init__(self, ssl_context: Any) -> None:
        self._ssl = ssl_context
        self._idle: list[httpcore.AsyncHTTPConnection] = []
        self.opened = 0  # connections opened, for tests and the curious

    async def _take(self, origin: httpcore.Origin) -> httpcore.AsyncHTTPConnection | None:
        while self._idle:
            conn = self._idle.pop()
            # closed by the upstream (its socket readable while idle) or past its keep-alive
            if conn.can_handle_request(origin) and conn.is_idle() and not conn.has_expired():
                return conn
            await conn.aclose()
        return None

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        for attempt in (1, 2):
            conn = await self._take(request.url.origin)
            if conn is None:
                conn = httpcore.AsyncHTTPConnection(
                    request.url.origin, ssl_context=self._ssl, keepalive_expiry=KEEPALIVE_EXPIRY
                )
                self.opened += 1
            try:
                response = await conn.handle_async_request(request)
            except httpcore.ConnectionNotAvailable:
                await conn.aclose()
                if attempt == 2:
                    raise
                continue  # an idle connection that could not take it after all: a fresh one
            except BaseException:
                await conn.aclose()
                raise
            stream = _Releasing(response.stream, conn, self)
            return httpcore.Response(
                response.status, headers=response.headers, content=stream, extensions=response.extensions
            )
        raise AssertionError("unreachable")

    async def release(self, conn: httpcore.AsyncHTTPConnection) -> None:
        if conn.is_idle() and len(self._idle) < MAX_IDLE:
            self._idle.append(conn)
        elif not conn.is_closed():
            await conn.aclose()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.aclose()

    async def __aenter__(self) -> _Stack:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class _Releasing:
    """A response body that hands its connection back once closed (read whole: kept alive;
    cut short: httpcore has closed it)."""

    def __init__(self, stream: Any, conn: httpcore.AsyncHTTPConnection, pool: _Stack) -> None:
        self._stream, self._conn, self._pool = stream, conn, pool

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in self._stream:
            yield part

    async def aclose(self) -> None:
        try:
            if hasattr(self._stream, "aclose"):
                await self._stream.aclose()
        finally:
            await self._pool.release(self._conn)


class Transport(httpx.AsyncHTTPTransport):
    """httpx's HTTP transport (TLS verified as httpx does) over `_Stack` instead of its pool."""

    def __init__(self) -> None:
        super().__init__()
        self._pool: Any = _Stack(httpx.create_ssl_context())

    @property
    def opened(self) -> int:
        return int(self._pool.opened)
