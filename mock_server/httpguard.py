"""Bounds on what a connection may cost before the app sees a request.

uvicorn (0.55, httptools) has no limit on a request head and no timeout on reading it: a
64 MiB header stalled other clients 2.4 s, four of 128 MiB pushed the server to 626 MB, and
1,100 connections that never finished their headers stayed open for ever. The protocol here
is uvicorn's httptools protocol with two guards:

- a request head (request line and headers) larger than `MAX_HEAD_BYTES` is answered `431`
  (`414` while the request line itself has not ended) and the connection closed, before
  httptools buffers more of it;
- a head must arrive within `head_timeout` seconds of the connection opening, or of the first
  byte of the next request on a kept-alive one: then `408` (or, if nothing came, a plain
  close). Idle kept-alive connections are closed by uvicorn's own `timeout_keep_alive`;
- a request body has a deadline too: each read within `head_timeout` seconds of the last and
  the whole body within `body_timeout` of its head, or `408` (a plain close once the answer has
  begun); more than `MAX_BODY_BYTES` of body (declared or sent) is `413`; and once the answer
  is complete, a connection whose body is still arriving is closed rather than read to its end
  (a client declaring 100 MB and trickling a byte every 3 s held its connection for ever, even
  after its 401: 1,100 of them made every normal request fail).

These answers come from below the app, so they are JSON (`{"error": {"code", "message"}}`)
but not any API's envelope. Inside those bounds the app answers in the envelope: a URL over
`MAX_URL_BYTES` is `414`, headers over `MAX_HEADER_BYTES` are `431` (`app.py`).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

MAX_HEAD_BYTES = 64 * 1024  # request line + headers, read by the protocol
MAX_URL_BYTES = 16 * 1024  # path + query, checked by the app (in the API's envelope)
MAX_HEADER_BYTES = 32 * 1024  # names + values of every header, checked by the app
HEAD_TIMEOUT = 10.0
BODY_TIMEOUT = 60.0  # the whole body, from the end of its head
MAX_BODY_BYTES = 1_048_576  # as `validation.MAX_BODY_BYTES`, the documented maximum
KEEP_ALIVE_TIMEOUT = 5
AFTER_ANSWER = 1.0  # a body still arriving after its answer: closed this long after

_REASONS = {
    408: "Request Timeout",
    413: "Content Too Large",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
}
_CODES = {
    408: "REQUEST_TIMEOUT",
    413: "PAYLOAD_TOO_LARGE",
    414: "URI_TOO_LONG",
    431: "REQUEST_HEADER_FIELDS_TOO_LARGE",
}


def raw_error(status: int, message: str) -> bytes:
    """A whole HTTP/1.1 response that closes the connection."""
    body = json.dumps({"error": {"code": _CODES[status], "message": message}}).encode()
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - uvicorn without httptools: h11 and its own limit
    HttpToolsProtocol = None  # type: ignore[assignment, misc]


def protocol_options(head_timeout: float = HEAD_TIMEOUT) -> dict[str, Any]:
    """`uvicorn.Config` keyword arguments for the guarded protocol (h11 with its own head limit,
    a plain-text 400, where httptools is missing)."""
    if HttpToolsProtocol is None:  # pragma: no cover
        return {"http": "h11", "h11_max_incomplete_event_size": MAX_HEAD_BYTES}
    return {"http": GuardedHttpToolsProtocol}


def configure(
    config: Any, head_timeout: float, body_timeout: float = BODY_TIMEOUT, max_body: int = MAX_BODY_BYTES
) -> None:
    """Carry the timeouts and the body limit on the uvicorn config (it is pickled to `--workers`
    processes)."""
    config.sandbox_head_timeout = head_timeout
    config.sandbox_body_timeout = body_timeout
    config.sandbox_max_body = max_body


def server_config(
    app: Any,
    *,
    host: str,
    port: int,
    log_level: str = "warning",
    keep_alive: int = KEEP_ALIVE_TIMEOUT,
    head_timeout: float = HEAD_TIMEOUT,
    body_timeout: float = BODY_TIMEOUT,
    max_body: int = MAX_BODY_BYTES,
    **extra: Any,
) -> Any:
    """The `uvicorn.Config` every server of ours runs on: the sandbox (`serve`, one process or
    `--workers`) and the benchmark's baselines, so a baseline cannot differ in protocol, access
    log or keep-alive settings from what it is compared with."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        # uvicorn formats each access line's arguments (address, quoted path) even when the
        # level drops it: below `info` the access log is off instead
        access_log=log_level in ("trace", "debug", "info"),
        timeout_keep_alive=keep_alive,
        **protocol_options(),
        **extra,
    )
    configure(config, head_timeout, body_timeout, max_body)
    return config


if HttpToolsProtocol is not None:

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol with a head size limit and a head read timeout."""

        def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
            super().__init__(config, *args, **kwargs)
            self._head_timeout = float(getattr(config, "sandbox_head_timeout", HEAD_TIMEOUT))
            self._head_timer: asyncio.TimerHandle | None = None
            self._in_head = True  # waiting for (the rest of) a request head
            self._head_bytes = 0
            self._line_done = False
            self._tail = b""
            self._refused = False
            self._body_timeout = float(getattr(config, "sandbox_body_timeout", BODY_TIMEOUT))
            # a margin over the documented maximum: where the app reads a body, its 413 (in the
            # API's envelope) comes first; this one stops the reads nothing limits
            self._max_body = int(getattr(config, "sandbox_max_body", MAX_BODY_BYTES)) + 65536
            self._body_timer: asyncio.TimerHandle | None = None
            self._in_body = False  # a body is expected and has not all arrived
            self._body_bytes = 0
            self._body_deadline = 0.0
            self._last_read = 0.0

        # -- the timer ------------------------------------------------------------------------
        def _arm(self) -> None:
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(self._head_timeout, self._head_timed_out)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if not self._in_head or self.transport.is_closing():
                return
            if self.cycle is not None and not self.cycle.response_complete:
                self._arm()  # the server is still answering the previous request: not the client's wait
                return
            if self._head_bytes:
                self._refuse(408, f"Request head not received within {self._head_timeout:g} s")
            else:
                self.transport.close()

        def _refuse(self, status: int, message: str) -> None:
            self._refused = True
            self._disarm()
            self._end_body()
            if self.cycle is None or not self.cycle.response_started:
                self.transport.write(raw_error(status, message))
            elif self.cycle is not None:
                self.cycle.keep_alive = False
            self.transport.close()

        # -- the body's deadline ----------------------------------------------------------------
        def _expects_body(self) -> bool:
            for name, value in self.headers:
                if name == b"content-length":
                    return value.strip() not in (b"0", b"")
                if name == b"transfer-encoding":
                    return True
            return False

        def _start_body(self) -> None:
            now = self.loop.time()
            self._in_body, self._last_read = True, now
            self._body_deadline = now + self._body_timeout
            self._body_timer = self.loop.call_at(
                min(now + self._head_timeout, self._body_deadline), self._body_check
            )

        def _end_body(self) -> None:
            self._in_body = False
            if self._body_timer is not None:
                self._body_timer.cancel()
                self._body_timer = None

        def _body_check(self) -> None:
            self._body_timer = None
            if not self._in_body or self.transport.is_closing():
                return
            now = self.loop.time()
            if now >= self._body_deadline:
                self._refuse(408, f"Request body not received within {self._body_timeout:g} s")
            elif now - self._last_read >= self._head_timeout:
                self._refuse(408, f"Request body stalled: nothing received for {self._head_timeout:g} s")
            else:
                due = min(self._last_read + self._head_timeout, self._body_deadline)
                self._body_timer = self.loop.call_at(due, self._body_check)

        # -- uvicorn's protocol ---------------------------------------------------------------
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            self._end_body()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            if self._in_body:
                self._last_read = self.loop.time()
            if self._in_head:
                self._arm()
                buf = self._tail + data
                end = buf.find(b"\r\n\r\n")
                added = len(data) if end < 0 else end + 4 - len(self._tail)
                if not self._line_done:
                    newline = data.find(b"\n")
                    if newline >= 0 and self._head_bytes + newline < MAX_HEAD_BYTES:
                        self._line_done = True  # the request line ended within the limit
                if self._head_bytes + added > MAX_HEAD_BYTES:
                    if self._line_done:
                        self._refuse(431, f"Request line and headers exceed {MAX_HEAD_BYTES} bytes")
                    else:
                        self._refuse(414, f"Request line exceeds {MAX_HEAD_BYTES} bytes")
                    return
                self._head_bytes += added
                self._tail = buf[-3:]
            super().data_received(data)

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._disarm()
            self._body_bytes = 0
            super().on_headers_complete()
            if self._expects_body():
                self._start_body()

        def on_body(self, body: bytes) -> None:
            if self._refused:
                return
            self._body_bytes += len(body)
            if self._body_bytes > self._max_body:
                self._refuse(413, f"Request body exceeds {self._max_body} bytes")
                return
            super().on_body(body)

        def on_message_complete(self) -> None:
            if self._refused:
                return
            self._end_body()
            super().on_message_complete()
            self._in_head, self._head_bytes, self._line_done, self._tail = True, 0, False, b""

        def on_response_complete(self) -> None:
            if self._in_body and self._body_timer is not None:  # answered before its body came:
                # the rest is not read to its end; a moment for the client to read the answer
                self._body_deadline = min(self._body_deadline, self.loop.time() + AFTER_ANSWER)
                self._body_timer.cancel()
                self._body_timer = self.loop.call_at(self._body_deadline, self._body_check)
            super().on_response_complete()
