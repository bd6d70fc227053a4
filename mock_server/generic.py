"""The operations every API gets from `x-resource`: list, get, create, update, delete, upsert."""

from __future__ import annotations

from typing import Any

from contract import ResourceOp

from .calls import Call, Reply


def _parent(call: Call, res: ResourceOp) -> dict[str, Any]:
    """Check the parent exists for this caller (404 otherwise); the child's link to it."""
    parent = res.parent
    if parent is None:
        return {}
    pid = call.params[parent.param]
    call.resources.get(parent.name, call.owner, pid)
    return {parent.field: pid}


def id_param(call: Call, declared: str | None = None) -> str:
    """The path parameter naming the record: `declared`, else the path's last one."""
    if declared is not None:
        return declared
    return [p.name for p in call.op.params if p.location == "path"][-1]


def run(call: Call) -> Reply:
    res = call.op.resource
    assert res is not None  # the engine dispatches here only operations with x-resource
    name, op = res.name, res.op
    r = call.resources
    link = _parent(call, res)
    status = call.op.success_status
    if op == "list":
        filters = r.filters(name, call.params)
        page, meta = r.public_page(name, call.owner, call.params, encoded=True, **link, **filters)
        return Reply(status, page, kind="list", meta=meta)
    if op == "create":
        record = r.create(name, call.owner, _fields(call), extra=link)
        return Reply(status, r.public(name, record))
    if op == "upsert":
        record, created = r.upsert(name, call.owner, str(res.key), _fields(call), extra=link)
        return Reply(201 if created and "201" in call.op.responses else status, r.public(name, record))
    rid = call.params[id_param(call, res.id_param)]
    if op == "get":
        return Reply(status, r.shown(name, call.owner, rid, **link))
    if op == "update":
        r.get(name, call.owner, rid, **link)
        return Reply(status, r.public(name, r.update(name, call.owner, rid, _fields(call))))
    if op == "delete":
        record = r.delete(name, call.owner, rid, **link)
        if status == 204:
            return Reply(204, kind="empty")
        return Reply(status, r.public(name, record))
    raise AssertionError(f"unknown x-resource op {op}")  # excluded by the extension schema


def _fields(call: Call) -> dict[str, Any]:
    """Only the fields the request schema declares: nothing else is ever stored."""
    body = call.body if isinstance(call.body, dict) else {}
    declared = set((call.op.body_schema or {}).get("properties", {}))
    return {k: v for k, v in body.items() if k in declared}
