"""A stateless mock of the same spec (connexion `--mock=all`) is not a conforming backend: it
replays examples to anyone, keeps nothing, and speaks problem+json. The suite says so."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conformance.backends import free_port
from tests.conformance.conftest import Outcome
from tests.conformance.connexion_mock import ROOT, start


@pytest.mark.slow
def test_stateless_connexion_mock_fails_the_stateful_checks(
    tmp_path: Path, suite: Callable[..., Outcome]
) -> None:
    port = free_port()
    proc = start("cloudnexus-io", port, tmp_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/v1/regions", timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, "connexion did not start"
                time.sleep(0.1)
        tokens = ["cnio_test_" + c * 32 for c in "abc"]
        out = suite(
            "--api", "cloudnexus-io", "--base-url", f"http://127.0.0.1:{port}/v1", "--token", tokens[0],
            "--limited-token", tokens[1], "--other-token", tokens[2], "--max-examples", "3",
            "--profile", "strict",  # .io documents no limit and no scopes: the sandbox's choices
        )  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert out.code == 1, out
    assert {
        "auth",
        "envelope",
        "tenancy",
        "lifecycle",
        "ratelimit",
        "scopes",
        "ignored_auth",
    } <= out.failing, out


def _answers(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/v1/regions", timeout=1)
        return True
    except httpx.HTTPError:
        return False


@pytest.mark.slow
def test_sigterm_stops_the_connexion_child_too() -> None:
    """`python -m tests.conformance.connexion_mock` stopped as CI stops it: nothing left listening."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.conformance.connexion_mock", "cloudnexus-io", str(port)],
        cwd=ROOT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not _answers(port):
            assert proc.poll() is None and time.monotonic() < deadline, "connexion did not start"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert not _answers(port), "the connexion child still listens after SIGTERM"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
