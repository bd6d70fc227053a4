"""What two stores over one shared state (two processes, two replicas) must agree on: a write
through either is what the other reads next, for every kind of write."""

from __future__ import annotations

from mock_server.store import Store

SERVER = {"id": "srv_1", "name": "one", "_account": "x", "_mode": "test"}


def check_two_stores_are_one(a: Store, b: Store) -> None:
    a.insert("servers", dict(SERVER))
    assert b.get("servers", "srv_1") == SERVER
    with b.reading():  # as a request reads: the other's writes applied first
        assert b.window("servers", 0, None, _account="x", _mode="test")[1] == 1
    a.insert("servers", {**SERVER, "id": "srv_2"})
    with b.reading():
        assert b.window("servers", 0, None, _account="x", _mode="test")[1] == 2
    b.update("servers", "srv_1", {"name": "renamed"})
    assert a.find("servers", name="renamed")[0]["id"] == "srv_1"
    assert a.delete("servers", "srv_1")
    assert b.get("servers", "srv_1") is None
    a.drop("servers")
    assert b.tables() == []
