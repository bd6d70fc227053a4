"""The request path's Redis client: one connection per event loop, commands pipelined.

Every request of a replica sends its one script (`store_redis.RedisStore.open`) through the same
connection: what the event loop's callbacks send in one turn leaves in one write, and replies
come back in order, parsed by hiredis. redis-py's asyncio client costs ~300 µs of CPU per command
here (a pooled connection per concurrent call, a pure-Python parser), more than Redis spends on
the script; this costs ~30 µs. Same guarantees as `store_redis.connect`: a connection attempt gives
up after 1 s, a reply after 2 s (every command waiting on that connection fails, it is closed and
the next command reconnects), one immediate retry on a broken connection, scripts sent again
whole on `NOSCRIPT` (Redis restarted). Failures are redis-py's exceptions, so callers handle
both clients alike.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import hiredis
import redis
from redis.connection import parse_url

CONNECT_TIMEOUT = 1.0
REPLY_TIMEOUT = 2.0


_BULK: dict[Any, bytes] = {}  # short text and numbers -> their RESP form (keys, script ids, limits)
_BULK_MAX = 4096  # emptied when full: what changes per request should come as bytes


def pack(parts: Sequence[Any]) -> bytes:
    """One command in RESP. Bytes go as they are; short text and numbers (the same few in every
    request's script call) are encoded once and remembered."""
    out = [b"*%d\r\n" % len(parts)]
    for p in parts:
        cls = p.__class__
        if cls is bytes:
            out += (b"$%d\r\n" % len(p), p, b"\r\n")
            continue
        if cls is not str and cls is not int:
            raw = bytes(p) if isinstance(p, (bytearray, memoryview)) else str(p).encode()
            out += (b"$%d\r\n" % len(raw), raw, b"\r\n")
            continue
        b = _BULK.get(p)  # str and int only: no two of them are equal yet differ in RESP
        if b is None:
            raw = p.encode() if cls is str else str(p).encode()
            b = b"$%d\r\n%b\r\n" % (len(raw), raw)
            if len(raw) <= 64:
                if len(_BULK) >= _BULK_MAX:
                    _BULK.clear()
                _BULK[p] = b
        out.append(b)
    return b"".join(out)


class _Link(asyncio.Protocol):
    """One connection: futures answered in the order their commands were sent."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.reader = hiredis.Reader()
        self.waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self.out: list[bytes] = []
        self.transport: asyncio.Transport | None = None
        self.dead: Exception | None = None
        self._flushing = False
        self._watch: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            if not self.waiting:  # nothing asked for it: the stream is out of step
                self._fail(redis.ConnectionError(f"unexpected reply from {self.where}"))
                return
            fut, _ = self.waiting.popleft()
            if not fut.done():
                fut.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(redis.ConnectionError(f"connection to {self.where} lost" + (f": {exc}" if exc else "")))

    def send(self, command: bytes) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        if self.dead is not None:
            fut.set_exception(self.dead)
            return fut
        self.waiting.append((fut, time.monotonic()))
        self.out.append(command)
        if not self._flushing:
            self._flushing = True
            loop.call_soon(self._flush)
        if self._watch is None:
            self._watch = loop.call_later(REPLY_TIMEOUT, self._check)
        return fut

    def _flush(self) -> None:
        self._flushing = False
        if self.out and self.transport is not None and self.dead is None:
            self.transport.write(b"".join(self.out))
        self.out.clear()

    def _check(self) -> None:
        """The reply timeout: the oldest command unanswered for `REPLY_TIMEOUT` fails them all."""
        self._watch = None
        if not self.waiting or self.dead is not None:
            return
        age = time.monotonic() - self.waiting[0][1]
        if age >= REPLY_TIMEOUT:
            self._fail(redis.TimeoutError(f"Timeout reading from {self.where}"))
        else:
            self._watch = asyncio.get_running_loop().call_later(REPLY_TIMEOUT - age, self._check)

    def _fail(self, exc: Exception) -> None:
        if self.dead is None:
            self.dead = exc
        while self.waiting:
            fut, _ = self.waiting.popleft()
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()  # retrieved, awaited or not
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        if self.transport is not None:
            self.transport.abort()


class Wire:
    """Commands to the Redis at `url`, pipelined on one connection of the running loop."""

    def __init__(self, url: str) -> None:
        opts = parse_url(url)
        self.path: str | None = opts.get("path")
        self.host, self.port = opts.get("host", "localhost"), int(opts.get("port", 6379))
        self.ssl = opts.get("connection_class") is redis.SSLConnection
        self.where = self.path or f"{self.host}:{self.port}"
        self.hello: list[bytes] = []  # AUTH and SELECT, sent first on every connection
        if opts.get("password"):
            user = opts.get("username")
            self.hello.append(pack(["AUTH", user, opts["password"]] if user else ["AUTH", opts["password"]]))
        if int(opts.get("db") or 0):
            self.hello.append(pack(["SELECT", opts["db"]]))
        self._link: _Link | None = None
        self._opening: asyncio.Future[_Link] | None = None

    async def _connect(self) -> _Link:
        loop = asyncio.get_running_loop()
        try:
            if self.path:
                make = loop.create_unix_connection(lambda: _Link(self.where), self.path)
            else:
                ssl = self.ssl or None
                make = loop.create_connection(lambda: _Link(self.where), self.host, self.port, ssl=ssl)
            _, link = await asyncio.wait_for(make, CONNECT_TIMEOUT)
        except TimeoutError:
            raise redis.TimeoutError(f"Timeout connecting to {self.where}") from None
        except OSError as exc:
            raise redis.ConnectionError(f"Error connecting to {self.where}: {exc}") from None
        for reply in await asyncio.gather(*(link.send(c) for c in self.hello)):
            if isinstance(reply, hiredis.ReplyError):
                link._fail(redis.ConnectionError(f"{self.where}: {reply}"))
                raise redis.AuthenticationError(str(reply))
        return link

    async def _current(self) -> _Link:
        link = self._link
        if link is not None and link.dead is None:
            return link
        if self._opening is None or self._opening.done():
            self._opening = asyncio.ensure_future(self._connect())
        opening = self._opening
        try:
            link = self._link = await asyncio.shield(opening)
        finally:
            if opening.done() and (opening.cancelled() or opening.exception() is not None):
                self._opening = None  # the next command tries again
        return link

    async def execute(self, *parts: Any) -> Any:
        """One command's reply; an error reply raised as redis-py's `ResponseError` (or
        `NoScriptError`); a broken connection is retried once on a new one."""
        command = pack(parts)
        for attempt in (0, 1):
            try:
                reply = await (await self._current()).send(command)
                break
            except redis.ConnectionError:
                if attempt:
                    raise
        if isinstance(reply, hiredis.ReplyError):
            text = str(reply)
            kind = redis.exceptions.NoScriptError if text.startswith("NOSCRIPT") else redis.ResponseError
            raise kind(text)
        return reply

    def post(self, *parts: Any) -> bool:
        """Send a command whose answer nobody waits for (a request log entry), with the next
        batch; False, and nothing sent, when this loop has no live connection yet."""
        link = self._link
        if link is None or link.dead is not None:
            return False
        link.send(pack(parts)).add_done_callback(_ignore)
        return True

    def script(self, text: str) -> Script:
        return Script(self, text)

    def close(self) -> None:
        if self._link is not None and self._link.transport is not None:
            self._link.transport.close()
        self._link = None


def _ignore(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()  # retrieved: a lost entry of the request log is not an error


class Script:
    """A Lua script called by its SHA1, sent whole when Redis does not have it."""

    def __init__(self, wire: Wire, text: str) -> None:
        self.wire, self.text = wire, text
        self.sha = hashlib.sha1(text.encode()).hexdigest()

    async def __call__(self, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> Any:
        try:
            return await self.wire.execute("EVALSHA", self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            return await self.wire.execute("EVAL", self.text, len(keys), *keys, *args)
