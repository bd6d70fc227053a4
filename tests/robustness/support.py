"""Helpers of the robustness suite: counting every answer, store snapshots, raw ASGI requests
(bytes the httpx client would refuse or normalise), one resource of each type per account, and
real server processes with their output in a file (a pipe nobody reads blocks a chatty server)."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx

from contract import Contract, Operation
from mock_server.sandbox import Sandbox
from tests.live import ROOT, free_port
from tests.sandbox_client import SyncASGIClient

# -- figures ----------------------------------------------------------------------------------
FIGURES: dict[str, int] = {"responses_5xx": 0}


def count(name: str, n: int = 1) -> None:
    FIGURES[name] = FIGURES.get(name, 0) + n


def seen(status: int, where: str = "in_process") -> None:
    """Every answer the suite gets passes here: inputs tried and 5xx seen."""
    count(f"requests_{where}")
    if status in (503, 507):  # the store refused a write under an injected or real disk fault
        count("responses_storage_refused")
    elif status >= 500:
        count("responses_5xx")


class Counting:
    """ASGI wrapper around the sandbox app: counts every status it answers."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def counting_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                seen(int(message["status"]))
            await send(message)

        await self.app(scope, receive, counting_send)


# -- state ------------------------------------------------------------------------------------
def _rows(sandbox: Sandbox) -> dict[str, list[dict[str, Any]]]:
    """Every table's records, read without copying (the in-memory store's own dicts)."""
    tables = getattr(sandbox.store, "_tables", None)
    if isinstance(tables, dict):
        return {t: list(rows.values()) for t, rows in tables.items()}
    return {t: sandbox.store.find(t) for t in sandbox.store.tables()}


def settle(sandbox: Sandbox) -> None:
    """Apply every due lifecycle transition now, so reads during a test change nothing."""
    rows = _rows(sandbox)
    for res in sandbox.resources.values():
        for name, resource in res.spec.resources.items():
            if not resource.lifecycle:
                continue
            field, starts = resource.status_field, resource.transient_states
            for record in list(rows.get(res.table(name), [])):
                if record.get(field) in starts:
                    res._settle(name, copy.deepcopy(record))


def snapshot(sandbox: Sandbox) -> dict[str, list[dict[str, Any]]]:
    """Every stored record (resources, tokens, users, secrets), settled first; a deep copy."""
    settle(sandbox)
    snap: dict[str, list[dict[str, Any]]] = json.loads(json.dumps(_rows(sandbox), sort_keys=True))
    return snap


# -- raw requests -----------------------------------------------------------------------------
def raw_request(
    app: Any,
    method: str,
    path: bytes,
    query: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    body: list[bytes] | None = None,
    then: str = "end",  # end | disconnect | stall
    timeout: float = 10.0,
) -> tuple[int, dict[str, str], bytes]:
    """One request straight into the ASGI app: any path bytes, any headers, a body in chunks
    that may end, be cut off (client disconnect) or stall. Returns (status, headers, body)."""
    chunks = list(body or [b""])
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(path.decode("latin-1")),  # as uvicorn does: percent-decoded, UTF-8
        "raw_path": path,
        "query_string": query,
        "root_path": "",
        "headers": [(k.lower(), v) for k, v in (headers or [])],
        "client": ("127.0.0.1", 50000),
        "server": ("sandbox.test", 80),
    }

    async def receive() -> dict[str, Any]:
        if chunks:
            chunk = chunks.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks) or then != "end"}
        if then == "stall":
            await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def run() -> None:
        await asyncio.wait_for(app(scope, receive, send), timeout)

    asyncio.run(run())
    start = next(m for m in sent if m["type"] == "http.response.start")
    out = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    hdrs = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in start.get("headers", [])}
    return int(start["status"]), hdrs, out


# -- one of every resource --------------------------------------------------------------------
SERVER = {"name": "web", "provider": "digitalocean", "region": "nyc1", "size": "s-4vcpu-8gb"}
INSTANCE = {
    "name": "crm",
    "odoo_version": "17.0",
    "edition": "community",
    "database_name": "crm",
    "admin_email": "admin@example.com",
}


def _ok(r: httpx.Response) -> Any:
    assert r.status_code < 300, (r.request.method, r.request.url, r.status_code, r.text)
    return r.json() if r.content else None


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def populate(h: Any, api: str, account: str, mode: str = "test") -> dict[str, str]:
    """Create one resource of every stored type of `api` for (account, mode); their ids, by
    resource name. Every name carries `<account>-marker` so a leak is easy to spot."""
    c: SyncASGIClient = h.api(api, account=account, mode=mode)
    tag = f"{account}-marker"
    ids: dict[str, str] = {}
    if api == "nurosentrix":
        ids["servers"] = _ok(c.post("/servers", json={**SERVER, "name": f"{tag}-srv"}))["data"]["id"]
        ids["instances"] = _ok(
            c.post("/instances", json={**INSTANCE, "name": f"{tag}-inst", "server_id": ids["servers"]})
        )["data"]["id"]
        ids["backups"] = _ok(c.post(f"/instances/{ids['instances']}/backups"))["data"]["id"]
    elif api == "cloudnexus":
        ids["servers"] = _ok(
            c.post("/servers", json={"name": f"{tag}-srv", "plan": "pro", "region": "us-east-1"})
        )["data"]["id"]
        ids["databases"] = _ok(
            c.post(
                "/databases",
                json={
                    "engine": "postgresql",
                    "version": "15.4",
                    "plan": "standard",
                    "name": f"{tag}-db",
                    "region": "us-east-1",
                },
            )
        )["data"]["id"]
    elif api == "cloudnexus-io":
        ids["instances"] = _ok(
            c.post("/instances", json={"name": f"{tag}-inst", "plan": "pro", "region": "us-east-1"})
        )["id"]
    elif api == "nexos":
        ids["api_keys"] = _ok(c.post("/auth/api-keys", json={"name": f"{tag}-key"}))["id"]
        repo = f"{account}/{tag}-repo"
        project = _ok(c.post("/projects", json={"name": f"{tag}-proj", "github_repo": repo}))
        ids["projects"] = project["id"]
        ids["env_vars"] = _ok(
            c.put(f"/projects/{project['id']}/env-vars", json={"key": "MARKER", "value": f"{tag}-value"})
        )["id"]
        payload = {
            "ref": "refs/heads/main",
            "after": "a" * 40,
            "repository": {"full_name": repo},
            "head_commit": {"id": "a" * 40, "message": f"{tag}-commit"},
        }
        raw = json.dumps(payload).encode()
        hook = _ok(
            h.client("nexos").post(
                "/webhooks/github",
                content=raw,
                headers={
                    "Content-Type": "application/json",
                    "X-GitHub-Event": "push",
                    "X-GitHub-Delivery": f"{account}-delivery",
                    "X-Hub-Signature-256": sign(project["webhook_secret"], raw),
                },
            )
        )
        ids["environments"], ids["deployments"] = hook["environment_id"], hook["deployment_id"]
        join = _ok(c.post("/nodes/join-token"))["token"]
        ids["nodes"] = _ok(
            h.client("nexos").post(
                "/nodes/register", json={"token": join, "name": f"{tag}-node", "cpu": 2, "memory_mb": 2048}
            )
        )["id"]
    else:  # pragma: no cover - a new API needs its recipe here
        raise AssertionError(f"no recipe for {api}")
    return ids


def param_resource(op: Operation, param: str) -> str:
    """Which stored resource a path parameter names: the collection segment before it."""
    parts = op.path.strip("/").split("/")
    segment = parts[parts.index("{" + param + "}") - 1]
    return segment.replace("-", "_")


def path_ops(spec: Contract) -> list[Operation]:
    return [op for op in spec.operations if any(p.location == "path" for p in op.params)]


def fill(op: Operation, ids: dict[str, str]) -> str:
    path = op.path
    for p in op.params:
        if p.location == "path":
            path = path.replace("{" + p.name + "}", ids[param_resource(op, p.name)])
    return path


# -- real server processes --------------------------------------------------------------------
class ServerProcess:
    """`python -m mock_server serve ...` on 127.0.0.1, output to a file; killable with SIGKILL."""

    def __init__(self, log_dir: Path, *args: str, host: str = "127.0.0.1", nofile: int | None = None) -> None:
        self.args, self.log_dir, self.host, self.nofile = args, log_dir, host, nofile
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log_path = log_dir / "server.log"
        self._starts = 0

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> str:
        self._starts += 1
        self.port = free_port()
        self.log_path = self.log_dir / f"server-{self._starts}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mock_server", "serve", "--port", str(self.port), *self.args]
                + (["--host", self.host] if self.host != "127.0.0.1" else []),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                preexec_fn=self._limits if self.nofile else None,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sandbox exited {self.proc.returncode}: {self.output()}")
            with suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/_mock/health", timeout=1).status_code in (200, 401):
                    return self.base
            if time.monotonic() > deadline:
                raise TimeoutError(f"sandbox did not start: {self.output()}")
            time.sleep(0.05)

    def _limits(self) -> None:
        """In the child: start with at most `nofile` open files (the server may lift it)."""
        import resource

        assert self.nofile is not None
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, hard))

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextmanager
def server(log_dir: Path, *args: str) -> Iterator[ServerProcess]:
    proc = ServerProcess(log_dir, *args)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def live_seen(r: httpx.Response) -> httpx.Response:
    seen(r.status_code, "live")
    return r
