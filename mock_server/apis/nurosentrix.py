"""Nurosentrix behaviour the spec cannot declare: login, instances on servers, clones from
completed backups, restores, account settings. The instance actions are declared (`x-action`).
Deleting a server deletes its instances and their backups (`belongs-to`, the engine's cascade).
"""

from __future__ import annotations

import re
from typing import Any

from contract import Contract

from ..calls import Call, Reply
from ..clock import iso
from ..errors import ApiError, Problem
from ..services import Services
from ..sessions import issue, principal_for, verify
from ..tokens import Principal
from ..users import check_password, find_user

DEFAULT_SETTINGS = {"timezone": "UTC", "notification_email": None}


def authenticate(sandbox: Services, spec: Contract, token: str) -> Principal | None:
    """Dashboard session JWTs from `POST /auth/login` are accepted as bearers too."""
    user = verify(sandbox, spec.name, token)
    return principal_for(sandbox, spec.name, user) if user else None


def login(call: Call) -> Reply:
    user = find_user(call.sandbox.store, call.spec.name, email=call.body["email"])
    if user is None or not check_password(user, call.body["password"]):
        raise ApiError(401, "UNAUTHORIZED", "Invalid email or password")
    token, expires = issue(call.sandbox, call.spec.name, user)
    public = {"id": user["id"], "email": user["email"], "name": user.get("name") or user["email"]}
    return Reply(200, {"token": token, "expires_at": iso(expires), "user": public})


def _instance_fields(body: dict[str, Any]) -> dict[str, Any]:
    domain = body.get("domain")
    return {**body, "domain": domain, "url": f"https://{domain}" if domain else None}


def create_instance(call: Call) -> Reply:
    """The server must exist (`belongs-to`, checked by the engine); the URL follows the domain."""
    record = call.resources.create("instances", call.owner, _instance_fields(call.body))
    return Reply(201, call.resources.public("instances", record))


def _db_name(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_") or "clone"
    return (slug if slug[0].isalpha() else f"db_{slug}")[:63]


def clone_instance(call: Call) -> Reply:
    r, body = call.resources, call.body
    source = r.get("instances", call.owner, call.params["id"])
    try:
        backup = r.get("backups", call.owner, body["backup_id"], instance_id=source["id"])
    except ApiError:
        raise ApiError(
            404, "NOT_FOUND", "Backup not found", [Problem("backup_id", "no such backup of this instance")]
        ) from None
    need = call.op.requires["backup_id"].status  # x-requires
    if backup["status"] != need:
        raise ApiError(
            409,
            "CONFLICT",
            f"Backup is {backup['status']}; only a {need} backup can be cloned",
            [Problem("backup_id", f"status is {backup['status']}")],
        )
    fields = _instance_fields(
        {
            "name": body["name"],
            "domain": body.get("domain"),
            "server_id": source["server_id"],
            "odoo_version": source["odoo_version"],
            "edition": source["edition"],
            "admin_email": source["admin_email"],
            "database_name": _db_name(body["name"]),
            "cloned_from_backup_id": backup["id"],
            "neutralized": body.get("neutralize", True),
            "restore_database": body.get("restore_database", True),
            "restore_filestore": body.get("restore_filestore", True),
        }
    )
    record = r.create("instances", call.owner, fields)
    data = r.public("instances", record)
    for field in call.op.generated:  # x-generated: shown once, never stored
        if field not in body:
            data[field] = call.sandbox.ids.secret("", 20)
    return Reply(201, data)


def restore_backup(call: Call) -> Reply:
    r = call.resources
    with call.sandbox.store.transaction():
        backup = r.get("backups", call.owner, call.params["id"])
        if backup["status"] != "completed":
            raise ApiError(
                409, "CONFLICT", f"Backup is {backup['status']}; only a completed backup can be restored"
            )
        instance = r.get("instances", call.owner, backup["instance_id"])
        if instance["status"] in ("provisioning", "restoring"):
            raise ApiError(409, "CONFLICT", f"Cannot restore onto an instance that is {instance['status']}")
        instance = r.update("instances", call.owner, instance["id"], {"status": "restoring"})
    return Reply(202, r.public("instances", instance))


def _settings_id(call: Call) -> str:
    return f"{call.owner['_account']}:{call.owner['_mode']}"


def _settings(call: Call) -> dict[str, Any]:
    row = call.sandbox.store.get(f"{call.spec.name}:settings", _settings_id(call))
    current = {"account_name": call.owner["_account"], **DEFAULT_SETTINGS}
    if row:
        current.update({k: row[k] for k in current if k in row})
    return current


def get_settings(call: Call) -> Reply:
    return Reply(200, _settings(call))


def update_settings(call: Call) -> Reply:
    with call.sandbox.store.transaction():
        merged = {**_settings(call), **call.body}
        call.sandbox.store.replace(f"{call.spec.name}:settings", {"id": _settings_id(call), **merged})
    return Reply(200, merged)


__all__ = [
    "authenticate",
    "clone_instance",
    "create_instance",
    "get_settings",
    "login",
    "restore_backup",
    "update_settings",
]
