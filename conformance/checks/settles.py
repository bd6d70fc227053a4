"""settles: a record just created reaches a status its lifecycle declares as the end
(`x-resources.<r>.lifecycle.settles`), within `--settle-timeout` seconds: "The server will be
provisioned asynchronously" promises that provisioning ends, not when. A record already settled
when created passes (a fast asynchronous backend may finish before it answers: a client cannot
tell it from a synchronous one; the strict profile wants the sandbox's first status). An end the
documents never state (`settles.inferred`) is checked in the strict profile only. The record is
read by id, or found in its list when the backend has no read by id."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
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
    waiting: list[_Waiting] = []
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
        first = obj.data.get(cycle.field)
        start = res.defaults.get(cycle.field)
        if strict and start not in cycle.settles.to and first in cycle.settles.to:
            ctx.fail(
                "settles",
                obj.exchange,
                f"a {res.name} record is created {cycle.field}={first!r}, already at its end; the "
                f"sandbox answers {start!r} and settles later (strict: the sandbox's choice)",
                key="created-settled",
            )
            continue
        waiting.append(_Waiting(res, obj, tuple(cycle.settles.to), cycle.field, first, obj.exchange))
    _settle_all(ctx, waiting)


@dataclass
class _Waiting:
    res: Resource
    obj: Created
    ends: tuple[str, ...]
    key: str  # the status field
    status: Any
    last: Exchange
    deadline: float = field(default_factory=time.monotonic)

    @property
    def label(self) -> str:
        return self.res.create_op.label if self.res.create_op else self.last.label


def _settle_all(ctx: Context, waiting: list[_Waiting]) -> None:
    """Read the records together (their waits overlap) until each is at its end or out of time."""
    for w in waiting:
        w.deadline += ctx.settle_timeout
    while waiting:
        for w in [w for w in waiting if w.status in w.ends]:
            ctx.results.ok("settles", w.label)
            waiting.remove(w)
        for w in [w for w in waiting if time.monotonic() > w.deadline]:
            ctx.fail(
                "settles",
                w.last,
                f"a {w.res.name} record created {ctx.settle_timeout:g} s ago is still "
                f"{w.key}={w.status!r}; it never reached {' or '.join(map(repr, w.ends))} "
                "(--settle-timeout)",
                key="never",
                op=w.label,
                before=[w.obj.exchange],
            )
            waiting.remove(w)
        if not waiting:
            return
        ctx.client.budget.pause(1.0)
        for w in list(waiting):
            record, ex = _read(ctx, w.res, w.obj)
            w.last = ex or w.last
            if record is None:
                ctx.results.skip("settles", f"a {w.res.name} record just created cannot be read", w.label)
                waiting.remove(w)
            else:
                w.status = record.get(w.key)


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
