"""A run refused before it starts (exit 2) still writes the JUnit and HTML/Markdown reports CI
uploads, naming the error and where the bad value came from (`$CONFORMANCE_TOKEN` or `--token`);
the wrong-base-URL hint puts the right path first; the report names the seed a run used."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.usage import rebased
from mock_server.app import SandboxApp
from tests.conformance.backends import make_sandbox, serve
from tests.conformance.conftest import ROOT


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve(SandboxApp(make_sandbox())) as base:
        yield base


def _run(tmp: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CONFORMANCE_", "SANDBOX_ADMIN"))}
    reports = ("--junit-xml", str(tmp / "junit.xml"), "--report", str(tmp / "out" / "report.html"))
    return subprocess.run(
        [sys.executable, "-m", "conformance", "run", "-q", *reports, *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env={**clean, **env},
    )  # fmt: skip


def _junit_error(tmp: Path) -> str:
    (error,) = ET.parse(tmp / "junit.xml").getroot().iter("error")
    return error.get("message") or ""


def test_a_bad_token_from_the_environment_is_blamed_on_the_variable(url: str, tmp_path: Path) -> None:
    base = f"{url}/nurosentrix/api/v1"
    refused = _run(tmp_path, "--api", "nurosentrix", "--base-url", base, CONFORMANCE_TOKEN="nsx_wrong")
    assert refused.returncode == 2, refused.stderr
    assert "rejected $CONFORMANCE_TOKEN" in refused.stderr and "--token" not in refused.stderr, refused.stderr
    assert "$CONFORMANCE_TOKEN" in _junit_error(tmp_path)
    page = (tmp_path / "out" / "report.html").read_text()
    assert "NOT RUN (usage error)" in page and "$CONFORMANCE_TOKEN" in page
    # the same value on the command line: the flag is named
    flagged = _run(tmp_path, "--api", "nurosentrix", "--base-url", base, "--token", "nsx_wrong")
    assert flagged.returncode == 2 and "rejected --token" in flagged.stderr, flagged.stderr
    assert "nsx_wrong" not in (tmp_path / "junit.xml").read_text() + flagged.stderr  # no secret written


def test_an_argument_error_writes_the_reports_too(tmp_path: Path) -> None:
    refused = _run(tmp_path, "--api", "nurosentrix", "--base-url", "http://127.0.0.1:9", "--token", "t",
                   "--checks", "auth,nonsense")  # fmt: skip
    assert refused.returncode == 2 and "--checks: unknown nonsense" in refused.stderr, refused.stderr
    assert "--checks: unknown nonsense" in _junit_error(tmp_path)
    assert (tmp_path / "out" / "report.html").exists()


def test_the_wrong_version_in_the_base_url_gets_the_right_path_first(url: str, tmp_path: Path) -> None:
    token = "cnx_test_" + "a" * 32
    wrong = _run(tmp_path, "--api", "cloudnexus", "--base-url", f"{url}/cloudnexus/v2", "--token", token)
    assert wrong.returncode == 2, wrong.stderr
    first = wrong.stderr.split("--base-url ")[2].split()[0]  # [1] is the URL that was given
    assert first == f"{url}/cloudnexus/v1", wrong.stderr
    assert "/cloudnexus/v2/v1" not in wrong.stderr


@pytest.mark.parametrize(
    ("given", "documented", "suggested"),
    [
        ("/cloudnexus/v2", "/v1", "/cloudnexus/v1"),
        ("/api/v2", "/api/v1", "/api/v1"),
        ("", "/api/v1", "/api/v1"),
        ("/gateway", "/api/v1", "/gateway/api/v1"),
        ("/nurosentrix/api/v1/servers", "/api/v1", "/nurosentrix/api/v1/servers/api/v1"),
    ],
)
def test_rebased_replaces_the_part_that_resembles_the_documented_path(
    given: str, documented: str, suggested: str
) -> None:
    assert rebased(given, documented) == suggested
