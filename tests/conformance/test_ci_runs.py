"""The suite in a real CI job: it leaves every account as it found it, a killed run still writes
its reports (marked incomplete, exit 3), tokens come from the environment and never reach an
output file, and wrong options are named as usage errors."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from contract import body_for, load
from mock_server.app import SandboxApp
from tests.conformance.backends import Defective, make_sandbox, serve
from tests.conformance.conftest import APIS, ROOT, Outcome, run_suites


def _seed(api: str) -> tuple[str, Any]:
    """A record to create before the run, in the accounts the run's tokens belong to (the first
    top-level collection, from its documented example): the run must delete only what it made."""
    c = load(api)
    res = next(r for r in c.resources.values() if r.create_op is not None and not r.create_op.path_params)
    assert res.create_op is not None
    return c.base_path + res.create_op.path, body_for(res.create_op)


def _mint(url: str, api: str, **body: object) -> str:
    r = httpx.post(f"{url}/_mock/tokens", json={"api": api, "name": "test", **body})
    r.raise_for_status()
    return str(r.json()["token"])


def _owners(url: str) -> dict[tuple[str, str, str], int]:
    """(api, account, mode) → records, from the control API."""
    data = httpx.get(f"{url}/_mock/resources").json()["apis"]
    return {(api, o["account"], o["mode"]): o["records"] for api, d in data.items() for o in d["owners"]}


def _collections(url: str, api: str, account: str) -> dict[str, int]:
    out = {}
    for coll in httpx.get(f"{url}/_mock/resources?api={api}").json()["apis"][api]["collections"]:
        r = httpx.get(f"{url}/_mock/resources/{api}/{coll}?account={account}")
        out[coll] = r.json()["total"]
    return out


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    with serve(Defective(make_sandbox(rate_window=1.0), None)) as url:
        yield url


def test_a_run_leaves_every_account_as_it_found_it(sandbox_url: str, tmp_path: Path) -> None:
    """Four runs at once (every family and Schemathesis phase), with tokens of accounts that
    already hold a record: afterwards each account's collections hold exactly what they held
    before, and each summary says so (created N, deleted N, left 0)."""
    url = sandbox_url
    runs: dict[str, tuple[str, ...]] = {}
    before: dict[str, dict[str, dict[str, int]]] = {}
    for api in APIS:
        owner, other = f"ci-{api}", f"ci-{api}-other"
        token = _mint(url, api, account=owner)
        other_token = _mint(url, api, account=other)
        path, body = _seed(api)
        for t in (token, other_token):
            r = httpx.post(url + path, json=body, headers={"Authorization": f"Bearer {t}"})
            assert r.status_code == 201, r.text
        before[api] = {a: _collections(url, api, a) for a in (owner, other)}
        runs[api] = ("--api", api, "--sandbox", url, "--token", token, "--other-token", other_token,
                     "--max-examples", "3")  # fmt: skip
    outcomes = run_suites(tmp_path, runs)
    for api, out in outcomes.items():
        m = re.search(r"records: created (\d+), deleted (\d+), left (\d+)", out.stdout)
        assert m is not None, out
        created, deleted, left = map(int, m.groups())
        assert created > 5 and deleted == created and left == 0, (api, m.group(0))
        for account, counts in before[api].items():
            assert _collections(url, api, account) == counts, (api, account)
    fresh = {k: n for k, n in _owners(url).items() if k[1].startswith("conformance-") and n}
    assert fresh == {}  # the accounts the suite minted itself (the limited token's) are empty too


def test_keep_resources_keeps_them(sandbox_url: str, tmp_path: Path) -> None:
    """The opt-out, and proof that the test above can fail: records stay and the summary says so."""
    token = _mint(sandbox_url, "cloudnexus-io", account="ci-kept")
    stored = f"{sandbox_url}/_mock/resources?api=cloudnexus-io"
    before = httpx.get(stored).json()["apis"]["cloudnexus-io"]["collections"]["instances"]
    out = run_suites(tmp_path, {"io": ("--api", "cloudnexus-io", "--sandbox", sandbox_url, "--token", token,
                                        "--checks", "lifecycle,tenancy", "--phases", "examples",
                                        "--keep-resources")})["io"]  # fmt: skip
    m = re.search(r"records: created (\d+), deleted (\d+), left (\d+) \(--keep-resources\)", out.stdout)
    assert m is not None and int(m.group(3)) > 0, out
    after = httpx.get(stored).json()["apis"]["cloudnexus-io"]["collections"]["instances"]
    assert after - before == int(m.group(3))  # every account


def _env(**tokens: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONFORMANCE_", "SANDBOX_ADMIN"))}
    return {**env, **tokens}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "conformance", "run", "--seed", "7", *args]


def test_sigterm_writes_complete_reports_marked_incomplete(sandbox_url: str, tmp_path: Path) -> None:
    """SIGTERM 10 s into a full run: the run stops, cleans up, writes a valid JUnit file marked
    incomplete (and the HTML and Markdown reports), and exits 3."""
    junit, html = tmp_path / "junit.xml", tmp_path / "report.html"
    proc = subprocess.Popen(
        _cli("--api", "nurosentrix", "--sandbox", sandbox_url, "--junit-xml", str(junit),
             "--report", str(html), "--progress", "plain"),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )  # fmt: skip
    time.sleep(10)
    assert proc.poll() is None, "the run ended before the signal: make it longer"
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    stopped_in = time.monotonic() - sent
    assert proc.returncode == 3, (stdout[-3000:], stderr[-3000:])
    root = ET.parse(junit).getroot()  # complete and well-formed
    assert root.tag == "testsuites" and root.get("errors") == "1"
    run = next(s for s in root.iter("testsuite") if s.get("name") == "nurosentrix.run")
    props = {p.get("name"): p.get("value") for p in run.iter("property")}
    assert props["incomplete"] == "true" and "SIGTERM" in (props.get("stopped") or "")
    assert re.fullmatch(r"created (\d+), deleted \1, left 0", props["cleanup"] or ""), props["cleanup"]
    assert run.find("testcase/error") is not None
    assert int(root.get("tests", "0")) > 20  # what ran before the signal is reported
    assert "INCOMPLETE" in html.read_text() and "RESULT: INCOMPLETE" in stdout
    assert stopped_in < 60, stopped_in
    # not a terminal: plain progress lines, with the part running and the requests sent
    assert re.search(r"\(step \d+/\d+\) \| \d+ requests \| \d+ violations", stderr), stderr[-2000:]
    assert "STOPPING: stopped by SIGTERM" in stderr


def test_max_time_stops_the_run(sandbox_url: str, tmp_path: Path) -> None:
    md = tmp_path / "report.md"
    proc = subprocess.run(
        _cli("--api", "cloudnexus-io", "--sandbox", sandbox_url, "--max-time", "2s",
             "--report", str(md), "-q"),
        cwd=ROOT, capture_output=True, text=True, timeout=120, env=_env(),
    )  # fmt: skip
    assert proc.returncode == 3, proc.stdout[-2000:]
    assert "--max-time 2s reached" in md.read_text() and "**INCOMPLETE**" in md.read_text()


def test_tokens_from_the_environment_never_reach_an_output(tmp_path: Path) -> None:
    """Tokens given as environment variables (and the sandbox's admin token) drive the run, and
    appear in no output file, not even in the curl reproductions of violations."""
    admin = "adm_" + "s3cr3t" * 6
    sandbox = make_sandbox(rate_window=1.0)
    with serve(Defective(sandbox, "cross-account-leak")) as url:
        app = SandboxApp(sandbox, admin_token=admin)
        with serve(app) as guarded:
            headers = {"Authorization": f"Bearer {admin}"}

            def mint(**body: Any) -> str:
                r = httpx.post(f"{guarded}/_mock/tokens", json={"api": "cloudnexus", **body}, headers=headers)
                r.raise_for_status()
                return str(r.json()["token"])

            token, other = mint(account="env-a"), mint(account="env-a-other")  # the leak: X-other → X
            limited = mint(account="env-a", scopes=["servers:read", "databases:read"])
            files = {n: tmp_path / n for n in ("junit.xml", "report.html", "report.md", "baseline.json")}
            env = _env(CONFORMANCE_TOKEN=token, CONFORMANCE_OTHER_TOKEN=other,
                       CONFORMANCE_LIMITED_TOKEN=limited, SANDBOX_ADMIN_TOKEN=admin)  # fmt: skip
            common = ("--api", "cloudnexus", "--checks", "tenancy,scopes,auth", "--phases", "examples",
                      "--max-examples", "2")  # fmt: skip
            leak = subprocess.run(
                _cli(*common, "--base-url", f"{url}/cloudnexus/v1", "--junit-xml", str(files["junit.xml"]),
                     "--report", str(files["report.html"]), "--write-baseline", str(files["baseline.json"])),
                cwd=ROOT, capture_output=True, text=True, timeout=180, env=env,
            )  # fmt: skip
            assert leak.returncode == 1, leak.stdout[-3000:]  # the env tokens drove the checks
            assert "Bearer $CONFORMANCE_OTHER_TOKEN" in files["report.html"].read_text()  # runnable curl
            assert "check that it belongs to a different account" in leak.stdout
            minted = subprocess.run(
                _cli(*common, "--sandbox", guarded, "--report", str(files["report.md"])),
                cwd=ROOT, capture_output=True, text=True, timeout=180, env=_env(SANDBOX_ADMIN_TOKEN=admin),
            )  # fmt: skip
            assert minted.returncode == 0, minted.stdout[-3000:] + minted.stderr[-2000:]
    outputs = {n: p.read_text() for n, p in files.items()}
    outputs |= {"stdout": leak.stdout + minted.stdout, "stderr": leak.stderr + minted.stderr}
    for name, text in outputs.items():
        for secret in (token, other, limited, admin):
            assert secret not in text, (name, secret[:8])


def test_usage_errors_are_named(sandbox_url: str, suite: Callable[..., Outcome]) -> None:
    token = _mint(sandbox_url, "nurosentrix", account="usage")
    origin = suite("--api", "nurosentrix", "--base-url", sandbox_url, "--token", token)
    assert origin.code == 2, origin
    assert "answered 404" in origin.stderr and "'/api/v1'" in origin.stderr, origin  # the documented path
    assert f"--base-url {sandbox_url}/nurosentrix/api/v1" in origin.stderr  # a sandbox there: its path
    wrong = suite("--api", "nurosentrix", "--sandbox", f"{sandbox_url}/nurosentrix/api/v1")
    assert wrong.code == 2 and "no sandbox control API there" in wrong.stderr, wrong
    with serve(SandboxApp(make_sandbox(), admin_token="adm_needed_" + "x" * 20)) as guarded:
        refused = suite("--api", "nurosentrix", "--sandbox", guarded)
    assert refused.code == 2 and "needs the admin token" in refused.stderr, refused
    assert "SANDBOX_ADMIN_TOKEN" in refused.stderr
