"""`mock-server mcp` driven as a coding agent's client drives it: the official MCP SDK's own
client (`ClientSession` over `stdio_client`, and Streamable HTTP) against real sandbox processes.
What it asserts is what the sandbox did: the HTTP answers the API gave, not the tools' words."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.live import ROOT, free_port, live_sandbox

pytest.importorskip("mcp", reason="MCP TESTS NOT RUN: the SDK is absent (pip install -e '.[test]')")
from mcp import ClientSession, StdioServerParameters, stdio_client

# `mock-server mcp` exactly: the script's function (mock_server.cli:main), from this source tree
MOCK_SERVER = ["-c", "import sys; from mock_server.cli import main; sys.exit(main())", "mcp"]
NURO = "/nurosentrix/api/v1"
SERVER = {"name": "web-1", "provider": "digitalocean", "region": "nyc1", "size": "s-4vcpu-8gb"}
TOOLS = {
    "list_apis", "mint_token", "revoke_token", "list_tokens", "list_requests", "explain_request",
    "advance_clock", "settling", "reset", "add_fault", "list_faults", "clear_faults", "prefer",
    "run_conformance", "verify_rate_limits",
}  # fmt: skip


@asynccontextmanager
async def session(*args: str, env: dict[str, str] | None = None) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=sys.executable, args=[*MOCK_SERVER, *args], cwd=str(ROOT), env=env)
    with tempfile.TemporaryFile(mode="w+") as errlog:  # the server's stderr (a real file: a pipe could fill)
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as s:
            await s.initialize()
            yield s


async def call(s: ClientSession, tool: str, _progress: Any = None, **arguments: Any) -> dict[str, Any]:
    result = await s.call_tool(tool, arguments, read_timeout_seconds=300, progress_callback=_progress)
    assert not result.is_error, f"{tool}: {result.content}"
    assert result.structured_content is not None
    return result.structured_content


async def refused(s: ClientSession, tool: str, **arguments: Any) -> str:
    result = await s.call_tool(tool, arguments)
    assert result.is_error, f"{tool} should have failed: {result.structured_content}"
    return "".join(getattr(c, "text", "") for c in result.content)


@pytest.mark.slow
def test_an_agent_mints_explains_a_403_moves_the_clock_and_fires_a_fault() -> None:
    with live_sandbox("--memory") as base:
        asyncio_run(_session_of_an_agent, base)


def asyncio_run(fn: Any, *args: Any) -> Any:
    return anyio.run(fn, *args)


async def _session_of_an_agent(base: str) -> None:
    api = httpx.Client(base_url=f"{base}{NURO}", timeout=10)
    async with session("--url", base) as s:
        listed = {t.name for t in (await s.list_tools()).tools}
        assert listed >= TOOLS, TOOLS - listed
        apis = {a["api"]: a for a in (await call(s, "list_apis"))["apis"]}
        assert apis["nurosentrix"]["base_url"] == f"{base}{NURO}"
        assert apis["nurosentrix"]["token_prefixes"] == {"test": "nsx_test_", "live": "nsx_live_"}

        # a token that may read servers but not create them: the API refuses the create
        minted = await call(s, "mint_token", api="nurosentrix", scopes=["servers:read"], name="reader")
        reader = minted["token"]
        assert reader.startswith("nsx_test_") and minted["scopes"] == ["servers:read"]
        r = api.post("/servers", json=SERVER, headers={"Authorization": f"Bearer {reader}"})
        assert r.status_code == 403
        why = await call(s, "explain_request", request_id=r.headers["x-request-id"])
        assert why["request"]["status"] == 403 and why["operation"] == "createServer"
        assert why["missing_scopes"] == ["servers:write"] and why["token_scopes"] == ["servers:read"]
        assert "servers:write" in why["reason"]
        # no tool but mint_token shows a token's value: the log and the explanation carry it masked
        log = await call(s, "list_requests", api="nurosentrix", status="4xx", token=reader)
        assert [q["status"] for q in log["requests"]] == [403]
        for shown in (why, log, await call(s, "list_tokens")):
            assert reader not in json.dumps(shown) and reader[-4:] in json.dumps(shown)

        # a created server provisions on the sandbox clock: settling says when, the clock moves it
        writer = (await call(s, "mint_token", api="nurosentrix"))["token"]
        auth = {"Authorization": f"Bearer {writer}"}
        created = api.post("/servers", json=SERVER, headers=auth)
        assert created.status_code == 201, created.text
        server_id = created.json()["data"]["id"]
        assert created.json()["data"]["status"] == "provisioning"
        pending = (await call(s, "settling", api="nurosentrix"))["settling"]
        assert [(p["id"], p["status"], p["next"]) for p in pending] == [(server_id, "provisioning", "active")]
        early = await call(s, "advance_clock", seconds=pending[0]["in_seconds"] / 2)
        assert (
            early["moved"] == []
            and api.get(f"/servers/{server_id}", headers=auth).json()["data"]["status"] == "provisioning"
        )
        done = await call(s, "advance_clock", until_settled=True, api="nurosentrix")
        assert [m["id"] for m in done["moved"]] == [server_id] and done["settling"] == []
        assert api.get(f"/servers/{server_id}", headers=auth).json()["data"]["status"] == "active"

        # a fault rule: a status the operation does not document is the sandbox's own 400 ...
        message = await refused(s, "add_fault", api="nurosentrix", operation="getServer", status=503)
        assert "503" in message and "sandbox refused (400" in message
        documented = await call(s, "prefer", api="nurosentrix", operation="getServer")
        assert "Prefer: code=429" in documented["prefer"] and "503" not in documented["responses"]
        # ... a documented one fires, once, and the log says it was forced
        rule = await call(s, "add_fault", api="nurosentrix", operation="getServer", status=429, count=1)
        hit = api.get(f"/servers/{server_id}", headers=auth)
        assert hit.status_code == 429 and hit.headers["retry-after"] == "1"
        assert api.get(f"/servers/{server_id}", headers=auth).status_code == 200
        (seen,) = (await call(s, "list_faults"))["faults"]
        assert seen["id"] == rule["id"] and seen["fired"] == 1
        forced = await call(s, "explain_request", request_id=hit.headers["x-request-id"])
        assert forced["forced_by"] == [{"field": "fault", "reason": f"{rule['id']} fired"}]
        assert (await call(s, "clear_faults"))["removed"] == 1

        # a 400 names its fields; a 429 its bucket and wait, which the clock can pay
        bad = api.post("/servers", json={}, headers=auth)
        invalid = await call(s, "explain_request", request_id=bad.headers["x-request-id"])
        assert bad.status_code == 400 and {"field": "name", "reason": "is required"} in invalid["problems"]
        statuses = [api.post("/servers", json=SERVER, headers=auth).status_code for _ in range(20)]
        assert statuses[-1] == 429, statuses
        limited = await call(s, "explain_request")
        assert limited["request"]["status"] == 429 and limited["bucket"] == "write"
        assert limited["documented_limit"]["requests"] == 20 and limited["retry_after_seconds"] > 0
        await call(s, "advance_clock", seconds=limited["retry_after_seconds"])
        assert api.post("/servers", json=SERVER, headers=auth).status_code == 201

        # revoked: the next use is a 401 and the explanation says so; errors carry the sandbox's words
        await call(s, "revoke_token", token=reader)
        assert api.get("/servers", headers={"Authorization": f"Bearer {reader}"}).status_code == 401
        gone = await call(s, "explain_request", api="nurosentrix")
        assert gone["request"]["status"] == 401 and "revoked" in gone["reason"]
        assert "api must be one of" in await refused(s, "mint_token", api="nowhere")
        text = (await s.read_resource("sandbox://docs/nurosentrix")).contents[0]
        assert f"{base}{NURO}" in getattr(text, "text", "")
        spec = json.loads(
            getattr((await s.read_resource("sandbox://specs/nurosentrix")).contents[0], "text", "")
        )
        assert spec["servers"][0]["url"] == f"{base}{NURO}"
        overview = {o["operation"]: o for o in (await call(s, "prefer", api="nurosentrix"))["operations"]}
        assert set(overview["getServer"]["statuses"]) == set(documented["responses"])


@pytest.mark.slow
def test_run_conformance_and_the_rate_limit_verifier_through_mcp(tmp_path: Path) -> None:
    admin = "adm-" + os.urandom(8).hex()
    args = ("--memory", "--async-delay", "0", "--rate-window", "1", "--admin-token", admin)
    with live_sandbox(*args, health_token=admin) as base:
        env = {"SANDBOX_ADMIN_TOKEN": admin}
        asyncio_run(_suites, base, env, tmp_path, admin)


async def _suites(base: str, env: dict[str, str], reports: Path, admin: str) -> None:
    async with session("--url", base, "--reports", str(reports), env=env) as s:
        run = await call(
            s, "run_conformance", api="cloudnexus-io", max_examples=1, phases="examples", max_time="90s"
        )
        assert run["exit_code"] == 0, run["summary"]
        assert run["result"] == "RESULT: no violation"
        report = Path(run["report"])
        assert report.parent == reports.resolve() and "Result: **PASS**" in report.read_text()
        assert Path(run["junit_xml"]).read_text().startswith("<?xml")
        ticks: list[tuple[float, float | None, str | None]] = []

        async def progress(done: float, total: float | None, message: str | None) -> None:
            ticks.append((done, total, message))

        # the verifier waits out windows of silence (>4 s at a 1 s window): progress is reported meanwhile
        limits = await call(s, "verify_rate_limits", progress, api="nurosentrix", window=1, buckets=["write"])
        assert limits["exit_code"] == 0 and limits["verdict"].startswith("PASS"), limits["output"]
        assert ticks and all(t[2] and t[2].startswith("rate limits of nurosentrix") for t in ticks), ticks
        bad = await refused(s, "run_conformance", api="cloudnexus-io", phases="nonsense", max_time="30s")
        assert "nonsense" in bad
        for shown in (run, limits):
            assert admin not in json.dumps(shown)


@pytest.mark.slow
def test_streamable_http_with_a_sandbox_it_starts_itself() -> None:
    from mcp.client.streamable_http import streamable_http_client

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("SANDBOX_URL", "SANDBOX_ADMIN_TOKEN")}
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.Popen(
            [sys.executable, *MOCK_SERVER, "--http", str(port)],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}/mcp"
            _wait_for(port, proc, log)

            async def drive() -> str:
                async with streamable_http_client(url) as (read, write), ClientSession(read, write) as s:
                    await s.initialize()
                    apis = await call(s, "list_apis")
                    token = (await call(s, "mint_token", api="nexos"))["token"]
                    sandbox = str(apis["sandbox"])
                    r = httpx.get(
                        f"{sandbox}/nexos/api/auth/me", headers={"Authorization": f"Bearer {token}"}
                    )
                    assert r.status_code == 200, r.text
                    return sandbox

            sandbox = anyio.run(drive)
            assert sandbox.startswith("http://127.0.0.1:") and not sandbox.endswith(f":{port}")
        finally:
            proc.terminate()
            proc.wait(timeout=20)
        with pytest.raises(httpx.TransportError):  # its own sandbox stopped with it
            httpx.get(f"{sandbox}/_mock/health", timeout=2)


def _wait_for(port: int, proc: subprocess.Popen[str], log: Any) -> None:
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            log.seek(0)
            raise AssertionError(f"mock-server mcp exited: {log.read()}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/mcp", timeout=1)
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, "mock-server mcp --http did not listen"
            time.sleep(0.2)


def test_without_the_sdk_it_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mock_server.cli import main

    monkeypatch.setitem(sys.modules, "mcp", None)  # `import mcp` now fails as if absent
    assert main(["mcp", "--url", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install" in err[0] and "api-sandbox[mcp]" in err[0]


def test_tokens_jwts_and_the_admin_token_are_masked_masked_tokens_left_alone() -> None:
    from sandbox_mcp.redact import Redactor

    hide = Redactor(["s3cret-admin"])
    token = "nsx_test_" + "A1b2C3d4" * 4
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c3IifQ.c2lnbmF0dXJl"
    out = hide({"a": [f"Bearer {token}", jwt, "key s3cret-admin", "nsx_test_A1b2…C3d4", "cn_test_sk_short"]})
    assert out == {
        "a": [f"Bearer {token[:13]}…{token[-4:]}", "eyJ…(a JWT, hidden)", "key ***", "nsx_test_A1b2…C3d4",
              "cn_test_sk_short"],
    }  # fmt: skip
