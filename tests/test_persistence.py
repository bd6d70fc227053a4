"""State in a TinyDB file: survives a restart, is written atomically, refuses a corrupt file."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from tinydb import TinyDB

from mock_server.app import SandboxApp
from mock_server.clock import FrozenClock
from mock_server.sandbox import Sandbox
from mock_server.store_tinydb import AtomicJSONStorage, StoreFileError, TinyDBStore
from tests.conftest import all_specs
from tests.sandbox_client import SyncASGIClient


def _open(path: Path) -> tuple[Sandbox, SyncASGIClient]:
    sb = Sandbox(all_specs(), TinyDBStore(path), clock=FrozenClock(), async_delay=0)
    return sb, SyncASGIClient(SandboxApp(sb), base_url="http://t/nurosentrix/api/v1")


def test_resources_and_tokens_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    sb, c = _open(path)
    token, _ = sb.mint("nurosentrix", account="acme")
    revoked, _ = sb.mint("nurosentrix", account="acme")
    auth = {"Authorization": f"Bearer {token}"}
    sid = c.post(
        "/servers", json={"name": "a", "provider": "p", "region": "r", "size": "s"}, headers=auth
    ).json()["data"]["id"]
    c.post("/servers", json={"name": "b", "provider": "p", "region": "r", "size": "s"}, headers=auth)
    c.delete(f"/servers/{sid}", headers=auth)
    sb.tokens.revoke(revoked)
    c.close()
    sb.store.close()

    _, c2 = _open(path)
    body = c2.get("/servers", headers=auth).json()
    assert [s["name"] for s in body["data"]] == ["b"] and body["meta"]["total"] == 1
    assert c2.get("/servers", headers={"Authorization": f"Bearer {revoked}"}).status_code == 401
    assert token not in path.read_text()  # only hashes are stored
    c2.close()


def test_after_a_clean_close_the_file_is_a_plain_tinydb_database(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    store = TinyDBStore(path)
    store.insert("t", {"id": "x", "v": 1})
    store.insert("t", {"id": "y", "v": 2})
    store.delete("t", "x")
    assert path.with_name("state.json.journal").stat().st_size > 0  # durable before compaction
    store.close()
    assert json.loads(path.read_text()) == {"t": {"2": {"id": "y", "v": 2}}}
    assert path.with_name("state.json.journal").stat().st_size == 0
    assert not list(tmp_path.glob(".*.tmp"))
    db = TinyDB(path)
    assert db.table("t").all() == [{"id": "y", "v": 2}]
    db.close()


def test_the_journal_is_replayed_after_a_crash_and_a_torn_line_dropped(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    store = TinyDBStore(path)
    for i in range(5):
        store.insert("t", {"id": f"r{i}", "_account": "a", "_mode": "test"})
    store.update("t", "r1", {"n": 1})
    store.delete("t", "r3")
    with open(path.with_name("state.json.journal"), "a") as fh:  # a write cut off by kill -9
        fh.write('{"op":"put","t":"t","d":9,"r":{"id":"half')
    # no close(): the process died
    reopened = TinyDBStore(path)
    assert [r["id"] for r in reopened.find("t", _account="a", _mode="test")] == ["r0", "r1", "r2", "r4"]
    assert reopened.get("t", "r1") == {"id": "r1", "_account": "a", "_mode": "test", "n": 1}
    reopened.close()


def test_writes_compact_into_the_file_as_the_journal_grows(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    store = TinyDBStore(path)
    store.MIN_COMPACTION = 10
    for i in range(25):
        store.insert("t", {"id": f"r{i}"})
    assert len(json.loads(path.read_text())["t"]) >= 20  # compacted at least twice
    lines = path.with_name("state.json.journal").read_text().splitlines()
    assert len(lines) < 10
    store.close()


def test_a_corrupt_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text('{"t": {"1": {"id": "x"')
    with pytest.raises(StoreFileError, match=r"state\.json"):
        TinyDBStore(path)
    assert path.read_text() == '{"t": {"1": {"id": "x"'


def test_stale_temp_files_are_cleaned_at_start(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    (tmp_path / ".state.json.123.tmp").write_text("half a write")
    TinyDBStore(path).insert("t", {"id": "x"})
    assert not list(tmp_path.glob(".*.tmp"))
    assert TinyDBStore(path).get("t", "x") == {"id": "x"}


def test_update_replace_delete_keep_order_and_index(tmp_path: Path) -> None:
    store = TinyDBStore(tmp_path / "s.json")
    for i in range(5):
        store.insert("t", {"id": f"r{i}", "n": i})
    store.update("t", "r1", {"n": 10})
    store.replace("t", {"id": "r2", "m": 1})
    assert store.delete("t", "r3") and not store.delete("t", "r3")
    reopened = TinyDBStore(tmp_path / "s.json")
    assert [r["id"] for r in reopened.find("t")] == ["r0", "r1", "r2", "r4"]
    assert reopened.get("t", "r2") == {"id": "r2", "m": 1}
    assert reopened.find("t", n=10) == [{"id": "r1", "n": 10}]


def test_group_commit_acknowledges_after_one_fsync_for_many_writes(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import asyncio
    import os

    store = TinyDBStore(tmp_path / "s.json", group_commit=True)
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])

    async def request(i: int) -> None:  # what the server does per writing request
        store.insert("t", {"id": f"r{i}"})
        await store.sync()

    async def burst() -> None:
        await asyncio.gather(*(request(i) for i in range(50)))

    asyncio.run(burst())
    assert store.writes() == 50
    assert 1 <= len(synced) <= 3  # one fsync covered the writes waiting for it, not fifty
    store.insert("t", {"id": "late"})
    assert store._synced < store.writes()  # written to the OS, not yet acknowledged
    store.commit()
    assert store._synced == store.writes()
    assert len(TinyDBStore(tmp_path / "s.json").find("t")) == 51


def test_the_server_answers_a_write_only_once_it_is_on_disk(tmp_path: Path) -> None:
    store = TinyDBStore(tmp_path / "s.json", group_commit=True)
    sb = Sandbox(all_specs(), store, clock=FrozenClock(), async_delay=0)
    token, _ = sb.mint("nurosentrix", account="acme")
    c = SyncASGIClient(SandboxApp(sb), base_url="http://t/nurosentrix/api/v1")
    auth = {"Authorization": f"Bearer {token}"}
    store.commit()
    server = {"name": "a", "provider": "p", "region": "r", "size": "s"}
    created = c.post("/servers", json=server, headers=auth)
    assert created.status_code == 201
    assert store.writes() > 0 and store._synced == store.writes()  # fsynced before the answer
    synced = store._synced
    assert c.get(f"/servers/{created.json()['data']['id']}", headers=auth).status_code == 200
    assert store._synced == synced


def _model_ops(rng: random.Random, store: TinyDBStore, model: dict[str, dict[str, Any]], n: int) -> None:
    """n random writes to `store` and to a dict that says what it must hold."""
    for _ in range(n):
        rid = f"r{rng.randrange(40)}"
        if rid in model and rng.random() < 0.3:
            store.delete("t", rid)
            del model[rid]
        elif rid in model:
            model[rid] = store.update("t", rid, {"n": rng.randrange(1000)}) or {}
        else:
            model[rid] = store.insert("t", {"id": rid, "n": rng.randrange(1000)})


def _state(path: Path) -> dict[str, dict[str, Any]]:
    store = TinyDBStore(path)
    try:
        return {r["id"]: r for r in store.find("t")}
    finally:
        store.close()


def test_a_background_compaction_survives_a_crash_at_any_step(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import shutil
    import threading

    rng, model = random.Random(7), {}  # type: ignore[var-annotated]
    path = tmp_path / "live" / "s.json"
    store = TinyDBStore(path, group_commit=True, background_compaction=True)
    store.MIN_COMPACTION = 20
    hold, held = threading.Event(), threading.Event()
    real_write = AtomicJSONStorage.write_bytes

    def slow_write(self: AtomicJSONStorage, pieces: Any) -> None:
        held.set()
        hold.wait(10)
        real_write(self, pieces)

    monkeypatch.setattr(AtomicJSONStorage, "write_bytes", slow_write)
    _model_ops(rng, store, model, 25)  # the 20th write starts a compaction, which waits
    assert held.wait(5)
    _model_ops(rng, store, model, 30)  # writes go on meanwhile (a second compaction is not started)
    store.commit()
    assert store.retired_path.exists()

    def crash_copy(name: str) -> Path:  # the files as a kill -9 would leave them now
        shutil.copytree(path.parent, tmp_path / name)
        return tmp_path / name / "s.json"

    before_file = crash_copy("before-file")  # old file + retired journal + journal
    expected = dict(model)
    hold.set()
    assert store._compactor is not None
    store._compactor.join(5)
    assert not store.retired_path.exists()
    after_file = crash_copy("after-file")  # new file + journal
    file_but_retired = crash_copy("file-but-retired")  # new file, retired journal not yet deleted
    shutil.copy(before_file.with_name("s.json.journal.0"), file_but_retired.with_name("s.json.journal.0"))
    shutil.copy(before_file.with_name("s.json.journal"), file_but_retired.with_name("s.json.journal"))
    assert _state(before_file) == expected
    assert _state(after_file) == expected
    assert _state(file_but_retired) == expected
    assert not file_but_retired.with_name("s.json.journal.0").exists()  # folded in at start

    _model_ops(rng, store, model, 200)  # many more compactions, without the brake
    store.close()
    assert not store.retired_path.exists()
    assert _state(path) == model
    assert {r["id"]: r for r in TinyDB(path, access_mode="r").table("t").all()} == model  # plain TinyDB


def test_a_background_compaction_writes_the_state_it_started_from(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The thread encodes shallow copies taken at the start: writes made meanwhile (a record
    replaced, one deleted, one added) reach the new journal, not the file being written."""
    import threading

    from mock_server import store_tinydb

    path = tmp_path / "s.json"
    store = TinyDBStore(path, group_commit=True, background_compaction=True)
    store.MIN_COMPACTION = 20
    hold, held = threading.Event(), threading.Event()
    real_encode = store_tinydb.encode_tables

    def slow_encode(tables: Any, chunk: int = 2000) -> Any:
        held.set()
        hold.wait(10)
        return real_encode(tables, chunk)

    monkeypatch.setattr(store_tinydb, "encode_tables", slow_encode)
    started = {f"r{i}": store.insert("t", {"id": f"r{i}", "n": i}) for i in range(20)}  # the 20th compacts
    assert held.wait(5)
    store.update("t", "r0", {"n": -1})
    store.delete("t", "r1")
    store.insert("t", {"id": "r20", "n": 20})
    hold.set()
    assert store._compactor is not None
    store._compactor.join(5)
    written = json.loads(path.read_text())["t"]
    assert {r["id"]: r for r in written.values()} == started
    store.close()
    after = {k: v for k, v in started.items() if k != "r1"}
    after |= {"r0": {"id": "r0", "n": -1}, "r20": {"id": "r20", "n": 20}}
    assert _state(path) == after


def test_tables_encoded_in_chunks_are_the_tables_encoded_at_once() -> None:
    from mock_server.store_tinydb import encode_tables

    rows = {f"r{i}": {"id": f"r{i}", "n": i, "tags": ["a", {"b": None}], "name": "é\u2028"} for i in range(7)}
    doc_ids = {rid: 10 + i for i, rid in enumerate(rows)}
    tables = {"a": (rows, doc_ids), "empty": ({}, {}), 'q"uote': ({"x": {"id": "x"}}, {"x": 1})}
    expected = {t: {str(ids[rid]): r for rid, r in rs.items()} for t, (rs, ids) in tables.items()}
    for chunk in (1, 2, 3, 7, 2000):
        assert json.loads(b"".join(encode_tables(tables, chunk))) == expected
