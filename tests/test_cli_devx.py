"""What a developer meets first: start-up tokens that survive a restart (`--rotate-tokens` to
replace them), `serve` refusing to start with no API, `--cors`, the token CLI reading
`$SANDBOX_URL` and printing a table on a terminal, seed errors that name the known APIs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from mock_server.app import SandboxApp, with_cors
from mock_server.cli import build_parser, main, token_table
from mock_server.clock import FrozenClock
from mock_server.sandbox import Sandbox
from mock_server.seed import SeedError, apply_seed
from mock_server.store_tinydb import TinyDBStore
from tests.conftest import all_specs
from tests.live import ROOT, free_port, live_sandbox
from tests.sandbox_client import SyncASGIClient


def _open(path: Path) -> Sandbox:
    return Sandbox(all_specs(), TinyDBStore(path), clock=FrozenClock(), async_delay=0)


def test_startup_tokens_survive_a_restart_until_rotated(tmp_path: Path) -> None:
    data = tmp_path / "sandbox.json"
    sb = _open(data)
    first = sb.startup_tokens()
    assert [(api, kept) for api, _, kept in first] == [(a, False) for a in sb.specs]
    sb.store.close()

    sb = _open(data)
    again = sb.startup_tokens()
    assert again == [(api, token, True) for api, token, _ in first]
    assert all(sb.tokens.authenticate(api, token) for api, token, _ in again)

    rotated = sb.startup_tokens(rotate=True)
    assert all(not kept for _, _, kept in rotated)
    assert {t for _, t, _ in rotated}.isdisjoint(t for _, t, _ in first)
    for (api, old, _), (_, new, _) in zip(first, rotated, strict=True):
        assert sb.tokens.authenticate(api, old) is None and sb.tokens.authenticate(api, new) is not None
    names = [t["name"] for t in sb.tokens.list("nurosentrix")]
    assert names == ["startup"], "one start-up token per API, never an accumulation"
    sb.store.close()

    sb = _open(data)  # a start-up token revoked by hand is replaced at the next start
    api, token, _ = sb.startup_tokens()[0]
    sb.tokens.revoke(token)
    assert sb.startup_tokens()[0][1:] != (token, True)
    sb.store.close()


def _banner(*args: str) -> str:
    """What `serve` prints before it serves (it is stopped once healthy)."""
    port = free_port()
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mock_server", "serve", "--port", str(port), *args],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.monotonic() + 30
            while proc.poll() is None and time.monotonic() < deadline:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/_mock/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        log.seek(0)
        return log.read()


def test_the_banner_says_which_token_is_kept_and_prints_the_export_line(tmp_path: Path) -> None:
    data = str(tmp_path / "s.json")
    first = _banner("--data", data, "--api", "nexos")
    second = _banner("--data", data, "--api", "nexos")
    rotated = _banner("--data", data, "--api", "nexos", "--rotate-tokens")

    def token(out: str) -> tuple[str, str]:
        line = next(x for x in out.splitlines() if "Authorization: Bearer" in x)
        return line.split()[2], line.split("(", 1)[1]

    assert token(first)[1] == "new)" and token(rotated)[1] == "new)"
    assert token(second) == (token(first)[0], "kept from the last start on this data file)")
    assert token(rotated)[0] != token(first)[0]
    assert re.search(r"^For the token CLI: export SANDBOX_URL=http://127\.0\.0\.1:\d+$", first, re.M), first
    assert re.search(r"^API docs: +http://127\.0\.0\.1:\d+/ +Dashboard: http://\S+/_mock/ui$", first, re.M)


def test_serve_refuses_to_start_with_no_api(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    import mock_server.sandbox

    monkeypatch.setattr(mock_server.sandbox, "load_all", lambda names=None: [])
    assert main(["serve", "--memory", "--port", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["mock_server: no API to serve: no OpenAPI spec was found"]


def test_cors_is_off_by_default_and_on_for_the_origins_given() -> None:
    sb = Sandbox(all_specs(), clock=FrozenClock(), async_delay=0)
    token = sb.mint("nurosentrix")[0]
    origin = "http://localhost:3000"
    plain = SyncASGIClient(with_cors(SandboxApp(sb), None))
    cors = SyncASGIClient(with_cors(SandboxApp(sb), [origin]))
    try:
        url = "/nurosentrix/api/v1/servers"
        auth = {"Authorization": f"Bearer {token}", "Origin": origin}
        assert "access-control-allow-origin" not in plain.get(url, headers=auth).headers
        r = cors.get(url, headers=auth)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == origin
        assert "x-request-id" in r.headers["access-control-expose-headers"].lower()
        assert "retry-after" in r.headers["access-control-expose-headers"].lower()
        pre = cors.request(
            "OPTIONS",
            url,
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == origin
        other = cors.get(url, headers={**auth, "Origin": "http://evil.test"})
        assert "access-control-allow-origin" not in other.headers
    finally:
        plain.close()
        cors.close()
    assert build_parser().parse_args(["serve"]).cors is None


def test_token_cli_reads_sandbox_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDBOX_URL", "http://127.0.0.1:9999")
    monkeypatch.setenv("SANDBOX_ADMIN_TOKEN", "adm")
    args = build_parser().parse_args(["token", "list"])
    assert (args.url, args.admin_token) == ("http://127.0.0.1:9999", "adm")
    monkeypatch.delenv("SANDBOX_URL")
    monkeypatch.delenv("SANDBOX_ADMIN_TOKEN")
    args = build_parser().parse_args(["token", "create", "--api", "nexos"])
    assert (args.url, args.admin_token) == ("http://127.0.0.1:8080", None)
    with live_sandbox("--memory") as base:
        env = {**os.environ, "SANDBOX_URL": base}
        cli = [sys.executable, "-m", "mock_server", "token"]
        made = subprocess.run(
            [*cli, "create", "--api", "nexos"], env=env, capture_output=True, text=True, timeout=60
        )
        assert made.returncode == 0 and made.stdout.startswith("nxs_test_"), made.stderr
        listed = subprocess.run([*cli, "list"], env=env, capture_output=True, text=True, timeout=60)
        assert listed.returncode == 0 and '"tokens"' in listed.stdout  # not a terminal: JSON


def test_token_list_is_a_table_on_a_terminal(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    tokens = [
        {
            "id": "tok_1",
            "api": "nurosentrix",
            "masked": "nsx_test_ab…wxyz",
            "mode": "test",
            "account": "acme",
            "name": None,
            "created_at": "2026-01-01T00:00:00Z",
            "scopes": ["servers:read", "servers:write"],
        }
    ]
    lines = token_table(tokens).splitlines()
    assert lines[0].split() == ["ID", "API", "TOKEN", "MODE", "ACCOUNT", "NAME", "CREATED", "SCOPES"]
    assert lines[1].split() == [
        "tok_1",
        "nurosentrix",
        "nsx_test_ab…wxyz",
        "test",
        "acme",
        "2026-01-01T00:00:00Z",
        "servers:read",
        "servers:write",
    ]
    assert lines[0].index("TOKEN") == lines[1].index("nsx_test_")
    assert token_table([]) == "no tokens"


@pytest.mark.parametrize(
    ("seed", "message"),
    [
        (
            {"tokens": [{"api": "nurosentrixx", "token": "nsx_test_x_0001"}]},
            "tokens[0]: unknown api 'nurosentrixx'; known: ",
        ),
        ({"tokens": [{"api": "nurosentrix"}]}, "tokens[0]: no token given"),
        ({"users": [{"email": "a@b.c"}]}, "users[0]: no api given; known: "),
        (
            {"resources": [{"api": "nexos", "collection": "servers", "data": {}}]},
            "resources[0]: nexos has no collection 'servers'; known: projects",
        ),
        ({"tokens": ["nsx_test_x"]}, "tokens[0]: an entry is a mapping"),
    ],
)
def test_seed_errors_name_what_is_wrong(seed: dict[str, Any], message: str) -> None:
    sb = Sandbox(all_specs(), clock=FrozenClock())
    with pytest.raises(SeedError) as err:
        apply_seed(sb, seed)
    assert str(err.value).startswith(message)
    if "known: " in message and "unknown api" in message:
        assert str(err.value).endswith(", ".join(sb.specs))
