"""Concurrency: 32 clients at once creating and deleting against a real server (ids unique,
counts exact, per account, and the same after a restart); rate limits exact under 32 concurrent
clients (exactly N accepted in a window, per token and per address); and the store, the
resources and the rate limiter driven from 32 threads in process."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from mock_server.clock import Clock, FrozenClock
from mock_server.ids import IdGenerator
from mock_server.ratelimit import RateLimiter
from mock_server.resources import Resources
from mock_server.store import MemoryStore, Store
from mock_server.store_tinydb import TinyDBStore
from tests.conftest import all_specs
from tests.robustness.support import ServerProcess, count, seen

CLIENTS = 32
SERVER = {"name": "c", "provider": "p", "region": "r", "size": "s"}
N = "/nurosentrix/api/v1"


def _mint(base: str, api: str, **kw: str) -> str:
    r = httpx.post(f"{base}/_mock/tokens", json={"api": api, **kw})
    assert r.status_code == 201
    return str(r.json()["token"])


def _all_ids(base: str, token: str) -> list[str]:
    ids: list[str] = []
    with httpx.Client(base_url=base + N, headers={"Authorization": f"Bearer {token}"}) as c:
        page = 1
        while True:
            body = c.get("/servers", params={"page": page, "per_page": 100}).json()
            ids += [s["id"] for s in body["data"]]
            if page * 100 >= body["meta"]["total"]:
                assert len(ids) == body["meta"]["total"]
                return ids
            page += 1


@pytest.mark.slow
def test_32_clients_creating_and_deleting_ids_unique_counts_exact(tmp_path: Path) -> None:
    data = tmp_path / "state.json"
    proc = ServerProcess(tmp_path, "--data", str(data), "--no-rate-limit", "--async-delay", "0")
    proc.start()
    try:
        tokens = {acct: _mint(proc.base, "nurosentrix", account=acct) for acct in ("left", "right")}
        creates, deletes = 4, 2
        start = threading.Barrier(CLIENTS)

        def client(i: int) -> tuple[str, list[str], list[str]]:
            acct = "left" if i % 2 else "right"
            made, gone = [], []
            with httpx.Client(
                base_url=proc.base + N, headers={"Authorization": f"Bearer {tokens[acct]}"}, timeout=60
            ) as c:
                start.wait()
                for k in range(creates):
                    r = c.post("/servers", json={**SERVER, "name": f"c{i}-{k}"})
                    seen(r.status_code, "live")
                    assert r.status_code == 201, r.text
                    made.append(r.json()["data"]["id"])
                for rid in made[:deletes]:
                    r = c.delete(f"/servers/{rid}")
                    seen(r.status_code, "live")
                    assert r.status_code == 204, r.text
                    gone.append(rid)
            return acct, made, gone

        with ThreadPoolExecutor(CLIENTS) as pool:
            results = list(pool.map(client, range(CLIENTS)))
        made = [rid for _, m, _ in results for rid in m]
        assert len(made) == len(set(made)) == CLIENTS * creates  # ids unique
        for restart in (False, True):
            if restart:
                proc.stop()
                proc.start()
            for acct, token in tokens.items():
                expected = {rid for a, m, g in results if a == acct for rid in m if rid not in g}
                listed = _all_ids(proc.base, token)
                assert len(listed) == len(set(listed)) == CLIENTS // 2 * (creates - deletes)  # exact
                assert set(listed) == expected
        count("concurrent_clients", CLIENTS)
        count("concurrent_writes", CLIENTS * (creates + deletes))
    finally:
        proc.stop()


@pytest.mark.slow
def test_rate_limits_are_exact_under_32_concurrent_clients(tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path, "--memory", "--async-delay", "0")
    proc.start()
    try:
        writer, reader = _mint(proc.base, "nurosentrix"), _mint(proc.base, "nurosentrix")
        start = threading.Barrier(CLIENTS)

        def burst(token: str | None, method: str, path: str, body: Any, n: int) -> list[httpx.Response]:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            out = []
            with httpx.Client(base_url=proc.base, headers=headers, timeout=60) as c:
                start.wait()
                for _ in range(n):
                    r = c.request(method, path, json=body)
                    seen(r.status_code, "live")
                    out.append(r)
            return out

        def run(*args: Any) -> list[httpx.Response]:
            with ThreadPoolExecutor(CLIENTS) as pool:
                return [r for rs in pool.map(lambda _: burst(*args), range(CLIENTS)) for r in rs]

        # 96 creates with one token: exactly the 20 the write bucket allows in its 60 s window
        created = run(writer, "POST", f"{N}/servers", SERVER, 3)
        statuses = Counter(r.status_code for r in created)
        assert statuses == {201: 20, 429: 76}, statuses
        for r in created:
            if r.status_code == 429:
                assert 1 <= int(r.headers["Retry-After"]) <= 60
                assert r.json()["error"]["code"] == "RATE_LIMITED"
        # 128 reads with another token: exactly 100
        statuses = Counter(r.status_code for r in run(reader, "GET", f"{N}/servers", None, 4))
        assert statuses == {200: 100, 429: 28}, statuses
        # a public write, limited per client address: exactly 20 get past the limiter
        body = {"token": "njt_" + "x" * 32, "name": "n", "cpu": 1, "memory_mb": 1}
        statuses = Counter(r.status_code for r in run(None, "POST", "/nexos/api/nodes/register", body, 1))
        assert statuses == {401: 20, 429: 12}, statuses
        # the tokens' real state agrees: 20 servers, not one more
        assert len(_all_ids(proc.base, writer)) == 20
        count("rate_limited_requests_checked", 96 + 128 + 32)
    finally:
        proc.stop()


@pytest.mark.parametrize("kind", ["memory", "tinydb"])
def test_resources_under_32_threads(tmp_path: Path, kind: str) -> None:
    spec = next(s for s in all_specs() if s.name == "nurosentrix")
    store: Store = MemoryStore() if kind == "memory" else TinyDBStore(tmp_path / "s.json")
    res = Resources(spec, store, IdGenerator(), FrozenClock(), 0)
    owners = [{"_account": f"a{i % 4}", "_mode": "test"} for i in range(CLIENTS)]
    per_thread, deleted = 5, 2
    start = threading.Barrier(CLIENTS)

    def work(i: int) -> list[str]:
        start.wait()
        made = [
            res.create("servers", owners[i], {**SERVER, "name": f"t{i}-{k}"})["id"] for k in range(per_thread)
        ]
        for rid in made[:deleted]:
            res.delete("servers", owners[i], rid)
        return made

    with ThreadPoolExecutor(CLIENTS) as pool:
        made = [rid for m in pool.map(work, range(CLIENTS)) for rid in m]
    assert len(made) == len(set(made)) == CLIENTS * per_thread
    expected = CLIENTS // 4 * (per_thread - deleted)
    for acct in range(4):
        assert len(res.list("servers", {"_account": f"a{acct}", "_mode": "test"})) == expected
    if kind == "tinydb":
        reopened = TinyDBStore(tmp_path / "s.json")
        assert len(reopened.find(res.table("servers"))) == CLIENTS * (per_thread - deleted)
    count("concurrent_writes", CLIENTS * (per_thread + deleted))


class _RecordingClock(Clock):
    """The real clock; each thread remembers the time its last call returned."""

    def __init__(self) -> None:
        super().__init__()
        self.local = threading.local()

    def now(self) -> float:
        t = super().now()
        self.local.t = t
        return t


def _max_in_any_window(times: list[float], window: float) -> int:
    times, worst, j = sorted(times), 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        worst = max(worst, i - j + 1)
    return worst


def test_rate_limiter_admits_at_most_n_in_any_window_across_32_threads() -> None:
    clock = _RecordingClock()
    limiter = RateLimiter(clock)
    limit, window = 3, 0.01
    bucket = limiter.bucket("all", limit, window)
    admitted: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def hammer(_: int) -> int:
        start.wait()
        n, hits, until = 0, 0, time.monotonic() + 0.4
        while time.monotonic() < until:
            d = limiter.hit("k", [bucket])
            hits += 1
            assert d is not None
            if d.allowed:
                with lock:
                    admitted.append(clock.local.t)
                n += 1
        count("rate_limit_decisions_checked", hits)
        return n

    with ThreadPoolExecutor(CLIENTS) as pool:
        total = sum(pool.map(hammer, range(CLIENTS)))
    assert total == len(admitted) > 10 * limit  # many windows went by
    assert _max_in_any_window(admitted, window) <= limit, _max_in_any_window(admitted, window)


def test_a_thread_that_read_the_clock_first_cannot_sneak_in_late() -> None:
    """The race, forced: thread A reads the time, B then reads a later time, evicts old entries
    and is admitted; were A to decide on its earlier time against B's log, A would make 3 in a
    window of 2. Reading the clock under the limiter's lock rules that out."""
    b_done = threading.Event()

    class Interleaving(Clock):
        t = 0.55

        def now(self) -> float:
            name = threading.current_thread().name
            if name == "A":
                b_done.wait(0.5)  # give B the chance to overtake (it cannot while A holds the lock)
                return 1.52
            if name == "B":
                return 1.6
            return self.t

    clock = Interleaving()
    limiter = RateLimiter(clock)
    bucket = limiter.bucket("all", 2, 1.0)
    admitted = []
    for t in (0.55, 0.56):
        clock.t = t
        assert limiter.hit("k", [bucket]).allowed  # type: ignore[union-attr]
        admitted.append(t)
    results: dict[str, bool] = {}

    def hit(name: str, at: float) -> None:
        d = limiter.hit("k", [bucket])
        assert d is not None
        results[name] = d.allowed
        if d.allowed:
            admitted.append(at)
        if name == "B":
            b_done.set()

    a = threading.Thread(target=hit, args=("A", 1.52), name="A")
    b = threading.Thread(target=hit, args=("B", 1.6), name="B")
    a.start()
    threading.Event().wait(0.05)
    b.start()
    a.join(5)
    b.join(5)
    assert _max_in_any_window(admitted, 1.0) <= 2, (results, admitted)
