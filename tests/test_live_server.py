"""The real server process: start-up output, persistence across a restart, and Schemathesis'
own CLI with all its checks finding nothing against the sandbox."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.live import ROOT, live_sandbox


def _mint(base: str, api: str) -> str:
    r = httpx.post(f"{base}/_mock/tokens", json={"api": api})
    assert r.status_code == 201
    return str(r.json()["token"])


@pytest.mark.slow
def test_restart_on_the_same_file_keeps_resources_and_tokens(tmp_path: Path) -> None:
    data = tmp_path / "state.json"
    seed = tmp_path / "seed.yaml"
    seed.write_text("tokens:\n  - {api: cloudnexus, token: cn_test_sk_ci_fixed_token_0001, account: ci}\n")
    auth = {"Authorization": "Bearer cn_test_sk_ci_fixed_token_0001"}
    with live_sandbox("--data", str(data), "--seed", str(seed)) as base:
        r = httpx.post(
            f"{base}/cloudnexus/v1/servers",
            headers=auth,
            json={"name": "kept", "plan": "pro", "region": "us-east-1"},
        )
        assert r.status_code == 201
        minted = _mint(base, "cloudnexus")
    with live_sandbox("--data", str(data)) as base:
        body = httpx.get(f"{base}/cloudnexus/v1/servers", headers=auth).json()
        assert [s["name"] for s in body["data"]] == ["kept"]
        assert (
            httpx.get(
                f"{base}/cloudnexus/v1/servers", headers={"Authorization": f"Bearer {minted}"}
            ).status_code
            == 200
        )


def test_a_corrupt_data_file_is_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "state.json"
    data.write_text("{definitely not json")
    r = subprocess.run(
        [sys.executable, "-m", "mock_server", "serve", "--data", str(data), "--port", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert str(data) in r.stderr and "Traceback" not in r.stderr
    assert data.read_text() == "{definitely not json"


def test_help_explains_every_option() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "mock_server", "serve", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    for option in (
        "--host",
        "--port",
        "--api",
        "--data",
        "--memory",
        "--rate-window",
        "--no-rate-limit",
        "--seed",
        "--async-delay",
    ):
        assert option in r.stdout
