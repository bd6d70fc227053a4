"""One state for several processes: the shared TinyDB store, clock, rate limiter and request
log that `serve --workers N` runs on, tested as objects (two instances on one file are two
processes as far as `flock` and the journal are concerned) and across real processes."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mock_server.clock import FrozenClock
from mock_server.shared import SharedClock, SharedRateLimiter, SharedRequestLog, prepare_run_dir
from mock_server.store_tinydb import TinyDBStore
from tests.replicas import check_two_stores_are_one


def _pair(path: Path) -> tuple[TinyDBStore, TinyDBStore]:
    return TinyDBStore(path, shared=True), TinyDBStore(path, shared=True)


def test_a_write_in_one_store_is_read_at_once_by_the_other(tmp_path: Path) -> None:
    check_two_stores_are_one(*_pair(tmp_path / "s.json"))


def test_a_transaction_holds_off_the_other_process(tmp_path: Path) -> None:
    a, b = _pair(tmp_path / "s.json")
    done = threading.Event()

    def write() -> None:
        b.insert("t", {"id": "later"})
        done.set()

    with a.transaction():
        assert a.get("t", "later") is None
        thread = threading.Thread(target=write)
        thread.start()
        assert not done.wait(0.3)  # b waits for a's file lock
        a.insert("t", {"id": "first"})
    thread.join(5)
    assert done.is_set()
    assert [r["id"] for r in a.find("t")] == ["first", "later"]


def test_a_compaction_by_one_is_followed_by_the_other(tmp_path: Path) -> None:
    a, b = _pair(tmp_path / "s.json")
    a.MIN_COMPACTION = b.MIN_COMPACTION = 5
    for i in range(12):  # a compacts twice
        (a if i % 3 else b).insert("t", {"id": f"r{i}"})
    assert len(b.find("t")) == 12 and len(a.find("t")) == 12
    b.delete("t", "r0")
    assert a.get("t", "r0") is None
    a.close()
    b.close()
    assert len(TinyDBStore(tmp_path / "s.json").find("t")) == 11


def test_a_torn_line_of_a_killed_writer_is_cut_before_the_next_write(tmp_path: Path) -> None:
    a, b = _pair(tmp_path / "s.json")
    a.insert("t", {"id": "kept"})
    with open(tmp_path / "s.json.journal", "a") as fh:  # a process killed mid-write, never acknowledged
        fh.write('{"op":"put","t":"t","d":9,"r":{"id":"to')
    assert b.get("t", "kept") == {"id": "kept"}  # the torn line is not read as an entry
    b.insert("t", {"id": "next"})
    assert a.get("t", "next") == {"id": "next"}
    assert sorted(r["id"] for r in TinyDBStore(tmp_path / "s.json").find("t")) == ["kept", "next"]


_OPS = st.lists(
    st.tuples(
        st.integers(0, 2),  # which process
        st.sampled_from(["put", "update", "delete", "drop"]),
        st.sampled_from(["a", "b"]),  # table
        st.integers(0, 5),  # record id
        st.integers(0, 1000),  # value
    ),
    max_size=60,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_OPS)
def test_any_interleaving_of_three_processes_keeps_one_state(tmp_path_factory, ops) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("shared") / "s.json"
    stores = [TinyDBStore(path, shared=True) for _ in range(3)]
    for s in stores:
        s.MIN_COMPACTION = 7  # compactions happen in the middle of the sequence
    model: dict[str, dict[str, int]] = {}
    for who, op, table, rid, value in ops:
        store, key = stores[who], f"r{rid}"
        if op == "put":
            store.replace(table, {"id": key, "v": value})
            model.setdefault(table, {})[key] = value
        elif op == "update":
            changed = store.update(table, key, {"v": value})
            assert (changed is not None) == (key in model.get(table, {}))
            if changed is not None:
                model[table][key] = value
        elif op == "delete":
            assert store.delete(table, key) == (key in model.get(table, {}))
            model.get(table, {}).pop(key, None)
        else:
            store.drop(table)
            model.pop(table, None)
        for s in stores:
            for t in ("a", "b"):
                assert {r["id"]: r["v"] for r in s.find(t)} == model.get(t, {})
    for s in stores:
        s.close()
    reopened = TinyDBStore(path)
    for t in ("a", "b"):
        assert {r["id"]: r["v"] for r in reopened.find(t)} == model.get(t, {})


def _increment(path: str, n: int, worker: int) -> None:
    store = TinyDBStore(path, shared=True)
    store.MIN_COMPACTION = 50
    for i in range(n):
        with store.transaction():  # read-modify-write: atomic only if the lock spans processes
            count = store.get("t", "counter") or {"id": "counter", "n": 0}
            store.replace("t", {**count, "n": count["n"] + 1})
            store.insert("t", {"id": f"w{worker}-{i}"})
    store.close()


def test_real_processes_lose_no_update(tmp_path: Path) -> None:
    path = str(tmp_path / "s.json")
    TinyDBStore(path).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_increment, args=(path, 60, w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    store = TinyDBStore(path)
    assert store.get("t", "counter") == {"id": "counter", "n": 240}
    assert len(store.find("t")) == 241


def test_the_clock_offset_is_shared(tmp_path: Path) -> None:
    a, b = SharedClock(tmp_path / "clock"), SharedClock(tmp_path / "clock")
    before = b.now()
    a.advance(3600)
    assert 3600 <= b.now() - before < 3610
    b.advance(60)
    assert 3660 <= a.now() - before < 3670


def test_rate_limits_are_exact_across_limiters_of_one_run(tmp_path: Path) -> None:
    run = prepare_run_dir(tmp_path / "run")
    clock = FrozenClock()
    a = SharedRateLimiter(run / "state.sqlite", clock)
    b = SharedRateLimiter(run / "state.sqlite", clock)
    bucket = [a.bucket("write", 5, 60)]
    decisions = [(a if i % 2 else b).hit("tok_1", bucket) for i in range(7)]
    assert [d.allowed for d in decisions if d] == [True] * 5 + [False] * 2
    assert decisions[4] and decisions[4].remaining == 0
    assert decisions[5] and decisions[5].retry_after == 60
    assert b.hit("tok_2", bucket).allowed  # type: ignore[union-attr]  # another caller
    clock.advance(60)
    assert a.hit("tok_1", bucket).allowed  # type: ignore[union-attr]
    b.reset("tok_1")
    assert all(a.hit("tok_1", bucket).allowed for _ in range(5))  # type: ignore[union-attr]


def test_a_new_run_forgets_the_last_ones_limits(tmp_path: Path) -> None:
    run = prepare_run_dir(tmp_path / "run")
    a = SharedRateLimiter(run / "state.sqlite", FrozenClock())
    assert a.hit("k", [a.bucket("all", 1, 60)]).allowed  # type: ignore[union-attr]
    del a
    run = prepare_run_dir(tmp_path / "run")
    b = SharedRateLimiter(run / "state.sqlite", FrozenClock())
    assert b.hit("k", [b.bucket("all", 1, 60)]).allowed  # type: ignore[union-attr]


def test_the_request_log_is_one_log_for_every_process(tmp_path: Path) -> None:
    a = SharedRequestLog(tmp_path / "state.sqlite", size=150)
    b = SharedRequestLog(tmp_path / "state.sqlite", size=150)
    for i in range(400):
        (a if i % 2 else b).append({"n": i})
    rows = [r["n"] for r in b]
    assert rows == list(range(250, 400))
