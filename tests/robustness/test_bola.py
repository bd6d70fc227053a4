"""Broken object-level authorisation: account A creates one resource of every type of an API;
then account B (every scope), and A's own live-mode token, call every operation that takes an id
with A's ids. Each answer is 404 (as if absent) in the envelope, never A's data, and A's data is
unchanged afterwards. Lists, quotas and the like under B's token show nothing of A's either.

tests/test_engine_auth.py covers get/list/delete of one collection per API; this covers every
operation with a path parameter, from the specs, so a new operation is covered the day it is added."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contract import Operation
from tests.apis import error_code
from tests.conftest import Harness, all_specs
from tests.robustness.support import count, fill, path_ops, populate, snapshot

APIS = [s.name for s in all_specs()]
# Bodies valid enough to reach the ownership check (an invalid one would stop at a 400).
BODIES: dict[str, Any] = {
    "updateServer": {"name": "bola"},
    "cloneInstance": {"name": "bola-clone", "backup_id": "{backups}"},
    "instanceAction": {"action": "backup"},
    "updateProject": {"name": "bola"},
    "putEnvVar": {"key": "BOLA", "value": "x"},
}


def _body(op: Operation, ids: dict[str, str]) -> Any:
    if op.body_schema is None:
        return None
    assert op.operation_id in BODIES, f"{op.operation_id}: add a valid body to BODIES"
    text = json.dumps(BODIES[op.operation_id])
    for name, rid in ids.items():
        text = text.replace("{" + name + "}", rid)
    return json.loads(text)


def _leaks(text: str, ids: dict[str, str]) -> list[str]:
    return [x for x in [*ids.values(), "alice-marker"] if x in text]


@pytest.mark.parametrize("api", APIS)
def test_every_operation_with_an_id_refuses_another_accounts_and_modes_ids(
    make_harness: Any, api: str
) -> None:
    h: Harness = make_harness(rate_limit=False)
    ids = populate(h, api, "alice")
    populate(h, api, "bob")  # B has data of its own: the answers must still be 404
    intruders = {
        "another account": h.api(api, account="bob"),
        "the same account's live token": h.api(api, account="alice", mode="live"),
    }
    ops = path_ops(h.sandbox.specs[api])
    assert ops, api
    before = snapshot(h.sandbox)
    for who, client in intruders.items():
        for op in ops:
            path = fill(op, ids)
            body = _body(op, ids)
            r = client.request(op.method.upper(), path, **({"json": body} if body is not None else {}))
            count("bola_attempts")
            assert r.status_code == 404, (who, op.operation_id, r.status_code, r.text)
            assert error_code(r.json()) == "NOT_FOUND"
            assert _leaks(r.text, ids) == [], (who, op.operation_id, r.text)
    assert snapshot(h.sandbox) == before  # nothing of A's was changed, nothing new was made
    owner = h.api(api, account="alice")
    for op in ops:  # the ids were real: A itself reads every one of them
        if op.method == "get":
            assert owner.get(fill(op, ids)).status_code == 200, op.operation_id


@pytest.mark.parametrize("api", APIS)
def test_collection_reads_under_another_token_show_nothing_of_a(make_harness: Any, api: str) -> None:
    h: Harness = make_harness(rate_limit=False)
    ids = populate(h, api, "alice")
    spec = h.sandbox.specs[api]
    reads = [
        op for op in spec.operations if op.method == "get" and op not in path_ops(spec) and not op.public
    ]
    assert reads
    for client in (h.api(api, account="bob"), h.api(api, account="alice", mode="live")):
        for op in reads:
            r = client.get(op.path)
            count("bola_attempts")
            assert r.status_code == 200, (op.operation_id, r.text)
            assert _leaks(r.text, ids) == [], (op.operation_id, r.text)
        # filters naming A's ids find nothing either
        if api == "nurosentrix":
            r = client.get("/instances", params={"server_id": ids["servers"]})
            assert r.json()["meta"]["total"] == 0


def test_bodies_naming_another_accounts_ids_are_refused(make_harness: Any) -> None:
    """Ids in bodies, not paths: an instance on A's server, a clone of A's backup."""
    h: Harness = make_harness(rate_limit=False)
    a = populate(h, "nurosentrix", "alice")
    b = populate(h, "nurosentrix", "bob")
    bob = h.api("nurosentrix", account="bob")
    before = snapshot(h.sandbox)
    r = bob.post(
        "/instances",
        json={
            "name": "x",
            "server_id": a["servers"],
            "odoo_version": "17.0",
            "edition": "community",
            "database_name": "x",
            "admin_email": "a@example.com",
        },
    )
    assert r.status_code == 404 and _leaks(r.text, a) == []
    r = bob.post(f"/instances/{b['instances']}/clone", json={"name": "x", "backup_id": a["backups"]})
    assert r.status_code == 404 and _leaks(r.text, a) == []
    count("bola_attempts", 2)
    assert snapshot(h.sandbox) == before
