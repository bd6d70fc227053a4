"""The commands as a user runs them: `python -m proxy` (= `mock-server proxy`) with reports and a
recording written on exit, its exit status; `serve --faults FILE`."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx

from mock_server.testing import SandboxServer
from tests.conformance.backends import free_port

ROOT = Path(__file__).resolve().parent.parent
SERVE = [sys.executable, "-m", "mock_server", "serve", "--memory"]
SERVER = {"name": "web-1", "provider": "digitalocean", "region": "nyc1", "size": "s-1vcpu-1gb"}


def _wait(url: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


def test_proxy_command_writes_reports_and_a_recording_on_exit(tmp_path: Path) -> None:
    with SandboxServer(apis=["nurosentrix"], async_delay=0, rate_limit=False) as sandbox:
        token = sandbox.token("nurosentrix")
        port = free_port()
        files = {name: tmp_path / name for name in ("report.md", "report.xml", "seed.yaml")}
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "proxy", "--api", "nurosentrix", "--upstream",
                sandbox.base_url("nurosentrix"), "--port", str(port),
                "--report", str(files["report.md"]), "--report", str(files["report.xml"]),
                "--record", str(files["seed.yaml"]),
            ],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            _wait(f"http://127.0.0.1:{port}/_mock/proxy", proc)
            base = f"http://127.0.0.1:{port}/nurosentrix/api/v1"
            auth = {"Authorization": f"Bearer {token}"}
            assert httpx.post(base + "/servers", json=SERVER, headers=auth).status_code == 201
            assert httpx.get(base + "/servers", params={"per_page": "x"}, headers=auth).status_code == 400
        finally:
            proc.send_signal(signal.SIGTERM)  # as `kill %1` in a CI script
            _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err  # a request the contract refuses was seen
    assert "2 exchanges: 0 violations" in err and "1 requests the contract refuses" in err
    assert "# Proxy report: nurosentrix" in files["report.md"].read_text()
    assert "per_page" in files["report.md"].read_text()
    root = ET.parse(files["report.xml"]).getroot()
    assert root.get("name") == "proxy nurosentrix" and root.get("failures") == "1"
    seed = files["seed.yaml"].read_text()
    assert "collection: servers" in seed and token not in seed
    for f in files.values():
        assert token not in f.read_text()


def test_serve_faults_file(tmp_path: Path) -> None:
    rules = tmp_path / "faults.yaml"
    rules.write_text("- {api: nurosentrix, operation: listServers, status: 429, retry_after: 2, count: 1}\n")
    port = free_port()
    proc = subprocess.Popen(
        [*SERVE, "--port", str(port), "--faults", str(rules)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait(f"http://127.0.0.1:{port}/_mock/health", proc)
        url = f"http://127.0.0.1:{port}"
        token = httpx.post(url + "/_mock/tokens", json={"api": "nurosentrix"}).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        first = httpx.get(url + "/nurosentrix/api/v1/servers", headers=auth)
        assert first.status_code == 429 and first.headers["Retry-After"] == "2"
        assert httpx.get(url + "/nurosentrix/api/v1/servers", headers=auth).status_code == 200
        assert [r["fired"] for r in httpx.get(url + "/_mock/faults").json()["faults"]] == [1]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {api: nurosentrix, operation: listServers, status: 503}\n")
    refused = subprocess.run(
        [*SERVE, "--port", str(free_port()), "--faults", str(bad)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 2 and "503 is not documented for listServers" in refused.stderr
