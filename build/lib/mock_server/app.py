"""The ASGI application: `/_mock` to the control API, `/<api>/...` to that API's engine."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from . import webui
from .control import ControlApi
from .sandbox import Sandbox


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
        response: Response
        if path == "/_mock" or path.startswith("/_mock/"):
            response = await self.control.handle(request, path.removeprefix("/_mock"))
        elif path == "/":
            response = webui.serve(self.sandbox, request, "")  # the index of the APIs' docs
        elif path in ("/docs", "/docs/"):
            response = RedirectResponse("/_mock/docs", status_code=307)
        elif path == "/favicon.ico":
            response = webui.favicon()
        else:
            for base, engine in self.mounts:
                if path == base or path.startswith(base + "/"):
                    response = await engine.handle(request, path[len(base) :])
                    break
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
            await self.sandbox.store.sync()  # what a response acknowledges is on disk
        await response(scope, receive, send)

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
    Clients read the sandbox's own headers too: request id, rate limits, Retry-After."""
    if not origins:
        return app
    from starlette.middleware.cors import CORSMiddleware

    return CORSMiddleware(
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
