"""The package installed from a wheel (not editable, away from the source tree) carries its specs
and serves all four APIs: `pip install .` must not leave the specs folder behind."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.apis import APIS as ALL_APIS

ROOT = Path(__file__).resolve().parent.parent
APIS = set(ALL_APIS)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_a_wheel_installed_elsewhere_serves_all_four_apis(tmp_path: Path) -> None:
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(ROOT)], check=True, timeout=300)
    (wheel,) = wheels.glob("api_sandbox-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, timeout=120)
    shipped = {p.stem for p in (site / "contract" / "specs").glob("*.yaml")}
    assert shipped == APIS
    # the installed copy, not the source tree: run away from it, with the wheel's files first
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run(
        [sys.executable, "-c", "import contract, mock_server as m; print(contract.SPECS_DIR, m.__file__)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert where.stdout.startswith(str(site)) and str(ROOT) not in where.stdout, where.stdout
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mock_server", "serve", "--memory", "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/_mock/health", timeout=2)
                break
            except httpx.TransportError:
                alive = proc.poll() is None and time.monotonic() < deadline
                assert alive, proc.stdout.read() if proc.stdout else ""
                time.sleep(0.2)
        assert set(health.json()["apis"]) == APIS
        r = httpx.get(f"http://127.0.0.1:{port}/nurosentrix/api/v1/servers", timeout=5)
        assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
