"""defaults: a create that leaves out an optional body field whose default the documents state
("image ... Defaults to ubuntu-22.04") stores that default: the created record, and the record
read back, hold it (when they show the field at all). Only documented defaults are judged: the
documented view drops what the spec inferred."""

from __future__ import annotations

from typing import Any

from contract import MISSING, Contract

from . import ONCE, Context, family


def _documented_defaults(judge: Contract, res_create: Any) -> dict[str, Any]:
    op = judge.by_id(res_create.operation_id) or res_create
    schema = op.body_schema or {}
    required = set(schema.get("required") or ())
    return {
        k: s["default"]
        for k, s in (schema.get("properties") or {}).items()
        if isinstance(s, dict) and "default" in s and k not in required
    }


def _applies(contract: Contract) -> str | None:
    judge = contract.documented
    for res in contract.resources.values():
        if res.create_op is not None and _documented_defaults(judge, res.create_op):
            return None
    return "no create operation states a default for an optional body field"


@family(
    "defaults",
    "a create leaving out a field with a documented default stores it",
    applies=_applies,
    kind=ONCE,
)
def run(ctx: Context) -> None:
    for res in ctx.contract.resources.values():
        op = res.create_op
        if op is None or op.path_params:
            continue
        defaults = _documented_defaults(ctx.judged, op)
        if not defaults:
            continue
        body = ctx.factory.body(op, res)
        if not isinstance(body, dict):
            continue
        body = {k: v for k, v in body.items() if k not in defaults}
        ex = ctx.client.call(op, body=body)
        if not 200 <= ex.status < 300:
            ctx.results.skip(
                "defaults", f"a create without {sorted(defaults)} answered {ex.status}", op.label
            )
            continue
        data = ctx.factory.extract(op, ex)
        seen = [("the create", ex, data)]
        rid = data.get("id") if isinstance(data, dict) else None
        if res.get_op is not None and isinstance(rid, (str, int)):
            got = ctx.client.call(res.get_op, path={res.get_op.path_params[-1].name: rid})
            if got.status == 200:
                seen.append(("the record read back", got, ctx.factory.extract(res.get_op, got)))
        wrong = False
        for what, exchange, record in seen:
            if not isinstance(record, dict):
                continue
            for field, default in defaults.items():
                value = record.get(field, MISSING)
                if value is not MISSING and value != default:
                    wrong = True
                    ctx.fail(
                        "defaults",
                        exchange,
                        f"{field} left out: {what} holds {value!r}; the documented default is {default!r}",
                        key=f"{field}:{what}",
                    )
        if not wrong:
            ctx.results.ok("defaults", op.label)
