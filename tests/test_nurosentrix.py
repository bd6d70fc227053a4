"""Nurosentrix as a client sees it: servers, instances, actions, backups, clones, login, settings."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from mock_server.users import save_user
from tests.conftest import Harness
from tests.sandbox_client import SyncASGIClient

SERVER = {"name": "web-1", "provider": "digitalocean", "region": "nyc1", "size": "s-4vcpu-8gb"}
INSTANCE = {
    "name": "production-crm",
    "odoo_version": "17.0",
    "edition": "community",
    "database_name": "production_crm",
    "admin_email": "admin@example.com",
    "domain": "crm.example.com",
}


def _instance(c: SyncASGIClient) -> dict[str, Any]:
    sid = c.post("/servers", json=SERVER).json()["data"]["id"]
    r = c.post("/instances", json={**INSTANCE, "server_id": sid})
    assert r.status_code == 201, r.text
    return r.json()["data"]


def _action(c: SyncASGIClient, iid: str, action: str) -> Any:
    return c.post(f"/instances/{iid}/actions", json={"action": action})


@pytest.fixture
def slow(make_harness) -> Harness:  # type: ignore[no-untyped-def]
    """Documented default delays, moved only by the clock."""
    return make_harness(async_delay=None)  # type: ignore[no-any-return]


def test_server_provisions_then_is_active(slow: Harness) -> None:
    c = slow.api("nurosentrix")
    server = c.post("/servers", json=SERVER).json()["data"]
    assert server["status"] == "provisioning" and server["ip_address"]
    assert c.get("/servers", params={"status": "provisioning"}).json()["meta"]["total"] == 1
    slow.clock.advance(5)
    assert c.get(f"/servers/{server['id']}").json()["data"]["status"] == "active"
    assert c.get("/servers", params={"status": "active"}).json()["meta"]["total"] == 1
    assert c.get("/servers", params={"status": "offline"}).json()["meta"]["total"] == 0


def test_instance_needs_a_server_of_the_same_account(harness: Harness) -> None:
    c = harness.api("nurosentrix")
    foreign = harness.api("nurosentrix", account="other").post("/servers", json=SERVER).json()["data"]["id"]
    for sid in ("srv_nope", foreign):
        r = c.post("/instances", json={**INSTANCE, "server_id": sid})
        assert r.status_code == 404
        assert r.json()["error"]["details"]["field"] == "server_id"
    assert c.get("/instances").json()["meta"]["total"] == 0


def test_deleting_a_server_deletes_its_instances_and_backups(harness: Harness) -> None:
    c = harness.api("nurosentrix")
    inst = _instance(c)
    bkp = c.post(f"/instances/{inst['id']}/backups").json()["data"]
    assert c.delete(f"/servers/{inst['server_id']}").status_code == 204
    assert c.get(f"/instances/{inst['id']}").status_code == 404
    assert c.get(f"/backups/{bkp['id']}").status_code == 404


def test_action_state_rules(harness: Harness) -> None:
    c = harness.api("nurosentrix")
    iid = _instance(c)["id"]
    assert c.get(f"/instances/{iid}").json()["data"]["status"] == "running"
    r = _action(c, iid, "start")
    assert r.status_code == 409 and r.json()["error"]["code"] == "CONFLICT"
    assert r.json()["error"]["message"] == "Cannot start an instance that is running"
    r = _action(c, iid, "stop")
    assert r.status_code == 202 and r.json()["data"]["instance"]["status"] == "stopped"
    assert _action(c, iid, "stop").status_code == 409
    assert _action(c, iid, "start").json()["data"]["instance"]["status"] == "running"
    assert _action(c, iid, "reboot").status_code == 400  # unknown action


def test_restart_goes_through_restarting(slow: Harness) -> None:
    c = slow.api("nurosentrix")
    iid = _instance(c)["id"]
    assert _action(c, iid, "restart").status_code == 409  # still provisioning
    slow.clock.advance(5)
    r = _action(c, iid, "restart")
    assert r.json()["data"]["instance"]["status"] == "restarting"
    slow.clock.advance(3)
    assert c.get(f"/instances/{iid}").json()["data"]["status"] == "running"


def test_actions_need_the_actions_scope(harness: Harness) -> None:
    c = harness.api("nurosentrix")
    iid = _instance(c)["id"]
    limited = harness.api("nurosentrix", scopes=["instances:read", "instances:write"])
    r = _action(limited, iid, "stop")
    assert r.status_code == 403
    assert r.json()["error"]["message"] == "Token does not have permission: instances:actions"


def test_backups_run_then_complete_and_the_backup_action_makes_one(slow: Harness) -> None:
    c = slow.api("nurosentrix")
    iid = _instance(c)["id"]
    slow.clock.advance(5)
    made = c.post(f"/instances/{iid}/backups").json()["data"]
    assert made["status"] == "running" and made["completed_at"] is None
    by_action = _action(c, iid, "backup").json()["data"]["backup"]
    listed = c.get(f"/instances/{iid}/backups").json()
    assert [b["id"] for b in listed["data"]] == [made["id"], by_action["id"]]
    slow.clock.advance(3)
    done = c.get(f"/backups/{made['id']}").json()["data"]
    assert done["status"] == "completed" and done["completed_at"] == "2026-01-01T00:00:08Z"
    assert c.get("/instances/inst_nope/backups").status_code == 404


def test_clone_only_from_a_completed_backup_records_options_and_returns_password(slow: Harness) -> None:
    c = slow.api("nurosentrix")
    src = _instance(c)
    slow.clock.advance(5)
    bkp = c.post(f"/instances/{src['id']}/backups").json()["data"]
    body = {
        "name": "staging-crm",
        "domain": "staging-crm.example.com",
        "backup_id": bkp["id"],
        "neutralize": True,
        "restore_database": True,
        "restore_filestore": False,
    }
    r = c.post(f"/instances/{src['id']}/clone", json=body)
    assert r.status_code == 409  # the backup is still running
    slow.clock.advance(3)
    r = c.post(f"/instances/{src['id']}/clone", json=body)
    assert r.status_code == 201
    clone = r.json()["data"]
    assert clone["cloned_from_backup_id"] == bkp["id"] and clone["neutralized"] is True
    assert clone["restore_filestore"] is False and clone["server_id"] == src["server_id"]
    password = clone["admin_password"]
    assert len(password) >= 16
    stored = c.get(f"/instances/{clone['id']}").json()["data"]
    assert "admin_password" not in stored and password not in str(
        slow.sandbox.store.find("nurosentrix:instances")
    )
    r = c.post(f"/instances/{src['id']}/clone", json={**body, "admin_password": "chosen-password-1"})
    assert "admin_password" not in r.json()["data"]


def test_clone_refuses_another_accounts_backup(harness: Harness) -> None:
    other = harness.api("nurosentrix", account="other")
    theirs = _instance(other)
    their_backup = other.post(f"/instances/{theirs['id']}/backups").json()["data"]["id"]
    c = harness.api("nurosentrix")
    mine = _instance(c)
    r = c.post(f"/instances/{mine['id']}/clone", json={"name": "x", "backup_id": their_backup})
    assert r.status_code == 404 and r.json()["error"]["details"]["field"] == "backup_id"
    assert (
        c.post(f"/instances/{theirs['id']}/clone", json={"name": "x", "backup_id": their_backup}).status_code
        == 404
    )


def test_restore_needs_the_restore_scope_and_a_completed_backup(harness: Harness) -> None:
    c = harness.api("nurosentrix")
    iid = _instance(c)["id"]
    bkp = c.post(f"/instances/{iid}/backups").json()["data"]["id"]
    no_restore = harness.api("nurosentrix", scopes=["backups:read", "backups:write"])
    assert no_restore.post(f"/backups/{bkp}/restore").json()["error"]["message"].endswith("backups:restore")
    r = c.post(f"/backups/{bkp}/restore")
    assert r.status_code == 202 and r.json()["data"]["status"] == "restoring"
    assert c.get(f"/instances/{iid}").json()["data"]["status"] == "running"  # delay 0 in this harness


def _user(h: Harness, account: str = "acme") -> None:
    save_user(
        h.sandbox.store,
        h.sandbox.ids,
        {
            "api": "nurosentrix",
            "id": "usr_abc123",
            "email": "user@example.com",
            "password": "your-password",
            "name": "John Doe",
            "account": account,
        },
    )


def test_login_gives_a_jwt_usable_as_bearer_for_the_users_account(harness: Harness) -> None:
    _user(harness)
    anon = harness.client("nurosentrix")
    r = anon.post("/auth/login", json={"email": "user@example.com", "password": "your-password"})
    assert r.status_code == 200
    data = r.json()["data"]
    assert data["user"] == {"id": "usr_abc123", "email": "user@example.com", "name": "John Doe"}
    assert data["expires_at"] == "2026-01-02T00:00:00Z"
    session = harness.client("nurosentrix", data["token"])
    sid = session.post("/servers", json=SERVER).json()["data"]["id"]
    assert harness.api("nurosentrix", account="acme").get(f"/servers/{sid}").status_code == 200
    assert harness.api("nurosentrix").get(f"/servers/{sid}").status_code == 404


def test_wrong_password_expired_and_tampered_jwts_are_401(harness: Harness) -> None:
    _user(harness)
    anon = harness.client("nurosentrix")
    assert anon.post("/auth/login", json={"email": "user@example.com", "password": "nope"}).status_code == 401
    assert anon.post("/auth/login", json={"email": "who@example.com", "password": "x"}).status_code == 401
    token = anon.post("/auth/login", json={"email": "user@example.com", "password": "your-password"}).json()[
        "data"
    ]["token"]
    head, payload, sig = token.split(".")
    tampered = f"{head}.{payload}.{sig[:-2]}{'AA' if sig[-2:] != 'AA' else 'BB'}"
    none_alg = jwt.encode(
        {"sub": "usr_abc123", "api": "nurosentrix", "iat": 0, "exp": 2**40}, key="", algorithm="none"
    )
    for bad in (tampered, none_alg):
        assert harness.client("nurosentrix", bad).get("/servers").status_code == 401
    assert harness.client("nurosentrix", token).get("/servers").status_code == 200
    harness.clock.advance(24 * 3600)
    assert harness.client("nurosentrix", token).get("/servers").status_code == 401


def test_settings_read_and_update_with_their_scopes(harness: Harness) -> None:
    c = harness.api("nurosentrix", account="acme")
    assert c.get("/settings").json()["data"] == {
        "account_name": "acme",
        "timezone": "UTC",
        "notification_email": None,
    }
    r = c.patch("/settings", json={"timezone": "Europe/Brussels"})
    assert r.status_code == 200 and r.json()["data"]["timezone"] == "Europe/Brussels"
    assert c.get("/settings").json()["data"]["timezone"] == "Europe/Brussels"
    assert harness.api("nurosentrix").get("/settings").json()["data"]["timezone"] == "UTC"
    reader = harness.api("nurosentrix", account="acme", scopes=["settings:read"])
    assert reader.patch("/settings", json={"timezone": "UTC"}).status_code == 403
    assert c.patch("/settings", json={}).status_code == 400
