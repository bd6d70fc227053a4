"""The sandbox inside an app's own tests: a real server on a free port of 127.0.0.1 (an app under
test needs a URL), with helpers to mint tokens, move the clock, reset, and assert on what the
app sent (as WireMock's verify).

For pytest, the plugin (`mock_server.pytest_plugin`, installed with the package) gives a
`sandbox` fixture built on this. For scripts and unittest, the context manager:

    from mock_server.testing import SandboxServer

    with SandboxServer(apis=["nurosentrix"]) as sandbox:
        token = sandbox.token("nurosentrix", scopes=["servers:read"])
        client = MyClient(sandbox.base_url("nurosentrix"), token)
        ...
        assert sandbox.requests("nurosentrix", method="GET", path="/servers")

The server runs in a thread of this process; every helper goes through the control API (`/_mock`,
the same JSON API the CLI and the dashboard use), so `SandboxServer(url=...)` drives a sandbox
started elsewhere just the same. A test that wants no socket uses `sandbox.app`, the same state's
ASGI app (`httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox.app))`, Schemathesis'
`from_asgi`). The clock is frozen by default: nothing settles, expires or
frees a rate-limit slot until `sandbox.clock.advance(seconds)` says so."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

__all__ = ["ClientGradeError", "ControlError", "RecordedRequest", "SandboxClock", "SandboxServer"]


class ControlError(httpx.HTTPStatusError):
    """The control API refused a helper's call; the message is the server's own
    (`sandbox.fault(times=1)`: "POST /_mock/faults: 400 unknown fields: times; known: ...")."""


class ClientGradeError(AssertionError):
    """`assert_good_client`: the app broke client rules; the message lists each with its requests."""

    def __init__(self, message: str, grade: dict[str, Any]) -> None:
        super().__init__(message)
        self.grade = grade


def _server_message(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text[:500] or r.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    return r.text[:500]


@dataclass(frozen=True)
class RecordedRequest:
    """One request the sandbox answered, as `/_mock/requests` tells it (never a token's value)."""

    api: str
    method: str
    path: str
    status: int
    operation: str | None
    reason: str | None
    token: str | None  # masked
    token_id: str | None
    request_id: str
    at: str
    ms: float
    problems: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def from_log(cls, row: dict[str, Any]) -> RecordedRequest:
        fields: dict[str, Any] = {k: row.get(k) for k in cls.__dataclass_fields__}
        fields["problems"] = list(row.get("problems") or [])
        return cls(**fields)


class SandboxClock:
    """The sandbox's clock, which lifecycles, session expiry and rate-limit windows follow."""

    def __init__(self, server: SandboxServer) -> None:
        self._server = server

    def advance(self, seconds: float) -> float:
        """Jump ahead; returns the new time (epoch seconds). Pass it as an app's `sleep` so a
        client that honours `Retry-After` or polls a status waits without wall time."""
        return float(self._server.control("POST", "clock/advance", {"seconds": seconds})["epoch"])

    def now(self) -> float:
        return float(self._server.control("GET", "clock")["epoch"])

    def isoformat(self) -> str:
        return str(self._server.control("GET", "clock")["now"])


class SandboxServer:
    """A sandbox serving `apis` (default: all) on 127.0.0.1, or a running one at `url`."""

    def __init__(
        self,
        apis: list[str] | None = None,
        *,
        url: str | None = None,
        port: int = 0,
        frozen_clock: bool = True,
        async_delay: float | None = None,
        rate_window: float | None = None,
        rate_limit: bool = True,
        seed: Path | dict[str, Any] | None = None,
        admin_token: str | None = None,
    ) -> None:
        self.apis, self.port = apis, port
        self.options: dict[str, Any] = {
            "frozen_clock": frozen_clock,
            "async_delay": async_delay,
            "rate_window": rate_window,
            "rate_limit": rate_limit,
            "seed": seed,
        }
        self.admin_token = admin_token
        self.url = url.rstrip("/") if url else ""
        self.clock = SandboxClock(self)
        self.sandbox: Any = None  # the in-process `Sandbox` (None for a sandbox at `url`)
        self.app: Any = None  # its ASGI app, for in-process clients (httpx.ASGITransport, Schemathesis)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._http: httpx.Client | None = None
        self._base_paths: dict[str, str] = {}

    # -- life -----------------------------------------------------------------------------
    def start(self) -> SandboxServer:
        if not self.url:
            self._serve()
        self._http = httpx.Client(
            base_url=self.url + "/_mock",
            headers={"Authorization": f"Bearer {self.admin_token}"} if self.admin_token else {},
            timeout=30,
        )
        try:
            health = self.control("GET", "health")
            if "apis" not in health:  # a guarded sandbox's public answer: without its admin token
                self.control("GET", "tokens", params={"limit": 1})  # raises its 401, which says so
            self._base_paths = dict(health["apis"])
        except BaseException:
            self.stop()
            raise
        return self

    def _serve(self) -> None:
        import uvicorn

        from .app import SandboxApp
        from .clock import FrozenClock
        from .sandbox import Sandbox, load_all
        from .seed import apply_seed, load_seed

        opts = self.options
        self.sandbox = Sandbox(
            load_all(self.apis),
            clock=FrozenClock() if opts["frozen_clock"] else None,
            async_delay=opts["async_delay"],
            rate_window=opts["rate_window"],
            rate_limit=bool(opts["rate_limit"]),
        )
        seed = opts["seed"]
        if seed is not None:
            apply_seed(self.sandbox, seed if isinstance(seed, dict) else load_seed(Path(seed)))
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = int(sock.getsockname()[1])
        self.app = SandboxApp(self.sandbox, self.admin_token)
        config = uvicorn.Config(self.app, log_config=None, access_log=False, lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="sandbox-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the sandbox server did not start")
            time.sleep(0.01)
        self._socket = sock
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=30)
            self._server = self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- helpers --------------------------------------------------------------------------
    def control(
        self, verb: str, path: str, body: dict[str, Any] | None = None, params: dict[str, Any] | None = None
    ) -> Any:
        """A call to the control API; raises `ControlError` (an `httpx.HTTPStatusError`) with the
        server's own message on an error answer."""
        if self._http is None:
            raise RuntimeError("the sandbox is not started (use it as a context manager, or start())")
        query = {k: v for k, v in (params or {}).items() if v is not None}
        r = self._http.request(verb, f"/{path}", json=body, params=query)
        if r.is_error:
            message = f"{verb} /_mock/{path}: {r.status_code} {_server_message(r)}"
            raise ControlError(message, request=r.request, response=r)
        return r.json() if r.content else None

    def base_url(self, api: str) -> str:
        """The API's base URL on this sandbox (`http://127.0.0.1:PORT/nurosentrix/api/v1`)."""
        if api not in self._base_paths:
            raise KeyError(f"this sandbox serves no {api!r}; it serves {', '.join(self._base_paths)}")
        return self.url + self._base_paths[api]

    def token(
        self,
        api: str,
        scopes: list[str] | None = None,
        mode: str = "test",
        account: str = "default",
        name: str | None = None,
    ) -> str:
        """Mint a bearer token (default: every scope of the API, test mode, account `default`)."""
        body: dict[str, Any] = {"api": api, "mode": mode, "account": account}
        if scopes is not None:
            body["scopes"] = scopes
        if name is not None:
            body["name"] = name
        return str(self.control("POST", "tokens", body)["token"])

    def fault(self, **rule: Any) -> dict[str, Any]:
        """Add a fault rule (`/_mock/faults`): match fields (`api`, `operation`, `method`, `path`,
        `token`, `account`) and an effect (`latency_ms`, `status`, `drop`, `truncate`), with
        `probability`, `count` and `seed`. Returns the rule (its `id`, counters). A reset
        removes every rule."""
        return dict(self.control("POST", "faults", rule))

    def faults(self) -> list[dict[str, Any]]:
        """The fault rules with their counters (`seen`, `fired`, `remaining`)."""
        return list(self.control("GET", "faults")["faults"])

    def revoke(self, token_or_id: str) -> None:
        self.control("DELETE", f"tokens/{token_or_id}")

    def reset(self, api: str | None = None, *, tokens: bool = True, requests: bool = True) -> None:
        """Forget resources and rate-limit history; by default tokens and the request log too."""
        body: dict[str, Any] = {"tokens": tokens, "requests": requests}
        if api is not None:
            body["api"] = api
        self.control("POST", "reset", body)

    def requests(
        self,
        api: str | None = None,
        *,
        method: str | None = None,
        path: str | None = None,
        status: int | str | None = None,
        token: str | None = None,
    ) -> list[RecordedRequest]:
        """What the sandbox answered, oldest first, filtered: `path` is exact, and relative to the
        API's base path when `api` is given (`requests("nurosentrix", path="/servers")`);
        `status` is a code or a class ("4xx"); `token` a token's value, masked form or tok_ id."""
        if token is not None and not token.startswith("tok_") and "…" not in token:
            from .tokens import token_hash

            token = f"tok_{token_hash(token)[:16]}"
        query = {"api": api, "method": method, "status": status, "token": token, "limit": 500}
        rows = self.control("GET", "requests", params=query)["requests"]
        if path is not None and api is not None and not path.startswith(self._base_paths.get(api, "\0")):
            path = self._base_paths.get(api, "") + path
        return [RecordedRequest.from_log(r) for r in rows if path is None or r["path"] == path]

    # -- grading the app ------------------------------------------------------------------
    def grade(self, api: str, token: str | None = None, *, since: str | None = None) -> dict[str, Any]:
        """The client rules' verdicts on what the app sent (`GET /_mock/grade`): of one token
        (its value, masked form or tok_ id) or of every caller of `api`."""
        return dict(self.control("GET", "grade", params={"api": api, "token": token, "since": since}))

    def assert_good_client(self, api: str, token: str | None = None, *, since: str | None = None) -> None:
        """Fail with a readable list of the broken client rules, each with its requests (method,
        path, status and the sandbox's reason); rules the app never exercised do not fail."""
        from .grading import explain

        report = self.grade(api, token, since=since)
        if report["passed"]:
            return
        rows = self.control("GET", "requests", params={"api": api, "limit": 500})["requests"]
        who = f"token {report['token']}" if report.get("token") else api
        raise ClientGradeError(
            f"the app broke {len(report['failed'])} client rule(s) of {api} ({who}, "
            f"{report['requests']} requests):\n{explain(report, rows)}",
            report,
        )
