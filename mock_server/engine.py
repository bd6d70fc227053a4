"""One API's request pipeline: the named stages of `stages.py` (route → authenticate → limit →
scopes → fault → prefer → validate → dispatch), then the envelope. Everything here is driven by
the compiled spec; nothing is per-endpoint."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from contract import Contract, Operation
from judge.request import MAX_BODY_BYTES, validate_params

from . import faults, forced
from .calls import Handler, Reply
from .envelope import Envelope
from .errors import ApiError, Problem, validation
from .grading.fields import BODY
from .jsonio import dumps
from .ratelimit import Decision
from .resources import Resources
from .responses import RawResponse, encode_headers
from .services import Services
from .stages import STAGES, Pass

log = logging.getLogger("mock_server")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
BODY_READ_SECONDS = 30.0  # uvicorn has no body-read timeout: a stalled upload ends here
SEEN_PARAMS = 4096  # raw parameter values whose validation is remembered, per API (`ApiEngine.params`)


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
        self._seen_params: dict[tuple[Any, ...], dict[str, Any]] = {}  # see `params`
        self.sleep = asyncio.sleep  # injected in tests (Prefer: delay, latency faults)
        self.buckets = {
            op.operation_id: tuple(
                sandbox.limiter.bucket(b.name, b.limit, b.window, b.algorithm, b.burst) for b in op.buckets
            )
            for op in spec.operations
        }

    async def handle(self, request: Request, subpath: str) -> Response:
        started = time.perf_counter()
        heads = dict(reversed(request.scope["headers"]))  # the first of a repeated header, as Starlette
        given = _header(heads, b"x-request-id")
        request_id = given if given and _REQUEST_ID.fullmatch(given) else self.sandbox.ids.request_id()
        p = Pass(request, subpath, heads, request_id, started)
        try:
            for stage in STAGES:
                pending = stage(self, p)
                if pending is not None:
                    await pending
                if p.reply is not None or p.final is not None:
                    break
        except ApiError as err:
            p.problems = [d.as_dict() for d in err.details]
            p.reply = self.error_reply(err, request_id)
        except Exception:  # never a stack trace to the client
            log.exception("unhandled error in %s %s", request.method, request.url.path)
            p.reply = self.error_reply(ApiError(500, "INTERNAL_ERROR", "Internal server error"), request_id)
        if p.final is not None:  # no response at all (a dropped connection)
            self._log(p, p.final)
            return p.final
        assert p.reply is not None  # the last stage, dispatch, always answers
        response = self._answer(p, p.reply)
        return response if p.truncate is None else faults.Truncated(response, p.truncate)

    def forced_error(self, p: Pass, status: int, message: str, retry_after: int) -> Reply:
        """An error of `status` as the request's operation documents it (a fault's); a 429 with
        rate-limit headers coherent with it."""
        assert p.op is not None
        err = forced.error(self.spec, p.op, status, message, retry_after)
        if status == 429:
            err.headers.update(forced.rate_limited(p.decision, retry_after))
        return self.error_reply(err, p.request_id)

    def refuse(self, err: ApiError) -> Response:
        """A refusal outside the stages (the app's, before or after the request's handler), in
        the API's envelope, with a request id of its own."""
        rid = self.sandbox.ids.request_id()
        return self._render(self.error_reply(err, rid), rid, None)

    def params(
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

    def _answer(self, p: Pass, reply: Reply) -> Response:
        try:
            response = self._render(reply, p.request_id, p.decision)
        except Exception:  # a handler's reply that cannot be rendered: still the API's envelope
            log.exception("unrenderable reply in %s %s", p.request.method, p.request.url.path)
            err = ApiError(500, "INTERNAL_ERROR", "Internal server error")
            internal = self.error_reply(err, p.request_id)
            response = self._render(internal, p.request_id, p.decision)
        self._log(p, response)
        return response

    def _log(self, p: Pass, response: Response) -> None:
        elapsed = time.perf_counter() - p.started
        spec, why = self.spec.name, p.why
        self.sandbox.record(spec, p.request, p.op, response, p.request_id, p.problems, elapsed, why)

    async def read_body(self, request: Request, heads: dict[bytes, bytes]) -> bytes:
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
        # its digest goes in the request log (grading); its start too, as request.body() caches it
        request._body = request.scope[BODY] = raw = b"".join(chunks)
        return raw

    def _common(self, request_id: str) -> dict[str, Any]:
        stamp = self.sandbox.clock.isoformat() if self.envelope.uses("timestamp") else None
        return {"request_id": request_id, "timestamp": stamp}

    def error_reply(self, err: ApiError, request_id: str) -> Reply:
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
