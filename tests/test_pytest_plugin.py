"""The pytest plugin and `SandboxServer`: the example apps' tests (docs/examples/) pass as a
user would run them, and the helpers behave as documented against a started or a running sandbox."""

from __future__ import annotations

import socket
import subprocess
import sys

import httpx
import pytest

from mock_server.testing import SandboxServer
from tests.live import ROOT, live_sandbox

SERVER = {"name": "web-1", "provider": "digitalocean", "region": "nyc1", "size": "s-1vcpu-1gb"}


def test_the_example_app_tests_pass() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "docs/examples/fleet", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().splitlines()[-1].startswith("7 passed"), out.stdout


def test_the_retry_example_tests_pass() -> None:
    """docs/examples/retry: an app's retry code against `Prefer` and fault rules."""
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "docs/examples/retry", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().splitlines()[-1].startswith("5 passed"), out.stdout


def test_the_plugin_is_installed_with_the_package() -> None:
    from importlib.metadata import entry_points

    (plugin,) = [e for e in entry_points(group="pytest11") if e.value == "mock_server.pytest_plugin"]
    assert plugin.load().__name__ == "mock_server.pytest_plugin"


def test_context_manager_helpers() -> None:
    with SandboxServer(apis=["nurosentrix"], async_delay=3) as sb:
        port = sb.port
        base = sb.base_url("nurosentrix")
        assert base == f"http://127.0.0.1:{port}/nurosentrix/api/v1"
        with pytest.raises(KeyError, match="serves no 'nexos'"):
            sb.base_url("nexos")
        token = sb.token("nurosentrix", scopes=["servers:read", "servers:write"], account="acme")
        api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})
        created = api.post("/servers", json=SERVER).json()["data"]
        before = sb.clock.now()
        assert api.get(f"/servers/{created['id']}").json()["data"]["status"] == "provisioning"
        assert sb.clock.advance(3) == before + 3  # frozen: only `advance` moves it
        assert api.get(f"/servers/{created['id']}").json()["data"]["status"] == "active"
        seen = sb.requests("nurosentrix", path=f"/servers/{created['id']}")
        assert [(r.method, r.status, r.token_id) for r in seen] == [
            ("GET", 200, seen[0].token_id),
            ("GET", 200, seen[0].token_id),
        ]
        assert sb.requests(token=token) == sb.requests(token=seen[0].token_id) and len(sb.requests()) == 3
        sb.revoke(token)
        assert api.get("/servers").status_code == 401
        (refused,) = sb.requests(status="4xx")
        assert refused.reason is not None and "was revoked at" in refused.reason
        sb.reset()
        assert sb.requests() == [] and sb.control("GET", "tokens")["tokens"] == []
        api.close()
    with socket.socket() as s:  # stopped: the port is free again
        s.bind(("127.0.0.1", port))


def test_in_process_through_the_asgi_app() -> None:
    import asyncio

    with SandboxServer(apis=["nexos"]) as sb:
        token = sb.token("nexos")

        async def call() -> int:
            transport = httpx.ASGITransport(app=sb.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://in-process") as c:
                r = await c.get("/nexos/api/projects", headers={"Authorization": f"Bearer {token}"})
                return r.status_code

        assert asyncio.run(call()) == 200
        assert [r.status for r in sb.requests("nexos", path="/projects")] == [200]  # one state


def test_a_running_sandbox_is_driven_the_same_way() -> None:
    with live_sandbox("--memory") as url, SandboxServer(url=url) as sb:
        assert sb.sandbox is None and sb.url == url
        token = sb.token("cloudnexus")
        r = httpx.get(sb.base_url("cloudnexus") + "/servers", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
        assert [x.path for x in sb.requests("cloudnexus")] == ["/cloudnexus/v1/servers"]


def test_admin_token() -> None:
    with SandboxServer(apis=["nexos"], admin_token="adm-secret") as guarded:
        with SandboxServer(url=guarded.url, admin_token="adm-secret") as sb:
            assert sb.token("nexos").startswith("nxs_test_")
        with pytest.raises(httpx.HTTPStatusError, match="401"), SandboxServer(url=guarded.url):
            pass  # without the admin token the control API answers 401
