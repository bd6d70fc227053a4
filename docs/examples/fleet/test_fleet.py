"""Tests of `fleet.py` against the sandbox, with the `sandbox` fixture of the plugin installed
with the package (`pip install api-sandbox`: nothing to import, nothing to configure).

Each test starts from an empty sandbox (reset before it); the clock is frozen, so `sleep` is
`sandbox.clock.advance`: a lifecycle or a `Retry-After` costs no wall time."""

from __future__ import annotations

import pytest
from fleet import FleetClient, PermissionDenied

from mock_server.testing import SandboxServer

API = "nurosentrix"


def client(sandbox: SandboxServer, sleeps: list[float] | None = None, **token: object) -> FleetClient:
    def sleep(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)
        sandbox.clock.advance(seconds)

    return FleetClient(sandbox.base_url(API), sandbox.token(API, **token), sleep=sleep)  # type: ignore[arg-type]


def test_all_servers_reads_every_page(sandbox: SandboxServer) -> None:
    app = client(sandbox)
    made = [app.create_server(f"web-{i}")["id"] for i in range(45)]  # more than one window's 20 writes
    assert [s["id"] for s in app.all_servers(per_page=20)] == made
    pages = sandbox.requests(API, method="GET", path="/servers")
    assert [r.status for r in pages] == [200, 200, 200]  # 45 servers: pages of 20, 20 and 5


def test_a_missing_scope_is_a_clear_error(sandbox: SandboxServer) -> None:
    app = client(sandbox, scopes=["servers:read"])
    assert app.all_servers() == []
    with pytest.raises(PermissionDenied, match="servers:write"):
        app.create_server("web-1")
    (refused,) = sandbox.requests(API, status=403)
    assert refused.reason == "the token lacks servers:write (it has: servers:read)"


def test_429_is_honoured_with_retry_after(sandbox: SandboxServer) -> None:
    sleeps: list[float] = []
    app = client(sandbox, sleeps)
    for i in range(21):  # the 21st create in one window is refused, then retried
        app.create_server(f"web-{i}")
    assert sleeps == [60]  # the Retry-After the sandbox sent, waited once
    (limited,) = sandbox.requests(API, status=429)
    assert limited.reason is not None and limited.reason.startswith('bucket "write" (20 per 60 s)')
    assert len(sandbox.requests(API, method="POST", status=201)) == 21


def test_a_new_server_becomes_active(sandbox: SandboxServer) -> None:
    sleeps: list[float] = []
    app = client(sandbox, sleeps)
    server = app.create_server("web-1")
    assert server["status"] == "provisioning"
    active = app.wait_until_active(server["id"])
    assert active["status"] == "active" and active["id"] == server["id"]
    assert sum(sleeps) == 5  # the documented provisioning time, on the sandbox's clock


def test_accounts_do_not_see_each_other(sandbox: SandboxServer) -> None:
    client(sandbox, account="acme").create_server("acme-web")
    assert client(sandbox, account="globex").all_servers() == []


@pytest.mark.sandbox_keep_state
def test_keep_state_sees_what_the_test_before_left(sandbox: SandboxServer) -> None:
    assert sandbox.requests(API, method="POST", status=201), "not reset before this test"
