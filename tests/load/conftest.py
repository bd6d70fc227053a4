"""Fixtures of the load-suite tests: real processes on 127.0.0.1 only (the sandbox with a short
rate window, broken stand-in backends), every one of them time-bounded."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.apis import APIS

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"  # the only address load tests ever target
RATE_WINDOW = 3.0  # the sandbox's --rate-window in these tests: a window lasts seconds, not a minute


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def env() -> dict[str, str]:
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), out.get("PYTHONPATH")) if p)
    for name in list(out):
        if name.endswith("_TOKEN") or name.startswith("LOCUST_"):
            del out[name]  # nothing from the caller's shell leaks into a run
    return out


def run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, env=env(), capture_output=True, text=True, timeout=timeout)


def spawn(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        args, cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def stop(proc: subprocess.Popen[str]) -> str:
    """End a process this test started; its output."""
    if proc.poll() is None:
        proc.terminate()
    try:
        out, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=10)
    return (out or "") + (err or "")


def wait_http(url: str, proc: subprocess.Popen[str], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=1):
                return True
        except urllib.error.HTTPError:
            return True  # answering, even with an error status
        except OSError:
            time.sleep(0.1)
    return False


@dataclass
class Sandbox:
    url: str
    apis: list[str]
    proc: subprocess.Popen[str]
    skipped: dict[str, str] = field(default_factory=dict)

    def token(self, api: str) -> str:
        """A fresh token of a fresh account: its own rate-limit budget and its own resources."""
        body = json.dumps({"api": api, "account": f"load-test-{secrets.token_hex(4)}"}).encode()
        req = urllib.request.Request(
            f"{self.url}/_mock/tokens", body, {"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            return str(json.loads(r.read())["token"])


def _start_sandbox(apis: list[str]) -> Sandbox | None:
    port = free_port()
    args = [sys.executable, "-m", "mock_server", "serve", "--host", HOST, "--port", str(port)]
    args += ["--memory", "--async-delay", "0", "--rate-window", str(RATE_WINDOW)]
    for api in apis:
        args += ["--api", api]
    proc = spawn(args)
    url = f"http://{HOST}:{port}"
    if wait_http(f"{url}/_mock/health", proc):
        return Sandbox(url, apis, proc)
    stop(proc)
    return None


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """The sandbox with every API whose spec is present."""
    started = _start_sandbox(list(APIS))
    if started is None:
        pytest.fail("the sandbox did not start")
    yield started
    stop(started.proc)


def need(sandbox: Sandbox, api: str) -> None:
    if api in sandbox.skipped:
        pytest.skip(sandbox.skipped[api])
