"""The validating proxy: an ASGI app forwarding every request to the upstream unchanged and
every response back unchanged, judging both on the way (`judge.exchange`).

* Forwarded as received: the method, the raw path and query (never re-encoded), every header
  but the hop-by-hop ones (`Host` becomes the upstream's), the body's bytes. Redirects are
  passed back, never followed; the response's bytes are passed on as they came (`aiter_raw`:
  never decoded, re-encoded or re-serialised), its headers likewise.
* Requests are read whole before they are forwarded (validation needs the body). A JSON
  response up to `MAX_JUDGED` bytes is read whole, judged, then passed on with an
  `X-Sandbox-Violations` header when it breaks the contract; any other response, and a JSON
  one found larger while buffering (at most `MAX_JUDGED` held; counted `unjudged_bodies`), is
  streamed as it arrives, judged by its status and headers only. A client that leaves stops
  the reading: the upstream's connection is closed, not drained.
* An exchange the proxy could not judge is never a pass: an upstream that does not answer,
  breaks the protocol (a truncated body, a dropped connection), stalls past `timeout` or resets
  is a 502 in the API's envelope (or, once the head has been passed on, an answer that breaks
  off) and an `upstream` failure in the log, the counts and the report.
* The server has the sandbox's bounds (`mock_server.httpguard`): a head size limit and timeout,
  a body deadline and `MAX_REQUEST`. Secrets in query strings and bodies are masked in the log
  and reports (`redact.py`).
* Each exchange goes to the request log (`GET /_mock/requests` on the proxy: the sandbox's
  shape, with `problems` and `differences`); never a credential: neither the Authorization
  header nor a cookie is logged, recorded or put in a report (reproductions say `$TOKEN`).
* `fail_on_violation`: an exchange breaking the documented contract is answered 502 in the
  API's error envelope naming the problem, instead of the upstream's answer.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import time
import zlib
from collections.abc import Callable
from typing import Any

import httpx
from starlette.types import Message, Receive, Scope, Send

from conformance.results import Results
from contract import Contract
from judge.exchange import Exchange, Finding, Judge, summary
from mock_server.clock import iso
from mock_server.envelope import Envelope
from mock_server.errors import ApiError
from mock_server.shared import RequestLog

from . import redact

MAX_JUDGED = 4 * 1024 * 1024  # a JSON response larger than this is streamed, its body unjudged
MAX_REQUEST = 64 * 1024 * 1024
HOP_BY_HOP = {
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"proxy-authenticate",
    b"proxy-authorization",
    b"te",
    b"trailer",
    b"transfer-encoding",
    b"upgrade",
}
VIOLATIONS_HEADER = b"x-sandbox-violations"
Observer = Callable[[Exchange, int, Any], None]  # (exchange, status, parsed JSON body or None)


def _broken(exc: Exception, received: int, status: int) -> Finding:
    """The failure of an exchange the proxy could not judge: counted and reported, never a PASS."""
    what = {
        httpx.RemoteProtocolError: "broke the HTTP protocol (a truncated body or a dropped connection)",
        httpx.ReadTimeout: "stopped sending (read timeout)",
        httpx.ReadError: "reset the connection",
    }
    reason = next((v for k, v in what.items() if isinstance(exc, k)), "failed")
    return Finding(
        "upstream",
        f"the upstream's answer (HTTP {status}) {reason} after {received} bytes of body"
        f" ({type(exc).__name__})",
        f"upstream-{type(exc).__name__}",
    )


async def _watch_disconnect(receive: Receive, gone: asyncio.Event) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            return


class BodyTooLarge(Exception):
    """A request body over `MAX_REQUEST`: answered 413, never forwarded."""


class ProxyApp:
    def __init__(
        self,
        contract: Contract,
        upstream: str,
        *,
        fail_on_violation: bool = False,
        observer: Observer | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        url = httpx.URL(upstream)
        self.contract = contract
        self.judge = Judge(contract)
        self.upstream = str(url).rstrip("/")
        self.origin = url.copy_with(raw_path=b"/", query=None, fragment=None)
        self.base_path = url.path.rstrip("/")
        self.fail_on_violation = fail_on_violation
        self.observer = observer
        self.envelope = Envelope(contract.templates)
        self.log = RequestLog(500)
        self.results = Results(contract.name, self.upstream, profile="documented")  # the backend's
        self.requests = Results(contract.name, self.upstream, profile="documented")  # the client's
        self.exchanges = 0
        self.unjudged = 0  # JSON answers over MAX_JUDGED: passed on, their bodies not judged
        self.client_left = 0  # exchanges whose client left before the end (upstream closed early)
        self._transport, self._timeout, self._clock = transport, timeout, clock
        self._client: httpx.AsyncClient | None = None

    # -- ASGI -----------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["path"] == "/_mock/requests" and scope["method"] == "GET":
            await self._send_json(send, 200, {"requests": self._log_rows(scope)})
            return
        if scope["path"] == "/_mock/proxy" and scope["method"] == "GET":
            await self._send_json(send, 200, self.status())
            return
        await self._forward(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self._transport, follow_redirects=False, timeout=self._timeout
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- one exchange ---------------------------------------------------------------------
    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        try:
            body = await _read_body(receive)
        except BodyTooLarge:
            message = f"Request body exceeds the proxy's {MAX_REQUEST} bytes"
            await self._reply_error(send, 413, "PAYLOAD_TOO_LARGE", message, [])
            return
        raw_path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string") or b""
        target = self.origin.copy_with(raw_path=raw_path + (b"?" + query if query else b""))
        headers = [
            (k, v) for k, v in scope["headers"] if k.lower() not in HOP_BY_HOP and k.lower() != b"host"
        ]
        ex = _exchange(scope, self.base_path, body)
        findings = self.judge.request(ex) if ex is not None else []
        try:
            upstream = await self.client.send(
                httpx.Request(scope["method"], target, headers=headers, content=body), stream=True
            )
        except httpx.HTTPError as exc:
            problem = Finding("upstream", f"the upstream did not answer: {type(exc).__name__}", "unreachable")
            await self._reply_error(send, 502, "BAD_GATEWAY", problem.message, [problem])
            self._note(scope, ex, 502, [*findings, problem], started, target, body, b"")
            return
        gone = asyncio.Event()  # the client left: stop pulling from the upstream
        watcher = asyncio.ensure_future(_watch_disconnect(receive, gone))
        try:
            await self._answer(scope, send, upstream, ex, findings, started, target, body, gone)
        finally:
            watcher.cancel()
            await upstream.aclose()

    async def _answer(
        self,
        scope: Scope,
        send: Send,
        upstream: httpx.Response,
        ex: Exchange | None,
        findings: list[Finding],
        started: float,
        target: httpx.URL,
        body: bytes,
        gone: asyncio.Event,
    ) -> None:
        status = upstream.status_code
        out_headers = [(k, v) for k, v in upstream.headers.raw if k.lower() not in HOP_BY_HOP]
        ctype = upstream.headers.get("content-type", "").split(";")[0].strip().lower()
        length = upstream.headers.get("content-length")
        judged = ctype.endswith("json") and not (length and length.isdigit() and int(length) > MAX_JUDGED)
        content: bytes | None = None
        chunks: list[bytes] = []
        stream = upstream.aiter_raw()
        if judged:
            size = 0
            try:
                async for chunk in stream:  # at most MAX_JUDGED bytes held: past it, streamed unjudged
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > MAX_JUDGED or gone.is_set():
                        judged = False
                        break
            except httpx.HTTPError as exc:
                problem = _broken(exc, size, status)
                await self._reply_error(send, 502, "BAD_GATEWAY", problem.message, [problem])
                self._note(scope, ex, 502, [*findings, problem], started, target, body, b"", status)
                return
            if judged:
                content = _decoded(b"".join(chunks), upstream.headers.get("content-encoding"))
            elif not gone.is_set():
                self.unjudged += 1
        lowered = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in upstream.headers.raw}
        if ex is not None:
            findings += self.judge.response(ex, status, lowered, content if judged else None)
        failing = [f for f in findings if f.failing]
        if failing and self.fail_on_violation:
            await self._reply_error(send, 502, "CONTRACT_VIOLATION", summary(failing), failing)
            self._note(scope, ex, 502, findings, started, target, body, content or b"", status)
            return
        if failing:
            out_headers.append((VIOLATIONS_HEADER, summary(failing).encode("ascii")))
        await send({"type": "http.response.start", "status": status, "headers": out_headers})
        sent = 0
        if judged:
            raw = b"".join(chunks)
            await send({"type": "http.response.body", "body": raw})
        else:
            for chunk in chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                sent += len(chunk)
            try:
                async for chunk in stream:
                    if gone.is_set():
                        break  # the client left: the upstream's connection is closed, not drained
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    sent += len(chunk)
            except httpx.HTTPError as exc:
                # the head is gone already: the client sees the answer break off; the report says so
                problem = _broken(exc, sent, status)
                self._note(scope, ex, status, [*findings, problem], started, target, body, b"", status)
                return  # unfinished: the server closes the client's connection, which sees it break off
            if not gone.is_set():
                await send({"type": "http.response.body", "body": b""})
        if gone.is_set():
            self.client_left += 1
        self._note(scope, ex, status, findings, started, target, body, content or b"")
        if self.observer is not None and ex is not None:
            try:
                parsed = json.loads(content) if content and content.strip() else None
            except ValueError:
                parsed = None
            self.observer(ex, status, parsed)

    async def _reply_error(
        self, send: Send, status: int, code: str, message: str, failing: list[Finding]
    ) -> None:
        common = {"request_id": None, "timestamp": iso(self._clock())}
        body = self.envelope.error(ApiError(status, code, message), common)
        headers = [(b"content-type", b"application/json")]
        if failing:
            headers.append((VIOLATIONS_HEADER, summary(failing).encode("ascii")))
        await self._send_json(send, status, body, headers)

    @staticmethod
    async def _send_json(
        send: Send, status: int, value: Any, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        content = json.dumps(value).encode()
        head = headers or [(b"content-type", b"application/json")]
        head = [*head, (b"content-length", str(len(content)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": head})
        await send({"type": "http.response.body", "body": content})

    # -- the log and the report -------------------------------------------------------------
    def _note(
        self,
        scope: Scope,
        ex: Exchange | None,
        status: int,
        findings: list[Finding],
        started: float,
        target: httpx.URL,
        body: bytes,
        content: bytes,
        upstream_status: int | None = None,
    ) -> None:
        self.exchanges += 1
        op = ex.op if ex is not None else None
        label = op.label if op is not None else f"{scope['method']} {scope['path']}"
        shown = upstream_status if upstream_status is not None else status
        if findings:  # a reproduction only where there is something to reproduce
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            curl = reproduction(scope["method"], str(target), headers, body)
            excerpt = f"HTTP {shown} " + redact.body(content)[:300].decode("utf-8", "replace")
            for f in findings:
                book = self.requests if f.side == "request" else self.results
                book.fail(
                    f.check, label, f.message, curl=curl, response=excerpt, key=f.key, inferred=f.inferred
                )
        elif op is not None:
            self.results.ok("exchange", label)
        failing = [f for f in findings if f.failing]
        self.log.append(
            {
                "at": self._clock(),
                "api": self.contract.name,
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "upstream_status": shown,
                "operation": op.operation_id if op is not None else None,
                "request_id": None,
                "problems": [{"field": f.check, "reason": f.message, "side": f.side} for f in failing],
                "differences": [{"field": f.check, "reason": f.message} for f in findings if not f.failing],
                "reason": summary(failing) if failing else None,
                "token": None,  # never a credential, not even masked
                "token_id": None,
                "ms": round((time.perf_counter() - started) * 1000, 3),
            }
        )

    def _log_rows(self, scope: Scope) -> list[dict[str, Any]]:
        from urllib.parse import parse_qs

        q = {k: v[0] for k, v in parse_qs((scope.get("query_string") or b"").decode("latin-1")).items()}
        rows = list(self.log)
        if q.get("method"):
            rows = [r for r in rows if r["method"] == q["method"].upper()]
        if q.get("path"):
            rows = [r for r in rows if r["path"].startswith(q["path"])]
        if q.get("status"):
            rows = [
                r
                for r in rows
                if str(r["status"]) == q["status"] or f"{str(r['status'])[0]}xx" == q["status"]
            ]
        return [{**r, "at": iso(r["at"])} for r in rows]

    def status(self) -> dict[str, Any]:
        return {
            "api": self.contract.name,
            "upstream": self.upstream,
            "exchanges": self.exchanges,
            "violations": len(self.results.failing),
            "differences": len(self.results.differences),
            "refused_requests": len(self.requests.failing),
            "unjudged_bodies": self.unjudged,
            "clients_left": self.client_left,
        }


def reproduction(method: str, url: str, headers: dict[str, str], body: bytes) -> str:
    """A curl line for the request, without a credential: the token is `$TOKEN`, cookies omitted,
    secrets in the query or the body masked (`redact.py`)."""
    parts = ["curl", "-X", method, shlex.quote(redact.url(url))]
    for name, value in headers.items():
        if name in ("host", "content-length", "cookie", "user-agent", "accept-encoding", "connection"):
            continue
        if name == "authorization":
            scheme = value.partition(" ")[0] or "Bearer"
            parts += ["-H", f'"Authorization: {scheme} $TOKEN"']
            continue
        parts += ["-H", shlex.quote(f"{name}: {redact.MASK if redact.secret(name) else value}")]
    if body:
        parts += ["--data-binary", shlex.quote(redact.body(body)[:4000].decode("utf-8", "replace"))]
    line = " ".join(parts)
    return line + ("   # cookies omitted" if "cookie" in headers else "")


def _exchange(scope: Scope, base_path: str, body: bytes) -> Exchange | None:
    path: str = scope["path"]
    if base_path and not (path == base_path or path.startswith(base_path + "/")):
        return None
    from http.cookies import CookieError, SimpleCookie
    from urllib.parse import parse_qsl

    from starlette.datastructures import Headers

    headers = Headers(raw=scope["headers"])
    cookies: dict[str, str] = {}
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
        cookies = {k: m.value for k, m in jar.items()}
    except CookieError:
        cookies = {}
    query = parse_qsl((scope.get("query_string") or b"").decode("latin-1"), keep_blank_values=True)
    return Exchange(scope["method"], path[len(base_path) :] or "/", query, headers, cookies, body)


def _decoded(raw: bytes, encoding: str | None) -> bytes | None:
    """The body to judge: decompressed when gzip or deflate, None for another coding."""
    coding = (encoding or "").strip().lower()
    if coding in ("", "identity"):
        return raw
    try:
        if coding in ("gzip", "x-gzip"):
            return zlib.decompress(raw, 16 + zlib.MAX_WBITS)
        if coding == "deflate":
            return zlib.decompress(raw)
    except zlib.error:
        return None
    return None


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_REQUEST:
            raise BodyTooLarge
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)
