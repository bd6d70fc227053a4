"""settles: a record just created reaches a status its lifecycle declares as the end
(`x-resources.<r>.lifecycle.settles`), within `--settle-timeout` seconds: "The server will be
provisioned asynchronously" promises that provisioning ends, not when. A record already settled
when created passes (a fast asynchronous backend may finish before it answers: a client cannot
tell it from a synchronous one). An end the documents never state (`settles.inferred`) is
checked in the strict profile only. The record is read by id, or found in its list when the
backend has no read by id."""

from __future__ import annotations

import time
from typing import Any

from contract import Contract, Resource

from ..factory import CannotCreate, Created
from ..http import Exchange
from . import Context, family


def applies(contract: Contract) -> str | None:
    if not any(r.lifecycle and r.lifecycle.settles for r in contract.resources.values()):
        return "the spec declares no lifecycle end (x-resources.<r>.lifecycle.settles)"
    return None


@family("settles", "a created record reaches its lifecycle's declared end in time", applies=applies)
def run(ctx: Context) -> None:
    strict = ctx.judge is None or ctx.judge is ctx.contract
    for res in ctx.contract.resources.values():
        cycle = res.lifecycle
        if cycle is None or cycle.settles is None or res.create_op is None:
            continue
        label = res.create_op.label
        if cycle.settles.provenance.inferred and not strict:
            ctx.results.skip("settles", f"{res.name}: {cycle.settles.provenance.describe()}", label)
            continue
        try:
            obj = ctx.factory.create(res)
        except CannotCreate as exc:
            ctx.results.skip("settles", f"cannot create {res.name}: {exc.reason}", label)
            continue
        _settles(ctx, res, obj, tuple(cycle.settles.to), cycle.field)


def _settles(ctx: Context, res: Resource, obj: Created, ends: tuple[str, ...], field: str) -> None:
    status: Any = obj.data.get(field)
    deadline = time.monotonic() + ctx.settle_timeout
    last: Exchange = obj.exchange
    while status not in ends:
        if time.monotonic() > deadline:
            ctx.fail(
                "settles",
                last,
                f"a {res.name} record created {ctx.settle_timeout:g} s ago is still {field}={status!r}; "
                f"it never reached {' or '.join(map(repr, ends))} (--settle-timeout)",
                key="never",
                op=(res.create_op.label if res.create_op else None),
                before=[obj.exchange],
            )
            return
        ctx.client.budget.pause(1.0)
        record, ex = _read(ctx, res, obj)
        if ex is not None:
            last = ex
        if record is None:
            ctx.results.skip("settles", f"a {res.name} record just created cannot be read back", last.label)
            return
        status = record.get(field)
    ctx.results.ok("settles", res.create_op.label if res.create_op else last.label)


def _read(ctx: Context, res: Resource, obj: Created) -> tuple[dict[str, Any] | None, Exchange | None]:
    """The record as the backend shows it now: by id, else from its list."""
    ex: Exchange | None = None
    if res.get_op is not None:
        ex = ctx.factory.get(obj)
        data = ctx.factory.extract(res.get_op, ex)
        if ex.status == 200 and isinstance(data, dict):
            return data, ex
    op = res.list_op
    if op is None:
        return None, ex
    pag = ctx.contract.pagination
    size = pag.max or 100
    path = obj.parent_path if op.path_params else {}
    for index in range(50):
        ex = ctx.client.call(op, path=path, query=pag.params(index, size))
        items = ctx.factory.items(op, ex)
        if ex.status != 200 or items is None:
            return None, ex
        for item in items:
            if isinstance(item, dict) and str(item.get("id")) == obj.id:
                return item, ex
        if pag.style not in ("page", "offset") or len(items) < size:
            break
    return None, ex
