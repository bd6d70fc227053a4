"""`serve --workers 2`: two real processes behind one port serve one state. Each test pins a
keep-alive connection to each worker (`/_mock/health` names the pid that answered) and checks
that what one worker did is exactly what the other sees: data, tokens, clock, rate limits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.live import live_sandbox

pytestmark = pytest.mark.slow

SERVER = {"name": "web", "plan": "pro", "region": "us-east-1"}


def _pinned_clients(base: str, per_worker: int = 1, workers: int = 2) -> list[list[httpx.Client]]:
    """`per_worker` clients for each worker, each holding one keep-alive connection to it."""
    found: dict[int, list[httpx.Client]] = {}
    for _ in range(100 * per_worker * workers):
        c = httpx.Client(base_url=base, limits=httpx.Limits(max_connections=1), timeout=10)
        mine = found.setdefault(c.get("/_mock/health").json()["pid"], [])
        if len(mine) < per_worker:
            mine.append(c)
        else:
            c.close()
        if len(found) == workers and all(len(v) == per_worker for v in found.values()):
            break
    assert len(found) == workers, "the connections did not reach every worker"
    for pid, clients in found.items():  # each connection stays with its worker
        assert all(c.get("/_mock/health").json()["pid"] == pid for c in clients for _ in range(2))
    return list(found.values())


def _concurrently(
    groups: list[list[httpx.Client]], n: int, call: Callable[[httpx.Client, int], int]
) -> list[int]:
    """`n` calls spread over every client of every worker, all clients at once (one thread each)."""
    clients = [c for pair in zip(*groups, strict=True) for c in pair]  # alternate the workers
    with ThreadPoolExecutor(len(clients)) as pool:
        runs = [
            pool.submit(lambda k: [call(clients[k], i) for i in range(k, n, len(clients))], k)
            for k in range(len(clients))
        ]
        return [status for run in runs for status in run.result()]


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[tuple[str, list[httpx.Client], Path]]:
    data = tmp_path / "state.json"
    with live_sandbox("--workers", "2", "--data", str(data), "--api", "cloudnexus", "--api", "nexos") as base:
        groups = _pinned_clients(base, per_worker=4)
        yield base, groups, data
        for c in (c for group in groups for c in group):
            c.close()


def _token(client: httpx.Client, api: str = "cloudnexus") -> dict[str, str]:
    r = client.post("/_mock/tokens", json={"api": api, "account": "acme"})
    assert r.status_code == 201
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_what_one_worker_writes_the_other_reads(workers) -> None:  # type: ignore[no-untyped-def]
    _, ((a, *_), (b, *_)), _ = workers
    auth = _token(a)  # minted by worker a, used on worker b
    created = b.post("/cloudnexus/v1/servers", headers=auth, json=SERVER)
    assert created.status_code == 201
    sid = created.json()["data"]["id"]
    assert a.get(f"/cloudnexus/v1/servers/{sid}", headers=auth).json()["data"] == created.json()["data"]
    assert [s["id"] for s in a.get("/cloudnexus/v1/servers", headers=auth).json()["data"]] == [sid]
    assert a.delete(f"/cloudnexus/v1/servers/{sid}", headers=auth).status_code == 204
    assert b.get(f"/cloudnexus/v1/servers/{sid}", headers=auth).status_code == 404


def test_a_token_revoked_on_one_worker_is_refused_by_the_other(workers) -> None:  # type: ignore[no-untyped-def]
    _, ((a, *_), (b, *_)), _ = workers
    r = a.post("/_mock/tokens", json={"api": "cloudnexus"})
    token, tid = r.json()["token"], r.json()["id"]
    auth = {"Authorization": f"Bearer {token}"}
    assert b.get("/cloudnexus/v1/servers", headers=auth).status_code == 200  # b has it cached now
    assert b.delete(f"/_mock/tokens/{tid}").status_code == 204
    assert a.get("/cloudnexus/v1/servers", headers=auth).status_code == 401
    assert b.get("/cloudnexus/v1/servers", headers=auth).status_code == 401


def test_the_clock_advanced_on_one_worker_moves_the_other(workers) -> None:  # type: ignore[no-untyped-def]
    _, ((a, *_), (b, *_)), _ = workers
    auth = _token(a)
    sid = a.post("/cloudnexus/v1/servers", headers=auth, json=SERVER).json()["data"]["id"]
    assert b.get(f"/cloudnexus/v1/servers/{sid}", headers=auth).json()["data"]["status"] == "provisioning"
    assert a.post("/_mock/clock/advance", json={"seconds": 3600}).status_code == 200
    assert b.get(f"/cloudnexus/v1/servers/{sid}", headers=auth).json()["data"]["status"] == "active"


def test_rate_limits_hold_exactly_across_workers(workers) -> None:  # type: ignore[no-untyped-def]
    _, groups, _ = workers
    auth = _token(groups[0][0])

    def create(client: httpx.Client, i: int) -> int:
        return client.post(
            "/cloudnexus/v1/servers", headers=auth, json={**SERVER, "name": f"s{i}"}
        ).status_code

    statuses = _concurrently(groups, 30, create)  # 30 creates from 8 connections, 4 per worker
    assert statuses.count(201) == 20 and statuses.count(429) == 10  # the documented 20 writes a minute
    r = groups[1][0].get("/cloudnexus/v1/servers", headers=auth, params={"per_page": 100})
    assert r.json()["meta"]["total"] == 20
    # the 20 creates and this list, from both workers, count against the 100 a minute (refusals do not)
    assert r.headers["X-RateLimit-Remaining"] == str(100 - 21)


def test_a_unique_field_stays_unique_under_racing_workers(workers) -> None:  # type: ignore[no-untyped-def]
    _, groups, _ = workers
    auth = _token(groups[0][0], "nexos")
    project = {"name": "my-app", "github_repo": "octocat/my-app"}
    statuses = _concurrently(
        groups, 8, lambda c, _: c.post("/nexos/api/projects", headers=auth, json=project).status_code
    )
    assert sorted(statuses) == [201] + [409] * 7


def test_the_request_log_is_one_log_for_both_workers(workers) -> None:  # type: ignore[no-untyped-def]
    _, ((a, *_), (b, *_)), _ = workers
    auth = _token(a)
    b.post("/cloudnexus/v1/servers", headers=auth, json=SERVER)
    logged = a.get("/_mock/requests", params={"api": "cloudnexus"}).json()["requests"]
    assert [r["operation"] for r in logged] == ["createServer"]  # logged by b, read on a


def test_the_state_outlives_the_workers(tmp_path: Path) -> None:
    data = tmp_path / "state.json"
    with live_sandbox("--workers", "2", "--data", str(data), "--api", "cloudnexus") as base:
        (a,), (b,) = _pinned_clients(base)
        auth = _token(a)
        sids = [
            c.post("/cloudnexus/v1/servers", headers=auth, json=SERVER).json()["data"]["id"] for c in (a, b)
        ]
        a.close()
        b.close()
    with live_sandbox("--data", str(data), "--api", "cloudnexus") as base:  # one process, same file
        listed = httpx.get(f"{base}/cloudnexus/v1/servers", headers=auth).json()["data"]
        assert [s["id"] for s in listed] == sids


def test_workers_need_the_file_store() -> None:
    import subprocess
    import sys

    from tests.live import ROOT

    r = subprocess.run(
        [sys.executable, "-m", "mock_server", "serve", "--workers", "2", "--memory"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "--workers" in r.stderr


def test_fault_rules_and_their_counts_are_shared_by_the_workers(workers) -> None:  # type: ignore[no-untyped-def]
    _, groups, _ = workers
    a = groups[0][0]
    auth = _token(a)
    rule = a.post(
        "/_mock/faults", json={"api": "cloudnexus", "operation": "listServers", "status": 500, "count": 6}
    )
    assert rule.status_code == 201

    def list_servers(client: httpx.Client, i: int) -> int:
        return client.get("/cloudnexus/v1/servers", headers=auth).status_code

    statuses = _concurrently(groups, 24, list_servers)  # from 8 connections, 4 per worker
    assert statuses.count(500) == 6 and statuses.count(200) == 18  # the count holds across processes
    assert [(r["fired"], r["seen"], r["remaining"]) for r in a.get("/_mock/faults").json()["faults"]] == [
        (6, 6, 0)
    ]
