"""`x-action` (specs/EXTENSIONS.md): lifecycle actions declared once, decoded by `contract/`,
refused when malformed, served by the engine from the declaration alone, and walked by the
`actions` family's planner. The HTTP behaviour of the real specs' actions is in
tests/test_nurosentrix.py and tests/test_nexos.py; the family against backends in
tests/conformance/test_blind_conformance.py (CAUGHT: actions)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from conformance.checks.actions import _home, _route, _terminal
from contract import Contract, SpecError, compile_spec, load
from mock_server.app import SandboxApp
from mock_server.clock import FrozenClock
from mock_server.ids import IdGenerator
from mock_server.sandbox import Sandbox
from tests.sandbox_client import SyncASGIClient


def _raw(api: str) -> dict[str, Any]:
    return copy.deepcopy(load(api).raw)


def _x_action(raw: dict[str, Any], path: str) -> dict[str, Any]:
    return raw["paths"][path]["post"]["x-action"]  # type: ignore[no-any-return]


def test_the_declarations_decode_typed() -> None:
    nuro = load("nurosentrix").by_id("instanceAction")
    assert nuro is not None and nuro.action is not None and nuro.handler is None
    assert nuro.action.resource == "instances" and nuro.action.select == "action"
    restart = nuro.action.actions["restart"]
    assert (restart.sources, restart.via, restart.to, restart.first) == (
        ("running", "stopped"), "restarting", "running", "restarting",
    )  # fmt: skip
    assert not restart.documents("via") and nuro.action.actions["backup"].creates == "backups"
    assert nuro.action.chosen({"action": "stop"}).to == "stopped"
    resume = load("nexos").by_id("resumeEnvironment")
    assert resume is not None and resume.action is not None
    assert resume.action.select is None and resume.action.chosen(None).without == ("rebuild",)
    reset = load("nexos").by_id("resetEnvironment")
    assert reset is not None and reset.action is not None
    assert reset.action.chosen(None).to is None and dict(reset.action.chosen(None).generate) == {
        "last_reset_at": "now"
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a["actions"]["pause"].update(via="nowhere"), "no lifecycle of environments leads nowhere"),
        (lambda a: a["actions"].update(halt={"from": ["running"]}), "several actions need `select`"),
        (lambda a: a["actions"]["pause"].update(creates="ghosts"), "creates: unknown resource ghosts"),
        (lambda a: a.update(resource="ghosts"), "unknown resource ghosts"),
        (lambda a: a["actions"]["pause"].update(to=3), "x-action.actions.pause.to"),
        (lambda a: a["actions"]["pause"].update(effect="nexos.nothing_here"), "effect nexos.nothing_here"),
        (lambda a: a["actions"]["pause"].update(without=["rebuidl"]), "without: no action rebuidl"),
    ],
)
def test_a_malformed_declaration_is_a_load_error(change: Any, message: str) -> None:
    raw = _raw("nexos")
    change(_x_action(raw, "/environments/{id}/pause"))
    with pytest.raises(SpecError, match=message.replace("`", ".").replace("(", ".")):
        Sandbox([compile_spec(raw, "nexos")], clock=FrozenClock(), ids=IdGenerator(seed=1), async_delay=0.0)


@pytest.fixture
def served() -> Iterator[Any]:
    """A sandbox serving a given Nurosentrix contract; yields a function making a client."""
    made: list[SyncASGIClient] = []

    def client(spec: Contract) -> SyncASGIClient:
        sandbox = Sandbox([spec], clock=FrozenClock(), ids=IdGenerator(seed=3), async_delay=0.0)
        token = sandbox.mint("nurosentrix")[0]
        c = SyncASGIClient(
            SandboxApp(sandbox),
            base_url="http://sandbox.test" + spec.base_path,
            headers={"Authorization": f"Bearer {token}"},
        )
        made.append(c)
        return c

    yield client
    for c in made:
        c.close()


def _instance(c: SyncASGIClient) -> str:
    server = c.post(
        "/servers", json={"name": "s1", "provider": "digitalocean", "region": "nyc1", "size": "s-4vcpu-8gb"}
    )
    assert server.status_code == 201, server.text
    body = {"name": "crm", "server_id": server.json()["data"]["id"], "odoo_version": "17.0",
            "edition": "community", "database_name": "crm", "admin_email": "a@example.com"}  # fmt: skip
    made = c.post("/instances", json=body)
    assert made.status_code == 201, made.text
    return str(made.json()["data"]["id"])


def test_the_engine_serves_what_is_declared(served: Any) -> None:
    """The same request, two declarations: the engine follows whichever the spec says."""
    raw = _raw("nurosentrix")
    as_written = served(compile_spec(raw, "nurosentrix"))
    iid = _instance(as_written)
    refused = as_written.post(f"/instances/{iid}/actions", json={"action": "start"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "CONFLICT"
    backup = as_written.post(f"/instances/{iid}/actions", json={"action": "backup"})
    assert backup.status_code == 202
    result = backup.json()["data"]
    assert result["action"] == "backup" and result["instance"]["status"] == "running"
    assert result["backup"]["instance_id"] == iid  # `creates`, linked by its belongs-to field
    stop = as_written.post(f"/instances/{iid}/actions", json={"action": "stop"}).json()["data"]
    assert "backup" not in stop and stop["instance"]["status"] == "stopped"  # `$created?` dropped

    _x_action(raw, "/instances/{id}/actions")["actions"]["start"]["from"] = ["stopped", "running"]
    changed = served(compile_spec(raw, "nurosentrix"))
    iid = _instance(changed)
    started = changed.post(f"/instances/{iid}/actions", json={"action": "start"})
    assert started.status_code == 202 and started.json()["data"]["instance"]["status"] == "running"


def test_the_family_plans_its_walk_from_the_declaration() -> None:
    nexos = load("nexos")
    envs = nexos.resources["environments"]
    acts = [(op, a) for op in nexos.operations if op.action for a in op.action.actions.values()]
    assert _home(envs) == "running"  # its default, building, carried on by the lifecycle
    assert _terminal("destroyed", envs, acts) and not _terminal("paused", envs, acts)
    route = _route("running", {"paused"}, acts, envs)
    assert [a.name for _, a in route] == ["pause"]
    assert _route("running", {"destroyed"}, acts, envs) == []  # never through a terminal state
    nuro = load("nurosentrix")
    instances = nuro.resources["instances"]
    steps = [(op, a) for op in nuro.operations if op.action for a in op.action.actions.values()]
    assert _home(instances) == "running"
    assert [a.name for _, a in _route("running", {"stopped"}, steps, instances)] == ["stop"]
