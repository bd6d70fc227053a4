"""upsert: for each operation declaring `x-resource: {op: upsert, key: <field>}`, writing the
same key twice updates the record instead of adding a second (Nexos: "PUT /projects/:id/env-vars
| Create or update an environment variable"): the collection's list then holds one record with
that key. (The value written second is not compared: a masked list does not show it.)"""

from __future__ import annotations

from typing import Any

from contract import Contract, Operation, Resource, body_for

from ..factory import CannotCreate
from . import Context, family

CHECK = "upsert"


def _upserts(contract: Contract) -> list[Operation]:
    ops = contract.operations
    return [op for op in ops if op.resource and op.resource.op == "upsert" and op.resource.key]


def _applies(contract: Contract) -> str | None:
    return None if _upserts(contract) else "no operation declares x-resource op: upsert"


@family(CHECK, "writing the same key twice updates one record, never adds a second", applies=_applies)
def run(ctx: Context) -> None:
    for op in _upserts(ctx.contract):
        assert op.resource is not None and op.resource.key is not None  # _upserts
        key = op.resource.key
        res = ctx.contract.resources.get(op.resource.name)
        listing = res.list_op if res is not None else None
        if res is None or listing is None:
            ctx.results.skip(CHECK, "no operation lists what it writes", op.label)
            continue
        path: dict[str, Any] = {}
        link = op.resource.parent
        parent = None
        try:
            if link is not None:
                parent = ctx.factory.create(ctx.contract.resources[link.name])
                path = {link.param: parent.id}
        except CannotCreate as exc:
            ctx.results.skip(CHECK, exc.reason, op.label)
            continue
        try:
            _twice(ctx, op, key, res, listing, path)
        finally:  # at once: a record left till the end counts against a quota the run fills
            if parent is not None:
                ctx.factory.delete(parent)


def _twice(
    ctx: Context, op: Operation, key: str, res: Resource, listing: Operation, path: dict[str, Any]
) -> None:
    base = body_for(op)
    base = dict(base) if isinstance(base, dict) else {}
    name = f"CONFORMANCE_{ctx.factory.unique('k').upper().replace('-', '_')}"
    writes = []
    for turn in (1, 2):  # every other string field differs between the two writes
        body = {f: (f"{v}-{turn}" if isinstance(v, str) else v) for f, v in base.items()}
        body[key] = name
        ex = ctx.client.call(op, path=path, body=body)
        writes.append(ex)
        if not 200 <= ex.status < 300:
            ctx.results.skip(CHECK, f"a write answered {ex.status}", op.label)
            return
    listed = ctx.client.call(listing, path=path)
    items = ctx.factory.items(listing, listed) or []
    same = [i for i in items if isinstance(i, dict) and i.get(key) == name]
    if len(same) == 1:
        ctx.results.ok(CHECK, op.label)
    else:
        ctx.fail(CHECK, listed, f"after two writes of {key}={name}, the list holds {len(same)} records "
                 "with it (documented: create or update)", before=writes)  # fmt: skip
    delete = res.delete_op
    for item in same if delete is not None else ():
        ids = [p.name for p in delete.path_params]
        ctx.client.call(delete, path={**path, ids[-1]: item.get("id")})
