"""One API's request pipeline: route → authenticate → rate-limit → scopes → validate →
dispatch → envelope. Everything here is driven by the compiled spec; nothing is per-endpoint."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from contract import Contract, Operation
from judge.request import MAX_BODY_BYTES, validate_body, validate_params

from . import diagnose, faults, forced, generic
from .calls import Call, Handler, Reply
from .envelope import Envelope
from .errors import ApiError, Problem, validation
from .jsonio import dumps
from .ratelimit import Decision
from .resources import Resources
from .responses import RawResponse, encode_headers
from .services import Services
from .tokens import Principal

log = logging.getLogger("mock_server")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
BODY_READ_SECONDS = 30.0  # uvicorn has no body-read timeout: a stalled upload ends here
SEEN_PARAMS = 4096  # raw parameter values whose validation is remembered, per API (`ApiEngine._params`)


def _header(heads: dict[bytes, bytes], name: bytes) -> str | None:
    value = heads.get(name)
    return None if value is None else value.decode("latin-1")


class ApiEngine:
    """Serves one spec under its base path."""

    def __init__(
        self, spec: Contract, sandbox: Services, handlers: dict[str, Handler], resources: Resources
    ) -> None:
        self.spec, self.sandbox, self.handlers, self.resources = spec, sandbox, handlers, resources
        self.envelope = Envelope(spec.templates)
        self._raw_params = {  # per operation: the header (as ASGI names them) and cookie parameters
            op.operation_id: (
                tuple(p.name.lower().encode("latin-1") for p in op.params if p.location == "header"),
                tuple(p.name for p in op.params if p.location == "cookie"),
            )
            for op in spec.operations
        }
        self._seen_params: dict[tuple[Any, ...], dict[str, Any]] = {}  # see `_params`
        self.sleep = asyncio.sleep  # injected in tests (Prefer: delay, latency faults)
        self.buckets = {
            op.operation_id: tuple(sandbox.limiter.bucket(b.name, b.limit, b.window) for b in op.buckets)
            for op in spec.operations
        }

    async def handle(self, request: Request, subpath: str) -> Response:
        started = time.perf_counter()
        heads = dict(reversed(request.scope["headers"]))  # the first of a repeated header, as Starlette
        given = _header(heads, b"x-request-id")
        request_id = given if given and _REQUEST_ID.fullmatch(given) else self.sandbox.ids.request_id()
        op: Operation | None = None
        decision: Decision | None = None
        truncate: int | None = None
        problems: list[dict[str, str]] = []
        try:
            op, path_params, allowed = self.spec.match(request.method.lower(), subpath or "/")
            if op is None:
                if allowed:
                    raise ApiError(
                        405,
                        "METHOD_NOT_ALLOWED",
                        f"Method {request.method} not allowed",
                        headers={"Allow": ", ".join(sorted(set(allowed)))},
                    )
                raise ApiError(404, "NOT_FOUND", "No such endpoint")
            principal = None if op.public else self._authenticate(request)
            decision = self.sandbox.limiter.hit(
                principal.subject if principal else f"ip:{request.client.host if request.client else '-'}",
                self.buckets[op.operation_id],
            )
            if decision is not None and not decision.allowed:
                raise ApiError(
                    429, "RATE_LIMITED", f"Rate limit exceeded. Retry after {decision.retry_after} seconds."
                )
            if principal is not None:
                missing = [s for s in op.scopes if s not in principal.scopes]
                if missing:
                    raise ApiError(403, "FORBIDDEN", f"Token does not have permission: {missing[0]}")
            fault = self.sandbox.faults.pick(
                self.spec.name,
                op,
                request.method,
                subpath or "/",
                principal.subject if principal else None,
                principal.account if principal else None,
            )
            if fault is not None:
                problems = [{"field": "fault", "reason": f"{fault.rule} fired"}]
                if fault.latency:
                    await self.sleep(fault.latency)
                if fault.drop:
                    dropped = faults.Dropped()
                    self.sandbox.record(
                        self.spec.name,
                        request,
                        op,
                        dropped,
                        request_id,
                        problems,
                        time.perf_counter() - started,
                    )
                    return dropped
                if fault.status is not None:
                    err = forced.error(
                        self.spec, op, fault.status, fault.message or "Injected fault", fault.retry_after
                    )
                    if fault.status == 429:
                        err.headers.update(forced.rate_limited(decision, fault.retry_after))
                    return self._answer(
                        request, op, self._error(err, request_id), request_id, decision, problems, started
                    )
                truncate = fault.truncate
            if principal is not None:
                prefer = _header(heads, b"prefer")
                if prefer is not None and principal.mode == "test":
                    chosen = await self._prefer(op, prefer, decision, request_id)
                    if chosen is not None:
                        forced_by = [{"field": "Prefer", "reason": f"chosen by the client: {prefer[:80]}"}]
                        return self._answer(request, op, chosen, request_id, decision, forced_by, started)
            params = self._params(request, heads, op, path_params)
            # A body is read only where the operation takes one: elsewhere it is ignored, unread.
            raw_body = await self._read_body(request, heads) if op.body_schema is not None else b""
            body = validate_body(op, raw_body, _header(heads, b"content-type"))
            call = Call(
                self.spec,
                op,
                principal,
                params,
                body,
                self.resources,
                self.sandbox,
                raw_body,
                request,
                request.client.host if request.client else "-",
            )
            run = self.handlers[op.handler] if op.handler else generic.run
            if request.method in ("GET", "HEAD"):
                reply = run(call)
            else:  # every write of the request saved together, or none (StorageError: 507/503)
                with self.sandbox.store.transaction():
                    reply = run(call)
        except ApiError as err:
            problems = [p.as_dict() for p in err.details]
            reply = self._error(err, request_id)
        except Exception:  # never a stack trace to the client
            log.exception("unhandled error in %s %s", request.method, request.url.path)
            reply = self._error(ApiError(500, "INTERNAL_ERROR", "Internal server error"), request_id)
        response = self._answer(request, op, reply, request_id, decision, problems, started)
        return response if truncate is None else faults.Truncated(response, truncate)

    def _params(
        self, request: Request, heads: dict[bytes, bytes], op: Operation, path_params: dict[str, str]
    ) -> dict[str, Any]:
        """The operation's typed parameters. Validation is a pure function of the raw values of
        the operation's parameters (path, query string, declared headers and cookies), so what
        it made of raw values seen before is reused: a client polling one URL sends the same ones
        again and again. Refused values are not remembered (they are refused again, in full), nor
        long ones (the memory stays bounded: at most SEEN_PARAMS short keys)."""
        qs = request.scope["query_string"]
        header_names, cookie_names = self._raw_params[op.operation_id]
        extra: tuple[bytes | str | None, ...] = tuple(heads.get(h) for h in header_names)
        if cookie_names:
            extra += tuple(request.cookies.get(c) for c in cookie_names)
        key = (op.operation_id, qs, *path_params.values(), *extra)
        known = self._seen_params.get(key)
        if known is not None:
            return dict(known)
        query = request.query_params.multi_items() if qs else []
        params = validate_params(
            op, path_params, query, request.headers, request.cookies if cookie_names else {}
        )
        short = len(qs) + len(request.scope.get("raw_path") or b"") <= 1024
        if short and all(v is None or len(v) <= 256 for v in extra):
            if len(self._seen_params) >= SEEN_PARAMS:
                self._seen_params.clear()
            self._seen_params[key] = params
            return dict(params)
        return params

    def _answer(
        self,
        request: Request,
        op: Operation | None,
        reply: Reply,
        request_id: str,
        decision: Decision | None,
        problems: list[dict[str, str]],
        started: float,
    ) -> Response:
        try:
            response = self._render(reply, request_id, decision)
        except Exception:  # a handler's reply that cannot be rendered: still the API's envelope
            log.exception("unrenderable reply in %s %s", request.method, request.url.path)
            internal = self._error(ApiError(500, "INTERNAL_ERROR", "Internal server error"), request_id)
            response = self._render(internal, request_id, decision)
        self.sandbox.record(
            self.spec.name, request, op, response, request_id, problems, time.perf_counter() - started
        )
        return response

    async def _prefer(
        self, op: Operation, header: str, decision: Decision | None, request_id: str
    ) -> Reply | None:
        """`Prefer: code=…, example=…, delay=…` from a test-mode token: wait, then the chosen
        response (never reaching a handler: stored state is never changed), or None to go on."""
        pref = forced.parse_prefer(header)
        if pref.delay_ms:
            await self.sleep(pref.delay_ms / 1000)
        if not pref.forces:
            return None
        chosen = forced.preferred(self.spec, op, pref, decision)
        if isinstance(chosen, ApiError):
            return self._error(chosen, request_id)
        return chosen

    def _authenticate(self, request: Request) -> Principal:
        token, _ = diagnose.credential(self.spec, request)
        principal = self.sandbox.authenticate(self.spec, token) if token else None
        if principal is None:
            raise ApiError(
                401,
                "UNAUTHORIZED",
                "Invalid or missing authentication token",
                headers={"WWW-Authenticate": 'Bearer realm="' + self.spec.name + '"'},
            )
        return principal

    async def _read_body(self, request: Request, heads: dict[bytes, bytes]) -> bytes:
        declared = _header(heads, b"content-length")
        if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise ApiError(413, "PAYLOAD_TOO_LARGE", f"Request body exceeds {MAX_BODY_BYTES} bytes")
        chunks, size = [], 0
        try:
            async with asyncio.timeout(BODY_READ_SECONDS):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > MAX_BODY_BYTES:
                        raise ApiError(
                            413, "PAYLOAD_TOO_LARGE", f"Request body exceeds {MAX_BODY_BYTES} bytes"
                        )
                    chunks.append(chunk)
        except ClientDisconnect:
            raise validation("Request body is incomplete", Problem("body", "client disconnected")) from None
        except TimeoutError:
            raise validation(
                "Request body is incomplete", Problem("body", f"not received within {BODY_READ_SECONDS:g} s")
            ) from None
        return b"".join(chunks)

    def _common(self, request_id: str) -> dict[str, Any]:
        stamp = self.sandbox.clock.isoformat() if self.envelope.uses("timestamp") else None
        return {"request_id": request_id, "timestamp": stamp}

    def _error(self, err: ApiError, request_id: str) -> Reply:
        body = self.envelope.error(err, self._common(request_id))
        return Reply(err.status, body, kind="raw", headers=err.headers)

    def _render(self, reply: Reply, request_id: str, decision: Decision | None) -> Response:
        raw = [(b"x-request-id", request_id.encode("latin-1"))]
        if decision is not None:
            raw += decision.raw_headers()
        if reply.headers:  # a reply's own (a forced 429's coherent figures) win
            own = encode_headers(reply.headers)
            names = {k for k, _ in own}
            raw = [h for h in raw if h[0] not in names] + own
        if reply.kind == "empty":
            return RawResponse(b"", reply.status, raw, None, scan=bool(reply.headers))
        common = self._common(request_id)
        if reply.kind == "single":
            body = self.envelope.single(reply.body, common)
        elif reply.kind == "list":
            body = self.envelope.list(reply.body, reply.meta, common)
        else:
            body = reply.body
        content = body.encode() if isinstance(body, str) else body if isinstance(body, bytes) else dumps(body)
        return RawResponse(content, reply.status, raw, reply.media_type, scan=bool(reply.headers))
