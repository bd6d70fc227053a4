"""The control API (/_mock) can reset, mint and read everything: it listens on 127.0.0.1 unless
told otherwise, and `--admin-token` locks every /_mock route behind `Authorization: Bearer`."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from mock_server.cli import build_parser
from tests.live import ROOT
from tests.robustness.support import ServerProcess, count, live_seen, server

CLI = [sys.executable, "-m", "mock_server", "token", "create", "--api", "nexos"]
CONTROL_SPEC = yaml.safe_load((ROOT / "mock_server" / "control_api.yaml").read_text())


def _routes() -> list[tuple[str, str]]:
    fill = {
        "{token}": "tok_0000000000000000",
        "{api}": "nurosentrix",
        "{collection}": "servers",
        "{id}": "srv_0000000000",
    }
    out = []
    for path, item in CONTROL_SPEC["paths"].items():
        for method in ("get", "post", "delete", "put", "patch"):
            if method in item:
                for k, v in fill.items():
                    path = path.replace(k, v)
                out.append((method.upper(), "/_mock" + path))
    return out


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on `port` (Linux /proc/net/tcp, tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, hexport = local.split(":")
            if int(hexport, 16) == port and state == "0A":  # LISTEN
                found.add(addr)
    return found


def test_the_default_bind_address_is_loopback(tmp_path: Path) -> None:
    assert build_parser().parse_args(["serve"]).host == "127.0.0.1"
    if not Path("/proc/net/tcp").exists():
        pytest.skip("no /proc/net/tcp to read the listening address from")
    with server(tmp_path, "--memory") as proc:
        assert _listening_addresses(proc.port) == {"0100007F"}  # 127.0.0.1, nothing else


@pytest.mark.slow
def test_admin_token_guards_every_control_route(tmp_path: Path) -> None:
    admin = "adm_" + secrets.token_urlsafe(24)
    with server(tmp_path, "--memory", "--admin-token", admin, "--async-delay", "0") as proc:
        base = proc.base
        ok = {"Authorization": f"Bearer {admin}"}
        token = live_seen(httpx.post(f"{base}/_mock/tokens", json={"api": "nurosentrix"}, headers=ok)).json()[
            "token"
        ]
        api = httpx.Client(
            base_url=f"{base}/nurosentrix/api/v1", headers={"Authorization": f"Bearer {token}"}
        )
        body = {"name": "kept", "provider": "p", "region": "r", "size": "s"}
        assert live_seen(api.post("/servers", json=body)).status_code == 201  # the APIs need no admin token
        wrong = [
            {},
            {"Authorization": "Bearer"},
            {"Authorization": "Bearer wrong"},
            {"Authorization": f"Bearer {admin[:-1]}"},
            {"Authorization": f"Bearer {admin}x"},
            {"Authorization": f"Basic {admin}"},
            {"Authorization": admin},
            {"Authorization": f"Bearer {token}"},  # an API token is not the admin token
            {"X-Admin-Token": admin},
        ]
        routes = _routes()
        assert len(routes) >= 9
        minted = len(httpx.get(f"{base}/_mock/tokens", headers=ok).json()["tokens"])
        for method, path in routes:
            for headers in wrong:
                r = live_seen(
                    httpx.request(method, base + path, headers=headers, json={"api": "nurosentrix"})
                )
                count("admin_token_checks")
                if (method, path) == ("GET", "/_mock/health"):  # public for wait loops: reveals nothing
                    assert r.status_code == 200 and r.json() == {"status": "ok"}, r.text
                    continue
                assert r.status_code == 401, (method, path, headers, r.status_code)
                assert r.json()["error"]["code"] == "UNAUTHORIZED"
                assert admin not in r.text
        # none of that reset, minted or revoked anything
        assert live_seen(api.get("/servers")).json()["meta"]["total"] == 1
        assert len(httpx.get(f"{base}/_mock/tokens", headers=ok).json()["tokens"]) == minted
        for method, path in routes:
            r = live_seen(httpx.request(method, base + path, headers=ok, json={"api": "nurosentrix"}))
            assert r.status_code != 401, (method, path)
        assert live_seen(api.get("/servers")).json()["meta"]["total"] == 0  # the reset with the token did
        for path in ("/_mock", "/_mock/", "/_mock/nothing", "/_mock/../_mock/reset"):
            assert live_seen(httpx.get(base + path)).status_code == 401
        cli = subprocess.run(
            [*CLI, "--url", base],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode != 0 and "401" in cli.stderr
        cli = subprocess.run(
            [*CLI, "--url", base, "--admin-token", admin],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 0 and cli.stdout.strip().startswith("nxs_test_"), cli.stderr
        log = httpx.get(f"{base}/_mock/requests", headers=ok).text
        assert admin not in log
        api.close()
    assert admin not in proc.output()


def test_a_non_loopback_bind_without_admin_token_is_warned_about(tmp_path: Path) -> None:
    if not Path("/proc/net/tcp").exists():
        pytest.skip("needs Linux, where all of 127.0.0.0/8 is loopback")
    proc = ServerProcess(tmp_path, "--memory", host="127.0.0.2")  # not "a loopback name" to the CLI
    proc.start()
    try:
        assert "--admin-token" in proc.output()
    finally:
        proc.stop()
