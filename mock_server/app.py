"""The ASGI application: `/_mock` to the control API, `/<api>/...` to that API's engine."""

from __future__ import annotations

import asyncio
import json
import logging

from starlette.requests import ClientDisconnect, Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from . import siteguard, webui
from .control import ControlApi
from .engine import ApiEngine
from .errors import ApiError, StorageError
from .httpguard import MAX_HEADER_BYTES, MAX_URL_BYTES
from .sandbox import Sandbox

log = logging.getLogger("mock_server")


def _oversized(scope: Scope) -> tuple[int, str, str] | None:
    """414 for a URL over `MAX_URL_BYTES`, 431 for headers over `MAX_HEADER_BYTES` (the
    protocol refuses heads over `httpguard.MAX_HEAD_BYTES` before the app sees them)."""
    if len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") > MAX_URL_BYTES:
        return 414, "URI_TOO_LONG", f"The request URL exceeds {MAX_URL_BYTES} bytes"
    if sum(len(k) + len(v) for k, v in scope["headers"]) > MAX_HEADER_BYTES:
        return 431, "REQUEST_HEADER_FIELDS_TOO_LARGE", f"The request headers exceed {MAX_HEADER_BYTES} bytes"
    return None


class SandboxApp:
    def __init__(self, sandbox: Sandbox, admin_token: str | None = None) -> None:
        self.sandbox = sandbox
        self.control = ControlApi(sandbox, admin_token)
        self.mounts = sorted(
            ((e.spec.base_path, e) for e in sandbox.engines.values()), key=lambda m: -len(m[0])
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        path = scope["path"]
        writes = self.sandbox.store.writes()
        engine = None
        if not (path == "/_mock" or path.startswith("/_mock/")):
            for base, mounted in self.mounts:  # the longest base path first
                if path.startswith(base) and (len(path) == len(base) or path[len(base)] == "/"):
                    engine = mounted
                    break
        response: Response
        too_big = _oversized(scope)
        if too_big is not None:
            response = self._refusal(engine, ApiError(*too_big))
        elif engine is None and (path == "/_mock" or path.startswith("/_mock/")):
            try:
                response = siteguard.refusal(scope) or await self._control(
                    request, path.removeprefix("/_mock")
                )
            except ClientDisconnect:  # its body never came (the protocol's body deadline): no one to answer
                return
        elif engine is not None:
            response = await engine.handle(request, path[len(engine.spec.base_path) :])
        elif path == "/":
            response = webui.serve(self.sandbox, request, "")  # the index of the APIs' docs
        elif path in ("/docs", "/docs/"):
            response = RedirectResponse("/_mock/docs", status_code=307)
        elif path == "/favicon.ico":
            response = webui.favicon()
        else:
            body = {
                "error": {
                    "code": "NOT_FOUND",
                    "message": f"No API is served at {path}",
                    "apis": [b for b, _ in self.mounts],
                }
            }
            response = Response(json.dumps(body), 404, media_type="application/json")
        if self.sandbox.store.writes() != writes:
            try:
                await self.sandbox.store.sync()  # what a response acknowledges is on disk
            except OSError:
                log.exception("fsync of the journal failed")
                response = self._refusal(
                    engine,
                    ApiError(503, "STORAGE_UNAVAILABLE", "The change could not be confirmed on disk; retry"),
                )
        try:
            await self.sandbox.store.settle()  # Redis: the request's commit (see `RedisStore.open`)
        except StorageError as err:
            response = self._refusal(engine, err)
        await response(scope, receive, send)

    async def _control(self, request: Request, subpath: str) -> Response:
        """The control API. On a remote store (Redis) a route that reads or writes the state
        first meets it in one awaited round trip, then runs in a thread: nothing it does waits
        on the store on the event loop. Health and pages need no store."""
        store = self.sandbox.store
        if not store.remote or subpath.strip("/") == "health" or webui.is_page(subpath):
            return await self.control.handle(request, subpath)
        await request.body()  # read on the loop (kept by the request): the thread has no receive
        write = request.method not in ("GET", "HEAD")
        try:
            await store.open(write)
            if write:
                await store.ready()
        except StorageError as err:
            return self._refusal(None, err)
        return await asyncio.to_thread(asyncio.run, self.control.handle(request, subpath))

    def _refusal(self, engine: ApiEngine | None, err: ApiError) -> Response:
        """An error before (or after) the request's handler: the API's envelope where the path
        names an API, the control API's shape elsewhere."""
        if engine is not None:
            return engine.refuse(err)
        body = {"error": {"code": err.code, "message": err.message}}
        return Response(json.dumps(body), err.status, headers=err.headers, media_type="application/json")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.sandbox.store.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def with_cors(app: SandboxApp, origins: list[str] | None) -> ASGIApp:
    """`serve --cors ORIGIN`: let browser apps on those origins call the APIs (off by default).
    Clients read the sandbox's own headers too: request id, rate limits, Retry-After. The
    control API (`/_mock`) is never opened to other origins (`siteguard.py`)."""
    if not origins:
        return app
    from starlette.middleware.cors import CORSMiddleware

    cors = CORSMiddleware(
        app,
        allow_origins=origins,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=[
            "X-Request-ID",
            "Retry-After",
            "RateLimit",
            "RateLimit-Policy",
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
            "Location",
        ],
        max_age=600,
    )

    async def apis_only(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        control = path == "/_mock" or path.startswith("/_mock/")
        await (app if control else cors)(scope, receive, send)

    return apis_only
