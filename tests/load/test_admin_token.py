"""Load users mint their tokens from a sandbox whose control API needs the admin token: they send
it from `$SANDBOX_ADMIN_TOKEN` (`load run --admin-token` puts it there), and say so when it is
missing. In a subprocess: importing the load package monkey-patches with gevent."""

from __future__ import annotations

import os
import subprocess
import sys

from mock_server.app import SandboxApp
from tests.conformance.backends import make_sandbox, serve
from tests.conformance.conftest import ROOT


def _mint(url: str, admin: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SANDBOX_ADMIN_TOKEN"}
    if admin:
        env["SANDBOX_ADMIN_TOKEN"] = admin
    code = f"from load.common import mint_token; print(mint_token({url!r}, 'nurosentrix'))"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_minting_sends_the_admin_token() -> None:
    admin = "adm_" + "k" * 24
    with serve(SandboxApp(make_sandbox(), admin_token=admin)) as url:
        refused = _mint(url, None)
        assert refused.returncode != 0
        assert "401: give the sandbox's --admin-token or $SANDBOX_ADMIN_TOKEN" in refused.stderr
        minted = _mint(url, admin)
        assert minted.returncode == 0, minted.stderr
        assert minted.stdout.startswith("nsx_test_")
