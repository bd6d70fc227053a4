"""No dead ends for a new user: `/_mock/health` answers anyone (and reveals nothing under
--admin-token), the banner and every 401 name the admin-token flag and `$SANDBOX_ADMIN_TOKEN`, one
CLI lists and runs every command (`python -m mock_server proxy` too), and `--sandbox-url` says
that it resets the sandbox it is pointed at."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import httpx
import pytest

from mock_server.app import SandboxApp
from mock_server.commands import COMMANDS
from tests.conftest import all_specs
from tests.live import ROOT, free_port
from tests.sandbox_client import SyncASGIClient

ADMIN = "adm_" + "k" * 28


def _env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("SANDBOX_")}, **extra}


def _client(admin: str | None) -> SyncASGIClient:
    from mock_server.clock import FrozenClock
    from mock_server.sandbox import Sandbox
    from mock_server.store import MemoryStore

    sandbox = Sandbox(all_specs(), MemoryStore(), clock=FrozenClock(), async_delay=0)
    return SyncASGIClient(SandboxApp(sandbox, admin_token=admin))


def test_health_is_public_and_reveals_nothing_under_an_admin_token() -> None:
    guarded = _client(ADMIN)
    anyone = guarded.get("/_mock/health")
    assert anyone.status_code == 200 and anyone.json() == {"status": "ok"}
    admin = guarded.get("/_mock/health", headers={"Authorization": f"Bearer {ADMIN}"})
    assert admin.status_code == 200 and "nurosentrix" in admin.json()["apis"]  # the admin sees all
    refused = guarded.get("/_mock/tokens")
    assert refused.status_code == 401
    message = refused.json()["error"]["message"]
    assert "--admin-token" in message and "$SANDBOX_ADMIN_TOKEN" in message
    assert "nurosentrix" in _client(None).get("/_mock/health").json()["apis"]  # open sandbox: as before


@pytest.mark.slow
def test_the_banner_names_the_flag_and_variable_and_the_token_cli_hints_on_401() -> None:
    port = free_port()
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mock_server", "serve", "--memory", "--port", str(port)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True, env=_env(SANDBOX_ADMIN_TOKEN=ADMIN),
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:  # the CI recipe's wait loop: no token needed
                try:
                    if httpx.get(f"{url}/_mock/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, "sandbox did not start"
                time.sleep(0.1)
            cli = [sys.executable, "-m", "mock_server", "token", "list", "--url", url]
            refused = subprocess.run(cli, cwd=ROOT, capture_output=True, text=True, env=_env(), timeout=60)
            allowed = subprocess.run(
                cli, cwd=ROOT, capture_output=True, text=True, env=_env(SANDBOX_ADMIN_TOKEN=ADMIN), timeout=60
            )
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        log.seek(0)
        banner = log.read()
    assert "--admin-token" in banner and "$SANDBOX_ADMIN_TOKEN" in banner and ADMIN not in banner, banner
    assert refused.returncode == 1 and "hint:" in refused.stderr, refused.stderr
    assert "--admin-token" in refused.stderr and "SANDBOX_ADMIN_TOKEN" in refused.stderr
    assert allowed.returncode == 0, allowed.stderr  # serve read $SANDBOX_ADMIN_TOKEN too


def test_one_cli_lists_and_runs_every_command() -> None:
    helped = subprocess.run(
        [sys.executable, "-m", "mock_server", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    listed = helped.stdout.split("{", 1)[1].split("}", 1)[0].split(",")
    assert {"serve", "token", "proxy", "mcp", "conformance", "load"} <= set(listed), helped.stdout
    for name in COMMANDS:
        sub = subprocess.run(
            [sys.executable, "-m", "mock_server", name, "--help"],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert sub.returncode == 0 and sub.stdout.startswith("usage:"), (name, sub.stderr)
    proxy = subprocess.run(
        [sys.executable, "-m", "mock_server", "proxy", "--api", "nope", "--upstream", "http://127.0.0.1:9"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proxy.returncode == 2 and proxy.stderr.startswith("mock-server proxy:"), proxy.stderr


def test_a_missing_extra_is_one_line_naming_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from mock_server import commands

    monkeypatch.setitem(commands.COMMANDS, "ghost", ("no_such_module_xyz.cli:main", "x", "api-sandbox[x]"))
    assert commands.run("ghost", []) == 2


def test_sandbox_url_says_it_resets() -> None:
    helped = subprocess.run(
        [sys.executable, "-m", "pytest", "--help", "-p", "no:cacheprovider"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "RESET before each test" in " ".join(helped.stdout.split()), helped.stdout[-2000:]
