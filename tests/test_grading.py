"""Grading the client (`mock_server/grading/`): the reference clients of docs/examples/clients,
the surfaces (`GET /_mock/grade`, `sandbox.grade`, `assert_good_client`, `mock-server grade`,
the pytest report section), the request log's new fields, and the speed of grading."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.grading import TOKENS, logged_rows
from contract import load_all
from mock_server.cli import main
from mock_server.grading import RULES, grade
from mock_server.testing import ClientGradeError, ControlError, SandboxServer
from tests.live import ROOT

API = "nurosentrix"
SERVER = {"name": "web-1", "provider": "digitalocean", "region": "nyc1", "size": "s-1vcpu-1gb"}


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(apis=[API, "cloudnexus"]) as s:
        yield s


@pytest.fixture
def sandbox(server: SandboxServer) -> SandboxServer:
    server.reset()
    return server


def client(sandbox: SandboxServer, token: str) -> httpx.Client:
    return httpx.Client(base_url=sandbox.base_url(API), headers={"Authorization": f"Bearer {token}"})


def test_at_least_ten_rules_each_with_an_id_and_a_line() -> None:
    assert len(RULES) >= 10
    assert len({r.id for r in RULES}) == len(RULES)
    assert all(r.title and "\n" not in r.title for r in RULES)


def test_every_bad_reference_client_breaks_its_rule_and_no_good_one_any() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "docs/examples/clients", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{2 * len(RULES) + 1} passed" in out.stdout.strip().splitlines()[-1], out.stdout


def _pytest(folder: Path) -> subprocess.CompletedProcess[str]:
    """pytest run by a user in `folder`, with this worktree's package (not another install)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "pytest", str(folder), "-p", "no:cacheprovider"]
    return subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=300)


def test_a_failing_app_test_shows_its_requests_and_the_sandbox_reasons(tmp_path: Path) -> None:
    """The fleet example's app with a read-only token: the test fails on its own assertion, and
    pytest's report shows what the sandbox saw (the 403 and why) and the client rules broken."""
    (tmp_path / "test_app.py").write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {str(ROOT / "docs/examples/fleet")!r})
            from fleet import FleetClient, PermissionDenied

            def test_creates_a_server(sandbox):
                token = sandbox.token("nurosentrix", scopes=["servers:read", "instances:read"])
                app = FleetClient(sandbox.base_url("nurosentrix"), token, sleep=sandbox.clock.advance)
                app.all_servers()
                try:
                    app.create_server("web-1")
                except PermissionDenied:
                    pass
                assert [r.status for r in sandbox.requests("nurosentrix", method="POST")] == [201]
            """
        )
    )
    out = _pytest(tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    text = out.stdout
    assert "sandbox: this test's requests, and why the sandbox refused them" in text
    assert "GET /nurosentrix/api/v1/servers -> 200" in text
    assert "POST /nurosentrix/api/v1/servers -> 403" in text
    assert "the token lacks servers:write (it has: instances:read, servers:read)" in text
    assert "scopes-sufficient: 1 call(s) refused for a missing scope" in text
    assert "least-privilege: holds scopes none of its calls needed: instances:read" in text


def test_a_passing_test_has_no_sandbox_section(tmp_path: Path) -> None:
    (tmp_path / "test_ok.py").write_text("def test_ok(sandbox):\n    sandbox.token('nurosentrix')\n")
    out = _pytest(tmp_path)
    assert out.returncode == 0 and "sandbox: this test's requests" not in out.stdout, out.stdout


def test_the_plugin_keeps_the_servers_own_message(sandbox: SandboxServer) -> None:
    with pytest.raises(ControlError, match=r"400 unknown fields: times; known: account, api, count") as err:
        sandbox.fault(times=1)
    assert isinstance(err.value, httpx.HTTPStatusError) and err.value.response.status_code == 400


def test_grade_of_nothing_is_never_praise(sandbox: SandboxServer) -> None:
    report = sandbox.grade(API)
    assert report["passed"] and report["requests"] == 0
    assert {r["verdict"] for r in report["rules"]} <= {"not exercised"}
    assert {r["id"] for r in report["rules"]} == {r.id for r in RULES}


def test_grade_reports_id_verdict_message_evidence_and_provenance(sandbox: SandboxServer) -> None:
    token = sandbox.token(API, scopes=["servers:read"])
    with client(sandbox, token) as http:
        first = http.get("/servers", params={"per_page": 101}).headers["X-Request-ID"]
        http.get("/servers", params={"per_page": 100})
    report = sandbox.grade(API, token)
    rules = {r["id"]: r for r in report["rules"]}
    assert report["failed"] == ["page-size"] and report["token"].startswith("tok_")
    assert rules["page-size"]["evidence"] == [first]
    assert rules["page-size"]["basis"] == "x-sandbox.pagination.max = 100 (documented)"
    assert rules["page-size"]["inferred"] is None and rules["poll-pace"]["inferred"]
    assert rules["valid-requests"]["verdict"] == "pass"  # the oversized page is page-size's
    assert sandbox.grade(API, token, since="2099-01-01T00:00:00Z")["requests"] == 0


def test_assert_good_client_lists_broken_rules_with_their_requests(sandbox: SandboxServer) -> None:
    token = sandbox.token(API, scopes=["servers:read"])
    with client(sandbox, token) as http:
        http.get("/servers/srv_000000000000")
        http.get("/servers/srv_000000000000")
    with pytest.raises(ClientGradeError) as err:
        sandbox.assert_good_client(API, token)
    text = str(err.value)
    assert text.startswith("the app broke 1 client rule(s) of nurosentrix")
    assert "no-futile-repeat: sent the same request again after a final 4xx" in text
    assert text.count("GET /nurosentrix/api/v1/servers/srv_000000000000 -> 404") == 2
    assert "(Server not found)" in text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({}, "api must be one of"),
        ({"api": "nope"}, "api must be one of"),
        ({"api": API, "since": "yesterday"}, "since must be an RFC 3339 time or epoch seconds"),
    ],
)
def test_grade_refuses_a_bad_query_clearly(
    sandbox: SandboxServer, query: dict[str, str], message: str
) -> None:
    r = httpx.get(f"{sandbox.url}/_mock/grade", params=query)
    assert r.status_code == 400 and message in r.json()["error"]["message"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    since=st.one_of(
        st.text(max_size=30), st.sampled_from(["nan", "inf", "-1e300", "1e20", "9999-12-31T23:59:59Z"])
    )
)
def test_grade_never_fails_on_what_it_is_given(sandbox: SandboxServer, since: str) -> None:
    r = httpx.get(f"{sandbox.url}/_mock/grade", params={"api": API, "since": since, "token": since})
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        assert r.json()["error"]["message"] == "since must be an RFC 3339 time or epoch seconds"


def test_the_cli_exits_1_on_a_failed_rule_0_when_none_2_when_it_cannot_ask(
    sandbox: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    token = sandbox.token(API, scopes=["servers:read"])
    with client(sandbox, token) as http:
        http.get("/servers")
    assert main(["grade", "--api", API, "--token", token, "--url", sandbox.url]) == 0
    assert "PASS  least-privilege" in capsys.readouterr().out
    with client(sandbox, token) as http:
        http.get("/stats")
    assert main(["grade", "--api", API, "--token", token, "--url", sandbox.url]) == 1
    out = capsys.readouterr().out
    assert "FAIL  documented-operations" in out and "GET /nurosentrix/api/v1/stats -> 404" in out
    assert main(["grade", "--api", "nope", "--url", sandbox.url]) == 2
    assert "api must be one of" in capsys.readouterr().err


def test_the_log_keeps_the_wait_told_a_body_digest_and_the_page(sandbox: SandboxServer) -> None:
    sandbox.fault(api=API, operation="listServers", status=429, retry_after=7, count=1)
    token = sandbox.token(API, scopes=["servers:read", "servers:write"])
    with client(sandbox, token) as http:
        http.get("/servers", params={"page": 2, "per_page": 5, "status": "active"})
        http.post("/servers", json=SERVER)
        http.post("/servers", json=SERVER)
    rows = sandbox.control("GET", "requests")["requests"]
    assert (rows[0]["status"], rows[0]["wait"]) == (429, 7)
    assert rows[0]["page"]["at"] == 2 and rows[0]["page"]["size"] == 5 and rows[0]["page"]["query"]
    assert rows[1]["body"] == rows[2]["body"] and len(rows[1]["body"]) == 8 and rows[1]["page"] is None
    assert all(r.get("wait") is None for r in rows[1:])


def test_grading_ten_thousand_logged_requests() -> None:
    """Its speed is `python -m bench.grading`'s to measure (CPU, best of 5), not a timed test's."""
    verdicts = grade(load_all([API])[0], logged_rows(10_000), TOKENS)
    assert {v["verdict"] for v in verdicts} >= {"pass", "fail"}
    assert {v["id"] for v in verdicts if v["verdict"] == "fail"} & {"retry-after", "scopes"}
