"""quota: for each operation declaring `x-quota` (specs/EXTENSIONS.md), creating a record of
the counted collection raises the usage counter by one; with a limit, creates up to it succeed
and the next one is refused (4xx), when the limit is within `REACH` creates."""

from __future__ import annotations

from typing import Any

from contract import Contract, Counter, Operation, at_path

from ..factory import CannotCreate, Created
from . import Context, family

CHECK = "quota"
REACH = 30  # creates the check may spend to reach a limit


def _applies(contract: Contract) -> str | None:
    return None if any(op.quota for op in contract.operations) else "no operation declares x-quota"


def _read(ctx: Context, op: Operation) -> tuple[Any, Any]:
    ex = ctx.client.call(op)
    body = ex.json()
    data = ctx.judged.data(body)
    return ex, data if isinstance(data, dict) else body


@family(CHECK, "usage counters follow creates; a create beyond the limit is refused", applies=_applies)
def run(ctx: Context) -> None:
    for op in ctx.contract.operations:
        for counter in op.quota:
            _counter(ctx, op, counter)


def _counter(ctx: Context, op: Operation, c: Counter) -> None:
    made: list[Created] = []
    try:
        _fill(ctx, op, c, made)
    finally:  # free the quota for the families after this one
        for record in made:
            if not record.deleted:
                ctx.factory.delete(record)


def _fill(ctx: Context, op: Operation, c: Counter, made: list[Created]) -> None:
    res = ctx.contract.resources[c.counts]
    first, body = _read(ctx, op)
    before = at_path(body, c.usage)
    if not isinstance(before, int):
        ctx.fail(CHECK, first, f"`{c.usage}` is not a count: {before!r}", key="usage")
        return
    try:
        made.append(ctx.factory.create(res))
    except CannotCreate as exc:
        ctx.results.skip(CHECK, f"{res.name}: {exc.reason}", op.label)
        return
    second, body = _read(ctx, op)
    after = at_path(body, c.usage)
    if after != before + 1:
        ctx.fail(CHECK, second, f"`{c.usage}` is {after!r} after one create (was {before})", key="usage",
                 before=[first, made[0].exchange])  # fmt: skip
        return
    limit = at_path(body, c.limit) if c.limit else None
    if not isinstance(limit, int) or limit - after > REACH:
        ctx.results.ok(CHECK, op.label)
        return
    for _ in range(limit - after):
        try:
            made.append(ctx.factory.create(res))
        except CannotCreate as exc:
            ctx.fail(CHECK, exc.exchange, f"a create within `{c.limit}` ({limit}) was refused", key="limit")
            return
    assert res.create_op is not None
    body_ = ctx.factory.body(res.create_op, res)
    beyond = ctx.client.call(res.create_op, body=body_)
    if 200 <= beyond.status < 300:
        data = ctx.factory.extract(res.create_op, beyond)
        if isinstance(data, dict) and "id" in data:  # deleted with the rest at the end of the run
            extra = Created(res, str(data["id"]), data, body_, {}, beyond)
            ctx.factory.created.append(extra)
            made.append(extra)
        ctx.fail(
            CHECK, beyond, f"a create beyond `{c.limit}` ({limit}) answered {beyond.status}", key="limit"
        )
    else:
        ctx.results.ok(CHECK, op.label)
