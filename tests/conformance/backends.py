"""Deliberately broken backends: the sandbox behind an ASGI middleware that plants one defect,
served by uvicorn in a thread on 127.0.0.1 (a free port).

Each defect is a small, readable rewrite of requests or responses, so a test can say exactly
which contract the backend breaks and which check must notice.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.types import Message, Receive, Scope, Send

from contract import Contract
from mock_server.app import SandboxApp
from mock_server.clock import Clock
from mock_server.errors import ApiError
from mock_server.ids import IdGenerator
from mock_server.sandbox import Sandbox, load_all

DEFECTS = {
    "no-auth": "requests without a valid token are served as if they had one",
    "scopes-ignored": "a token lacking scopes is served as if it held them all",
    "wrong-envelope": "success bodies say `result` where the envelope says `data`",
    "wrong-status": "creates answer 200 instead of the documented 201",
    "lost-after-create": "a record just created answers 404 and is left out of lists",
    "wrong-totals": "list meta.total is one more than the collection holds",
    "server-error": "a 500 for bodies naming region us-east-1 (the spec's own example)",
    "invalid-accepted": "requests the sandbox rejects as invalid (400) are answered 200",
    "cross-account-leak": "another account's token is served as the owner's",
    "no-rate-limit-headers": "responses carry no rate-limit headers",
}
_RATE_HEADERS = {
    b"ratelimit",
    b"ratelimit-policy",
    b"x-ratelimit-limit",
    b"x-ratelimit-remaining",
    b"x-ratelimit-reset",
}

_SPECS: list[Contract] | None = None


def specs() -> list[Contract]:
    global _SPECS
    if _SPECS is None:
        _SPECS = load_all()
    return _SPECS


def make_sandbox(rate_window: float | None = 5.0) -> Sandbox:
    """A sandbox on the real clock (rate-limit windows must pass), transitions immediate."""
    return Sandbox(specs(), clock=Clock(), ids=IdGenerator(seed=11), rate_window=rate_window, async_delay=0.0)


class Defective:
    """ASGI middleware over the sandbox app applying one defect from `DEFECTS` (None: none)."""

    def __init__(self, sandbox: Sandbox, defect: str | None) -> None:
        assert defect is None or defect in DEFECTS, defect
        self.sandbox, self.defect = sandbox, defect
        self.app = SandboxApp(sandbox)
        self.lost: set[str] = set()
        self._full: dict[tuple[str, str], str] = {}

    def _api(self, path: str) -> Contract | None:
        for spec in self.sandbox.specs.values():
            if path == spec.base_path or path.startswith(spec.base_path + "/"):
                return spec
        return None

    def _full_token(self, api: str, account: str) -> str:
        key = (api, account)
        if key not in self._full:
            self._full[key] = self.sandbox.mint(api, account=account, name="defect")[0]
        return self._full[key]

    def _rewrite_auth(self, scope: Scope, spec: Contract) -> Scope:
        headers = dict(scope["headers"])
        raw = headers.get(b"authorization", b"").decode("latin-1")
        token = raw.partition(" ")[2].strip()
        principal = self.sandbox.tokens.authenticate(spec.name, token) if token else None
        replacement = None
        if self.defect == "no-auth" and principal is None:
            replacement = self._full_token(spec.name, "defect-anyone")
        elif self.defect == "scopes-ignored" and principal is not None:
            if set(principal.scopes) != set(spec.scopes):
                replacement = self._full_token(spec.name, principal.account)
        elif (
            self.defect == "cross-account-leak"
            and principal is not None
            and principal.account.endswith("-other")
        ):
            replacement = self._full_token(spec.name, principal.account.removesuffix("-other"))
        if replacement is None:
            return scope
        kept = [(k, v) for k, v in scope["headers"] if k != b"authorization"]
        return {**scope, "headers": [*kept, (b"authorization", f"Bearer {replacement}".encode())]}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        spec = self._api(scope.get("path", "")) if scope["type"] == "http" and self.defect else None
        if spec is None:
            await self.app(scope, receive, send)
            return
        scope = self._rewrite_auth(scope, spec)
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        sent_body = False

        async def replay() -> Message:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            return {"type": "http.disconnect"}

        early = self._before(scope, spec, body)
        if early is not None:
            status, headers, content = early
        else:
            start: dict[str, Any] = {}
            chunks: list[bytes] = []

            async def capture(message: Message) -> None:
                if message["type"] == "http.response.start":
                    start.update(message)
                elif message["type"] == "http.response.body":
                    chunks.append(message.get("body", b""))

            await self.app(scope, replay, capture)
            status, headers, content = self._after(
                scope, spec, start["status"], list(start["headers"]), b"".join(chunks)
            )
        headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    def _error(self, spec: Contract, status: int, code: str, message: str) -> tuple[int, list[Any], bytes]:
        engine = self.sandbox.engines[spec.name]
        body = engine.envelope.error(ApiError(status, code, message), engine._common("req_defect"))
        return status, [(b"content-type", b"application/json")], json.dumps(body).encode()

    def _before(self, scope: Scope, spec: Contract, body: bytes) -> tuple[int, list[Any], bytes] | None:
        """Answer without the sandbox (None: let it answer)."""
        path = scope["path"]
        if (
            self.defect == "lost-after-create"
            and scope["method"] == "GET"
            and path.rsplit("/", 1)[-1] in self.lost
        ):
            return self._error(spec, 404, "NOT_FOUND", "Resource not found")
        if self.defect == "server-error" and scope["method"] in ("POST", "PUT", "PATCH"):
            try:
                data = json.loads(body or b"null")
            except ValueError:
                data = None
            if isinstance(data, dict) and data.get("region") == "us-east-1":
                return self._error(spec, 500, "INTERNAL_ERROR", "Internal server error")
        return None

    def _after(
        self, scope: Scope, spec: Contract, status: int, headers: list[Any], content: bytes
    ) -> tuple[int, list[Any], bytes]:
        method = scope["method"]
        if self.defect == "no-rate-limit-headers":
            headers = [(k, v) for k, v in headers if k.lower() not in _RATE_HEADERS]
        if self.defect == "invalid-accepted" and status == 400:
            status = 200
        if self.defect == "wrong-status" and method == "POST" and status == 201:
            status = 200
        if not content or not 200 <= status < 300:
            return status, headers, content
        try:
            data = json.loads(content)
        except ValueError:
            return status, headers, content
        if self.defect == "wrong-envelope" and isinstance(data, dict) and "data" in data:
            data["result"] = data.pop("data")
        elif self.defect == "lost-after-create" and method == "POST" and status == 201:
            record = data.get("data", data) if isinstance(data, dict) else None
            if isinstance(record, dict) and "id" in record:
                self.lost.add(str(record["id"]))
        elif self.defect == "lost-after-create" and method == "GET" and isinstance(data, dict):
            items = data.get("data")
            if isinstance(items, list):
                data["data"] = [
                    i for i in items if not (isinstance(i, dict) and str(i.get("id")) in self.lost)
                ]
        elif self.defect == "wrong-totals" and isinstance(data, dict) and _has_total(data):
            data["meta"]["total"] += 1
        return status, headers, json.dumps(data).encode()


def _has_total(body: dict[str, Any]) -> bool:
    return isinstance(body.get("meta"), dict) and isinstance(body["meta"].get("total"), int)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(app: Any, **options: Any) -> Iterator[str]:
    """Serve an ASGI app on 127.0.0.1:<free port> from a thread; yields its base URL.
    `options`: more `uvicorn.Config` settings."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
