"""Headless Locust runs of each API's workload against the sandbox (short, bounded), with the
HTML report and CSV; pacing under the limits; distributed mode with a master and two workers."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import pytest

from load import LOCUSTFILES
from load.roles import ApiContract
from tests.load.conftest import HOST, RATE_WINDOW, ROOT, Sandbox, free_port, need, run, spawn, stop

pytestmark = pytest.mark.slow

LOAD_RUN = [sys.executable, "-m", "load", "run"]
APIS = list(LOCUSTFILES)


def stats(prefix: Path) -> dict[tuple[str, str], dict[str, str]]:
    """Locust's <prefix>_stats.csv by (method, request name); ("", "Aggregated") is the total."""
    with open(f"{prefix}_stats.csv", newline="") as f:
        return {(row["Type"], row["Name"]): row for row in csv.DictReader(f)}


def total(rows: dict[tuple[str, str], dict[str, str]]) -> tuple[int, int]:
    agg = rows[("", "Aggregated")]
    return int(agg["Request Count"]), int(agg["Failure Count"])


@pytest.fixture(scope="module")
def workload_runs(
    sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[int, str, Path]]:
    """One short run of every API's workload, concurrently (each user mints its own token)."""
    out = tmp_path_factory.mktemp("locust")
    procs = {}
    for api in sandbox.apis:
        args = [*LOAD_RUN, "--api", api, "--base-url", sandbox.url, "--users", "3", "--spawn-rate", "3"]
        args += ["--run-time", "5s", "--html", str(out / f"{api}.html"), "--csv", str(out / api)]
        args += ["--window", str(RATE_WINDOW), "--", "--stop-timeout", "2"]
        procs[api] = spawn(args)
    results = {}
    for api, proc in procs.items():
        try:
            stdout, stderr = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate(timeout=10)
        results[api] = (proc.returncode, stdout + stderr, out / api)
    return results


@pytest.mark.parametrize("api", APIS)
def test_a_headless_run_of_each_api_completes_with_a_report(
    sandbox: Sandbox, workload_runs: dict[str, tuple[int, str, Path]], api: str
) -> None:
    need(sandbox, api)
    code, output, prefix = workload_runs[api]
    assert code == 0, output
    rows = stats(prefix)
    requests, failures = total(rows)
    assert requests > 20 and failures == 0, output
    # the mix: lists, reads, creates, deletes and pagination walks, by templated path
    names = {name for _, name in rows}
    if ApiContract.load(api).pagination.style != "none":  # Nexos lists are not paginated
        assert any(n.endswith("[walk]") for n in names), names
    assert any("{id}" in n for n in names), names
    methods = {method for method, _ in rows}
    assert {"GET", "POST", "DELETE"} <= methods, methods
    html = (prefix.parent / f"{api}.html").read_text()
    assert "<html" in html.lower() and "Aggregated" in html and len(html) > 10_000


def test_exceeding_the_limits_reports_well_formed_429s_apart(sandbox: Sandbox, tmp_path: Path) -> None:
    """One token for every user, no pacing: most requests are refused, each refusal a 429 in
    the envelope with Retry-After (a success, named `<path> (429)`), never a failure."""
    token = sandbox.token("cloudnexus")
    args = [*LOAD_RUN, "--api", "cloudnexus", "--base-url", sandbox.url, "--token", token]
    args += ["--users", "3", "--spawn-rate", "3", "--run-time", "4s", "--csv", str(tmp_path / "x")]
    r = run(args, 60)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = stats(tmp_path / "x")
    requests, failures = total(rows)
    limited = sum(int(row["Request Count"]) for (_, name), row in rows.items() if name.endswith("(429)"))
    assert failures == 0 and limited > 0 and requests > limited
    assert token not in r.stdout + r.stderr


def test_respecting_the_limits_paces_a_shared_token_without_any_429(sandbox: Sandbox, tmp_path: Path) -> None:
    token = sandbox.token("nurosentrix")
    run_time = 7
    args = [*LOAD_RUN, "--api", "nurosentrix", "--base-url", sandbox.url, "--token", token, "--users", "12"]
    args += [
        "--spawn-rate",
        "12",
        "--run-time",
        f"{run_time}s",
        "--respect-limits",
        "--window",
        str(RATE_WINDOW),
    ]
    args += ["--csv", str(tmp_path / "p")]
    r = run(args, 60)
    assert r.returncode == 0, r.stdout + r.stderr  # a 429 would be a failure in this mode
    rows = stats(tmp_path / "p")
    requests, failures = total(rows)
    assert failures == 0 and not any(name.endswith("(429)") for _, name in rows)
    # 12 users would send ~40 requests/s; the documented 100 per window holds them back
    windows = run_time / RATE_WINDOW + 1
    assert 100 < requests <= 100 * windows, requests


def test_distributed_mode_master_and_two_workers(sandbox: Sandbox, tmp_path: Path) -> None:
    port = free_port()
    locustfile = str(ROOT / "load" / "nurosentrix.py")
    token = sandbox.token("nurosentrix")
    locust = [sys.executable, "-m", "locust", "-f", locustfile]
    master_args = [*locust, "--master", "--headless", "--master-bind-host", HOST]
    master_args += [
        "--master-bind-port",
        str(port),
        "--expect-workers",
        "2",
        "--expect-workers-max-wait",
        "30",
    ]
    master_args += ["--host", sandbox.url, "--users", "4", "--spawn-rate", "4", "--run-time", "6s"]
    master_args += ["--token", token, "--respect-limits", "--window", str(RATE_WINDOW)]
    master = spawn([*master_args, "--csv", str(tmp_path / "dist"), "--only-summary"])
    workers = [
        spawn([*locust, "--worker", "--master-host", HOST, "--master-port", str(port)]) for _ in range(2)
    ]
    try:
        m_out, m_err = master.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the master did not finish: {stop(master)}")
    finally:
        outputs = [stop(w) for w in workers]
    assert master.returncode == 0, m_out + m_err
    sent = [
        int(m.group(1)) for out in outputs for m in re.finditer(r"load: worker \S+ sent (\d+) requests", out)
    ]
    assert len(sent) == 2 and all(n > 0 for n in sent), outputs
    requests, failures = total(stats(tmp_path / "dist"))
    assert failures == 0
    # The master's figures add up both workers' reports: more than either sent alone, never more
    # than both (equal, unless a worker's very last report came after the master's 0.5 s wait).
    assert max(sent) < requests <= sum(sent), (requests, sent)
