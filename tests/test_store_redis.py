"""`--store redis://`: the store, clock, rate limiter and request log on a real Redis, tested as
objects (two `RedisStore`s on one database are two replicas as far as Redis can tell), and the
API's answer when Redis is gone."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mock_server import algorithms as alg
from mock_server.bodies import BODY_BYTES, MASK, clip, shown
from mock_server.clock import FrozenClock
from mock_server.errors import StoreUnavailable
from mock_server.ratelimit import RateLimiter
from mock_server.shared_redis import LOG, RedisClock, RedisRateLimiter, RedisRequestLog, frame
from mock_server.store_redis import RedisStore
from tests.conftest import Harness
from tests.redis_server import RedisServer, redis_server
from tests.replicas import check_two_stores_are_one


@pytest.fixture(scope="module")
def shared_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    yield from redis_server(tmp_path_factory.mktemp("redis"))


@pytest.fixture
def url(shared_redis: RedisServer) -> str:
    """A Redis database emptied for the test."""
    shared_redis.client().flushdb()
    return shared_redis.url


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of the test's own, to stop and restart."""
    yield from redis_server(tmp_path)


def test_a_write_in_one_replica_is_read_at_once_by_the_other(url: str) -> None:
    check_two_stores_are_one(RedisStore(url), RedisStore(url))


def test_a_late_replica_loads_the_tables_in_their_order(url: str) -> None:
    a = RedisStore(url)
    for i in (3, 1, 2):
        a.insert("t", {"id": f"r{i}"})
    a.replace("t", {"id": "r3", "v": 1})  # keeps its place
    assert [r["id"] for r in RedisStore(url).find("t")] == ["r3", "r1", "r2"]


def test_a_transaction_holds_off_the_other_replica(url: str) -> None:
    a, b = RedisStore(url), RedisStore(url)
    done = threading.Event()

    def write() -> None:
        b.insert("t", {"id": "later"})
        done.set()

    with a.transaction():
        assert a.get("t", "later") is None
        thread = threading.Thread(target=write)
        thread.start()
        assert not done.wait(0.3)  # b waits for a's lease
        a.insert("t", {"id": "first"})
    thread.join(5)
    assert done.is_set()
    assert [r["id"] for r in a.find("t")] == ["first", "later"]


def test_a_check_then_write_holds_across_replicas(url: str) -> None:
    """A unique name checked against the cache, under the lease: 40 racing creates, one wins."""
    stores = [RedisStore(url) for _ in range(4)]
    won: list[str] = []

    def create(store: RedisStore, n: int) -> None:
        with store.transaction():
            if not store.find("t", name="same"):
                store.insert("t", {"id": f"r{n}", "name": "same"})
                won.append(f"r{n}")

    threads = [threading.Thread(target=create, args=(stores[n % 4], n)) for n in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(won) == 1 and [r["id"] for r in stores[0].find("t")] == won


def test_a_replica_whose_place_was_trimmed_from_the_journal_reloads(url: str) -> None:
    a, b = RedisStore(url), RedisStore(url)
    a.JOURNAL = 3
    b.get("t", "x")
    for i in range(10):
        a.insert("t", {"id": f"r{i}"})
    a.delete("t", "r0")
    assert a.redis.xlen(a.key("journal")) == 3
    assert [r["id"] for r in b.find("t")] == [f"r{i}" for i in range(1, 10)]
    a.insert("t", {"id": "r10"})  # and b follows the journal again from there
    assert b.get("t", "r10") == {"id": "r10"}


def test_what_redis_acknowledged_survives_its_restart(own_redis: RedisServer) -> None:
    a = RedisStore(own_redis.url)
    a.insert("t", {"id": "r1"})
    a.update("t", "r1", {"v": 2})
    own_redis.restart()  # kill -9: only the AOF (appendfsync always) keeps what was acknowledged
    assert RedisStore(own_redis.url).find("t") == [{"id": "r1", "v": 2}]
    assert a.get("t", "r1") == {"id": "r1", "v": 2}
    a.insert("t", {"id": "r2"})  # the old replica writes on after the restart


def test_a_redis_that_lost_everything_is_noticed(own_redis: RedisServer) -> None:
    a = RedisStore(own_redis.url)
    a.insert("t", {"id": "r1"})
    own_redis.stop(kill=True)
    (own_redis.folder / "appendonlydir").rename(own_redis.folder / "gone")  # a Redis without persistence
    own_redis.start()
    assert a.find("t") == []  # a new epoch: the cache is reloaded, not kept
    a.insert("t", {"id": "r2"})
    assert [r["id"] for r in RedisStore(own_redis.url).find("t")] == ["r2"]


def test_redis_down_refuses_reads_and_writes_then_recovers(own_redis: RedisServer) -> None:
    a = RedisStore(own_redis.url)
    a.insert("t", {"id": "r1"})
    own_redis.stop(kill=True)
    with pytest.raises(StoreUnavailable) as err:
        a.get("t", "r1")
    assert err.value.status == 503 and err.value.headers == {"Retry-After": "1"}
    with pytest.raises(StoreUnavailable):
        a.insert("t", {"id": "r2"})
    own_redis.start()
    assert [r["id"] for r in a.find("t")] == ["r1"]  # nothing of the refused write
    a.insert("t", {"id": "r2"})
    assert [r["id"] for r in RedisStore(own_redis.url).find("t")] == ["r1", "r2"]


def test_a_commit_after_the_lease_expired_is_refused_and_undone(url: str) -> None:
    a, b = RedisStore(url), RedisStore(url)
    a.LEASE_MS = 50
    with pytest.raises(StoreUnavailable), a.transaction():
        a.insert("t", {"id": "mine"})
        threading.Event().wait(0.1)  # the lease expires: b may write meanwhile
        b.insert("t", {"id": "theirs"})
    assert [r["id"] for r in a.find("t")] == ["theirs"]


async def _request(store: RedisStore, fn: Callable[[], object]) -> None:
    """A writing request as the engine makes it: open, the handler (`write`), settle."""
    await store.open(True)
    try:
        await store.write(fn)
    finally:
        await store.settle()


def test_inserts_from_two_replicas_commit_without_the_lease_in_one_order(url: str) -> None:
    """Handlers that only insert overlap across replicas (no lease); every replica, and one
    loading late, lists their records in the journal's order; a write under the lease after
    them keeps that order."""
    a, b = RedisStore(url), RedisStore(url)

    async def run() -> None:
        await asyncio.gather(
            *(_request(s, lambda s=s, i=i: s.insert("t", {"id": f"r{i}"})) for i, s in enumerate([a, b] * 10))
        )

    asyncio.run(run())
    assert (a.blind_commits, b.blind_commits, a.blind_retries + b.blind_retries) == (10, 10, 0)
    b.insert("t", {"id": "last"})  # a transaction outside a request: under the lease
    journal = [orjson.loads(f[b"ops"])[0][3]["id"] for _, f in a.redis.xrange(a.key("journal"))]
    assert sorted(journal[:-1]) == sorted(f"r{i}" for i in range(20)) and journal[-1] == "last"
    for store in (a, b, RedisStore(url)):
        assert [r["id"] for r in store.find("t")] == journal


def test_a_write_that_reads_or_meets_the_lease_runs_again_under_it(url: str) -> None:
    """A handler that reads the store (a unique name's check) runs again under the lease, as
    does an insert refused because another replica holds the lease: both commit once."""
    a = RedisStore(url)
    a.insert("t", {"id": "taken", "name": "same"})

    def unique(rid: str) -> None:
        if not a.find("t", name="same"):
            a.insert("t", {"id": rid, "name": "same"})

    asyncio.run(_request(a, lambda: unique("r1")))
    assert (a.blind_commits, a.blind_retries) == (0, 1)
    a.redis.set(a.key("lease"), "another replica", px=200)
    asyncio.run(_request(a, lambda: a.insert("t", {"id": "r2"})))
    assert (a.blind_commits, a.blind_retries) == (0, 2)
    assert [r["id"] for r in RedisStore(url).find("t")] == ["taken", "r2"]


def test_the_clock_offset_is_shared(url: str) -> None:
    a, b = RedisStore(url), RedisStore(url)
    ca, cb = RedisClock(a), RedisClock(b)
    ca.advance(3600)
    assert cb.now() < ca.now() - 3000  # b has not caught up yet
    b.get("t", "x")  # every catch-up (once a request) reads the offset
    assert abs(cb.now() - ca.now()) < 5


ALGORITHMS = st.tuples(st.sampled_from([alg.SLIDING, alg.FIXED, alg.BUCKET]), st.sampled_from([0, 1, 5]))


class _Shifted(FrozenClock):
    """A frozen time as a replica with a clock offset reads it: (time - offset) + offset."""

    def __init__(self, frozen: FrozenClock, offset: float) -> None:
        super().__init__(0)
        self.frozen, self.offset = frozen, offset

    def now(self) -> float:
        return (self.frozen.now() - self.offset) + self.offset


class _FrozenRedisClock(RedisClock):
    """The shared clock of a replica, its machine's time frozen."""

    def __init__(self, store: RedisStore, frozen: FrozenClock, offset: float) -> None:
        super().__init__(store)
        self.frozen, self.offset = frozen, offset

    def wall(self) -> float:
        return self.frozen.now() - self.offset


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["hit", "write", "other"]), st.sampled_from([0.0, 0.0, 0.25, 0.7, 1.0, 2.5])
        ),
        max_size=40,
    ),
    kinds=st.tuples(ALGORITHMS, ALGORITHMS),
    start=st.sampled_from([0.0, 0.5, 1_700_000_000.3]),
    offset=st.sampled_from([None, 3600.0, -0.25]),
)
def test_redis_limits_decide_as_the_memory_limiter(  # type: ignore[no-untyped-def]
    shared_redis: RedisServer, steps, kinds, start, offset
) -> None:
    """Two replicas' limiters, taking turns, decide exactly as one in-memory limiter, headers and
    all, for every algorithm (`algorithms.py`, which the Lua limiter mirrors) and their mixes;
    with the shared clock's offset too (`offset`: read and added in the script, where the times
    are formatted in Lua rather than taken as the caller wrote them)."""
    shared_redis.client().flushdb()
    frozen = FrozenClock(start)
    clock: FrozenClock | _Shifted = frozen
    stores = [RedisStore(shared_redis.url) for _ in range(2)]
    if offset is not None:
        shared_redis.client().set(stores[0].key("clock"), repr(offset))
        clock = _Shifted(frozen, offset)  # what the replicas compute: (wall) + offset
    memory = RateLimiter(clock)
    replicas = [
        RedisRateLimiter(s, clock if offset is None else _FrozenRedisClock(s, frozen, offset)) for s in stores
    ]
    (all_kind, all_burst), (write_kind, write_burst) = kinds
    for n, (what, wait) in enumerate(steps):
        clock.advance(wait)
        key = "tok_b" if what == "other" else "tok_a"
        names = [("all", 3, 2.0, all_kind, all_burst)]
        if what == "write":
            names.append(("write", 2, 1.0, write_kind, write_burst))
        replica = replicas[n % 2]
        want = memory.hit(key, [memory.bucket(*b) for b in names])
        got = replica.hit(key, [replica.bucket(*b) for b in names])
        assert got == want, (n, what)


def test_the_requests_of_one_turn_open_in_one_script_and_decide_in_order(url: str) -> None:
    """Requests opened in one turn of the event loop share one script (one catch-up, then each
    one's decision, in the order they came): the decisions are those of one limiter taking them
    one after another."""
    clock = FrozenClock(1_700_000_000.3)
    limiter, memory = RedisRateLimiter(RedisStore(url), clock), RateLimiter(clock)
    spec = ("all", 5, 60.0, alg.SLIDING, 0)
    callers = ["tok_b" if i % 3 == 0 else "tok_a" for i in range(12)]
    client = limiter.store.redis

    async def turn() -> list[Any]:
        buckets = [limiter.bucket(*spec)]
        await limiter.admit("tok_warm", buckets, False)  # the script loaded
        client.config_resetstat()
        return await asyncio.gather(*(limiter.admit(c, buckets, False) for c in callers))

    got = asyncio.run(turn())
    assert client.info("commandstats")["cmdstat_evalsha"]["calls"] == 1
    assert got == [memory.hit(c, [memory.bucket(*spec)]) for c in callers]
    assert [d.allowed for d in got].count(False) == 3  # tok_a's sixth to eighth


def test_rate_limit_logs_reset_and_forget(url: str) -> None:
    store = RedisStore(url)
    limiter = RedisRateLimiter(store, FrozenClock())
    b = limiter.bucket("all", 1, 60)
    assert limiter.hit("tok_a", [b]).allowed and limiter.hit("tok_b", [b]).allowed  # type: ignore[union-attr]
    limiter.forget("tok_a")
    assert limiter.hit("tok_a", [b]).allowed  # type: ignore[union-attr]
    assert not limiter.hit("tok_b", [b]).allowed  # type: ignore[union-attr]
    limiter.reset()
    assert limiter.hit("tok_b", [b]).allowed  # type: ignore[union-attr]


def test_the_request_log_is_one_capped_log(url: str) -> None:
    a, b = RedisRequestLog(RedisStore(url), 5), RedisRequestLog(RedisStore(url), 5)
    for i in range(300):
        a.append({"n": i})
    assert [r["n"] for r in a] == list(range(295, 300))  # in order, the last 5
    assert a.store.redis.xlen(a.key) < 300  # capped (approximately: MAXLEN ~)
    b.append({"n": "b"})
    assert [r["n"] for r in b][-1] == "b"
    assert [r["n"] for r in a][-1] == "b"  # one log for both replicas
    b.clear()
    assert list(a) == []


def test_the_request_log_keeps_bodies_as_they_came_and_outlives_a_lost_count(url: str) -> None:
    log = RedisRequestLog(RedisStore(url), 5)
    # a first batch, smaller than the log: nothing to trim yet (and no error)
    assert log.store.redis.eval(LOG, 2, *log.keys, 5, 1, frame({"n": "first"})) == 1
    assert [r["n"] for r in log] == ["first"]
    sent = '{"name": "é", "password": "hunter2"}'.encode()
    for i in range(7):
        log.append({"n": i, "bodies": (clip(sent), clip(b"y" * (BODY_BYTES + 10)))})
    rows = list(log)
    assert [r["n"] for r in rows] == [2, 3, 4, 5, 6]
    masked = f'{{"name": "é", "password": "{MASK}"}}'
    assert shown(rows[-1]["bodies"][0]) == {"text": masked, "bytes": 37, "truncated": False}
    cut = {"text": "y" * BODY_BYTES, "bytes": BODY_BYTES + 10, "truncated": True}
    assert shown(rows[-1]["bodies"][1]) == cut
    log.store.redis.delete(log.keys[1])  # the count lost apart from the stream (another snapshot's)
    log.append({"n": 7})
    assert [r["n"] for r in log] == [3, 4, 5, 6, 7]


def test_the_api_answers_503_with_retry_after_while_redis_is_down(own_redis: RedisServer) -> None:
    h = Harness(store=RedisStore(own_redis.url))
    c = h.api("cloudnexus")
    assert c.get("/servers").status_code == 200
    own_redis.stop(kill=True)
    web = {"name": "web", "plan": "pro", "region": "us-east-1"}
    for r in (c.get("/servers"), c.post("/servers", json=web)):
        assert r.status_code == 503 and r.headers["Retry-After"] == "1"
        assert r.json()["error"]["code"] == "STORAGE_UNAVAILABLE"  # CloudNexus' own envelope
    control = h.client()
    r = control.get("/_mock/requests")  # the control API too
    assert r.status_code == 503 and r.headers["Retry-After"] == "1"
    own_redis.start()
    assert c.post("/servers", json=web).status_code == 201
    assert len(c.get("/servers").json()["data"]) == 1
    h.close()


def test_serve_refuses_a_bad_url_or_an_unreachable_redis_in_one_line() -> None:
    import subprocess
    import sys

    from tests.live import ROOT, free_port

    nobody = f"redis://127.0.0.1:{free_port()}/0"
    for url, says in [("http://127.0.0.1:1/0", "a Redis URL is"), (nobody, "STORAGE_UNAVAILABLE")]:
        r = subprocess.run(
            [sys.executable, "-m", "mock_server", "serve", "--store", url, "--port", str(free_port())],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 2 and says in r.stderr and "Traceback" not in r.stderr, r.stderr
