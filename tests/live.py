"""A real sandbox process on 127.0.0.1 for the tests that need sockets."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_sandbox(*args: str, timeout: float = 30.0, health_token: str | None = None) -> Iterator[str]:
    """Start `python -m mock_server serve` with `args`; yield its base URL; stop it.
    `health_token`: the `--admin-token` given, to ask whether it is up."""
    port = free_port()
    # A pipe nobody reads would fill up and stall the server: its output goes to a file.
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        [sys.executable, "-m", "mock_server", "serve", "--port", str(port), *args],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"sandbox exited: {log.read()}")
            try:
                auth = {"Authorization": f"Bearer {health_token}"} if health_token else {}
                if httpx.get(f"{base}/_mock/health", timeout=1, headers=auth).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("sandbox did not start")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
