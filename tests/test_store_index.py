"""Field indexes: a filtered scan, list or page reads only what it finds, and returns exactly
what a scan of every record would, in the same order, whatever writes came before."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mock_server.clock import FrozenClock
from mock_server.ids import IdGenerator
from mock_server.resources import Resources
from mock_server.store import MemoryStore, Record, Store
from mock_server.store_redis import RedisStore
from mock_server.store_tinydb import TinyDBStore
from tests.conftest import all_specs
from tests.redis_server import RedisServer, redis_server

OWNERS = [{"_account": "a", "_mode": "test"}, {"_account": "b", "_mode": "test"}]
VALUES = ["x", "y", 1, None]  # None: also what a record without the field matches

_WRITES = st.lists(
    st.tuples(
        st.sampled_from(["put", "update", "delete", "drop", "index", "reopen"]),
        st.integers(0, 4),  # record id
        st.integers(0, 1),  # owner
        # the indexed field's value; a list (rare: it turns the field's index off until a drop)
        st.sampled_from([*VALUES * 3, "absent", "absent", "a list"]),
        st.sampled_from(VALUES),  # another, not indexed
    ),
    max_size=50,
)


def _expected(model: dict[str, Record], **equals: Any) -> list[str]:
    return [r["id"] for r in model.values() if all(r.get(k) == v for k, v in equals.items())]


def _check(store: Store, model: dict[str, Record]) -> None:
    with store.reading():  # as a request reads: the other processes' writes applied first
        _check_read(store, model)


def _check_read(store: Store, model: dict[str, Record]) -> None:
    for owner in OWNERS:
        for v in VALUES:
            want = _expected(model, **owner, f=v)
            assert [r["id"] for r in store.scan("t", **owner, f=v)] == want
            for g in VALUES[:2]:
                assert [r["id"] for r in store.scan("t", **owner, f=v, g=g)] == _expected(
                    model, **owner, f=v, g=g
                )
            for start, stop in [(0, None), (0, 2), (1, 3), (5, 9)]:
                page, total = store.window("t", start, stop, **owner, f=v)
                assert ([r["id"] for r in page], total) == (want[start:stop], len(want))
            either = [
                r["id"]
                for r in model.values()
                if all(r.get(k) == w for k, w in owner.items()) and r.get("f") in ("x", v)
            ]
            assert [r["id"] for r in store.scan_any("t", "f", ["x", v], **owner)] == either
        # the records of other values, paged in among those of "x"
        extra = [model[i] for i in _expected(model, **owner, f="y")]
        want = [i for i in model if i in set(_expected(model, **owner, f="x")) | {r["id"] for r in extra}]
        page, total = store.window("t", 1, 4, extra, **owner, f="x")
        assert ([r["id"] for r in page], total) == (want[1:4], len(want))


def _run(
    store_factory: Any, writes: list[tuple[str, int, int, Any, Any]], observer: Store | None = None
) -> None:
    store = store_factory()
    store.index("t", "f")
    model: dict[str, Record] = {}
    for op, n, who, f, g in writes:
        rid = f"r{n}"
        record: Record = {"id": rid, **OWNERS[who], "g": g}
        if f != "absent":
            record["f"] = [1, 2] if f == "a list" else f
        if op == "put":
            store.replace("t", record)
            model[rid] = record
        elif op == "update" and rid in model:
            store.update("t", rid, {k: v for k, v in record.items() if k != "id"})
            model[rid] = {**model[rid], **record}
        elif op == "delete":
            store.delete("t", rid)
            model.pop(rid, None)
        elif op == "drop":
            store.drop("t")
            model.clear()
        elif op == "index":
            store.index("t", "g", "f")  # a field declared again, one new
        elif op == "reopen":
            store.close()
            store = store_factory()
            store.index("t", "f")
        _check(store, model)
        if observer is not None:
            _check(observer, model)
    store.close()


@settings(max_examples=100, deadline=None)
@given(writes=_WRITES)
def test_indexed_queries_equal_a_full_scan_in_memory(writes: list[tuple[str, int, int, Any, Any]]) -> None:
    stores = iter([MemoryStore()])
    kept: list[MemoryStore] = []

    def factory() -> MemoryStore:  # memory has nothing to reopen: the same store again
        kept.append(next(stores, None) or kept[-1])
        return kept[-1]

    _run(factory, [w for w in writes if w[0] != "reopen"])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writes=_WRITES)
def test_indexed_queries_equal_a_full_scan_over_the_file_store(tmp_path_factory, writes) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("index") / "s.json"
    other = TinyDBStore(path, shared=True)  # another process: the writes reach its index through the journal
    other.index("t", "f")

    def factory() -> TinyDBStore:
        store = TinyDBStore(path, shared=True)
        store.MIN_COMPACTION = 6  # compactions, and the other's reloads, in the middle
        return store

    _run(factory, writes, observer=other)
    other.close()


@pytest.fixture(scope="module")
def redis_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    yield from redis_server(tmp_path_factory.mktemp("redis"))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writes=_WRITES)
def test_indexed_queries_equal_a_full_scan_over_redis(redis_db, writes) -> None:  # type: ignore[no-untyped-def]
    redis_db.client().flushdb()
    other = RedisStore(redis_db.url)  # another replica: the writes reach its index through the journal
    other.index("t", "f")

    def factory() -> RedisStore:
        store = RedisStore(redis_db.url)
        store.JOURNAL = 6  # the other replica falls behind the trimmed journal and reloads
        return store

    _run(factory, writes, observer=other)
    other.close()


def test_a_record_whose_field_changes_keeps_its_place_in_the_list() -> None:
    store = MemoryStore()
    store.index("t", "f")
    for n, f in enumerate("xyyx"):
        store.insert("t", {"id": str(n), **OWNERS[0], "f": f})
    store.update("t", "0", {"f": "y"})  # joins the records of "y" behind the ones inserted after it
    store.update("t", "3", {"f": "y"})
    assert [r["id"] for r in store.scan("t", **OWNERS[0], f="y")] == ["0", "1", "2", "3"]
    assert [r["id"] for r in store.window("t", 1, 3, **OWNERS[0], f="y")[0]] == ["1", "2"]


def test_a_field_holding_lists_is_found_by_scanning() -> None:
    store = MemoryStore()
    store.index("t", "f")
    store.insert("t", {"id": "1", **OWNERS[0], "f": "x"})
    store.insert("t", {"id": "2", **OWNERS[0], "f": ["x"]})
    assert [r["id"] for r in store.scan("t", **OWNERS[0], f=["x"])] == ["2"]
    assert [r["id"] for r in store.scan("t", **OWNERS[0], f="x")] == ["1"]


# -- lists filtered on a lifecycle's status --------------------------------------------------
INSTANCE_STATUSES = ["provisioning", "running", "stopped", "restarting", "restoring"]


def _check_lists(r: Resources, owner: dict[str, str], servers: list[str]) -> None:
    everything = [r._settle("instances", x) for x in r.store.find(r.table("instances"), **owner)]
    for status in [None, *INSTANCE_STATUSES, "unknown"]:  # None: unfiltered (the views cached)
        for server in [None, *servers]:
            equals = {**({"status": status} if status else {}), **({"server_id": server} if server else {})}
            want = [x for x in everything if all(x.get(k) == v for k, v in equals.items())]
            for page, per_page in [(1, 2), (2, 2), (1, 100), (3, 1)]:
                got, meta = r.public_page("instances", owner, {"page": page, "per_page": per_page}, **equals)
                start = (page - 1) * per_page
                shown = [r.public("instances", x) for x in want[start : start + per_page]]
                assert (got, meta["total"]) == (shown, len(want))
            assert r.list("instances", owner, **equals) == want
    # what the lists stored of what they settled changed nothing anyone can see
    assert [r._settle("instances", x) for x in r.store.find(r.table("instances"), **owner)] == everything


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["create", "set", "delete", "wait", "look"]),
            st.integers(0, 9),
            st.sampled_from(INSTANCE_STATUSES),
            st.floats(0, 6),
        ),
        max_size=40,
    )
)
def test_a_status_filter_finds_what_settling_every_record_finds(
    steps: list[tuple[str, int, str, float]],
) -> None:
    """Instances move provisioning/restarting/restoring -> running on the clock; a list
    filtered by status reads only the records stored in a status that leads there."""
    spec = next(s for s in all_specs() if s.name == "nurosentrix")
    clock = FrozenClock()
    r = Resources(spec, MemoryStore(), IdGenerator(seed=3), clock)
    owner = OWNERS[0]
    servers = [r.create("servers", owner, {"name": f"s{i}"})["id"] for i in range(2)]
    made: list[str] = []
    for op, n, status, seconds in steps:
        if op == "create":
            made.append(r.create("instances", owner, {"name": "i", "server_id": servers[n % 2]})["id"])
        elif op == "set" and made:
            r.update("instances", owner, made[n % len(made)], {"status": status})
        elif op == "delete" and made:
            r.delete("instances", owner, made.pop(n % len(made)))
        elif op == "look":
            _check_lists(r, owner, servers)
        else:
            clock.advance(seconds)
    _check_lists(r, owner, servers)


def test_a_list_stores_what_settled_so_the_next_one_reads_only_what_is_moving() -> None:
    spec = next(s for s in all_specs() if s.name == "nurosentrix")
    clock = FrozenClock()
    r = Resources(spec, MemoryStore(), IdGenerator(seed=3), clock)
    owner, table = OWNERS[0], r.table("servers")
    ids = [r.create("servers", owner, {"name": f"s{i}"})["id"] for i in range(3)]
    clock.advance(6)
    seen = [r.get("servers", owner, i) for i in ids]
    later = r.create("servers", owner, {"name": "later"})["id"]
    r.update("servers", owner, ids[2], {"name": "renamed"})  # written: stored as active already
    stale = r.store.get(table, ids[1])
    assert stale is not None and stale["status"] == "provisioning"
    page, meta = r.public_page("servers", owner, {}, status="active")
    assert [s["id"] for s in page] == ids and meta["total"] == 3
    assert [x["id"] for x in r.store.scan(table, **owner, status="provisioning")] == [later]
    assert [r.get("servers", owner, i) for i in ids[:2]] == seen[:2]
    # a record written between the read and the store is not overwritten with what was read
    r.store.replace(table, {**stale, "name": "written meanwhile"})
    r._keep("servers", [(stale, {**stale, "status": "active"})])
    assert r.store.get(table, ids[1]) == {**stale, "name": "written meanwhile"}


def test_a_record_moved_to_another_owner_keeps_table_order_in_its_new_owners_list() -> None:
    """Found by the property above: with the field's index off (a list value), the owner's list is
    read as it is, and a record that changed owner went to its end."""
    store = MemoryStore()
    store.index("t", "f")
    store.replace("t", {"id": "r1", **OWNERS[0], "f": [1, 2]})
    store.replace("t", {"id": "r0", **OWNERS[1], "f": "x"})
    store.replace("t", {"id": "r1", **OWNERS[1], "f": "x"})
    assert [r["id"] for r in store.scan("t", **OWNERS[1], f="x")] == ["r1", "r0"]
    assert [r["id"] for r in store.scan("t", **OWNERS[1])] == ["r1", "r0"]
