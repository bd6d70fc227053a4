"""filters: every documented list filter (`x-resources.<r>.filters`: a query parameter naming a
field) returns only records whose field matches, keeps a matching record and drops one that does
not match, and stays consistent with pagination (the filtered total does not depend on the page
size). A backend that ignores `?region=` or `?status=` fails here."""

from __future__ import annotations

from typing import Any

from contract import Operation, Resource

from ..factory import CannotCreate, Created
from ..http import Exchange
from . import Context, family


def _applies(contract: Any) -> str | None:
    if any(r.filters and r.list_op is not None for r in contract.resources.values()):
        return None
    return "the spec documents no list filter (x-resources.<r>.filters)"


@family("filters", "documented list filters return only, and every, matching record", applies=_applies)
def run(ctx: Context) -> None:
    for res in ctx.contract.resources.values():
        op = res.list_op
        if op is None or not res.filters or res.create_op is None:
            continue
        query_params = {p.name: p for p in op.params if p.location == "query"}
        usable = {q: f for q, f in res.filters.items() if q in query_params}
        if not usable:
            continue
        try:
            obj = ctx.factory.create(res)
        except CannotCreate as exc:
            ctx.results.skip("filters", f"cannot create {res.name}: {exc.reason}", op.label)
            continue
        data = ctx.factory.settle(obj, ctx.settle_timeout, changed=True) if res.get_op else obj.data
        for param, field in usable.items():
            value = data.get(field) if isinstance(data, dict) else None
            if not isinstance(value, (str, int)) or isinstance(value, bool):
                ctx.results.skip("filters", f"{res.name}.{field} of a created record is {value!r}", op.label)
                continue
            prov = query_params[param].provenance
            why = f"the filter is not in the documents ({prov.reason})" if prov.inferred else None
            _check(
                ctx,
                res,
                op,
                obj,
                param,
                field,
                value,
                _other(ctx, res, query_params[param], field, value),
                why,
            )


def _other(ctx: Context, res: Resource, param: Any, field: str, value: Any) -> Any:
    """A value of the field other than `value`: from the parameter's or the field's enum, else
    (a free string, e.g. a region slug) one no record has: an honest filter lists nothing for it
    (or refuses it), one that ignores the parameter lists the record just created."""
    prop = (res.schema.get("properties") or {}).get(field) or {}
    for source in (param.schema.get("enum"), prop.get("enum")):
        for candidate in source or ():
            if candidate != value:
                return candidate
    if isinstance(value, str):
        return f"cf-nomatch-{ctx.factory.tag}"
    return None


def _items(ctx: Context, op: Operation, ex: Exchange) -> list[Any] | None:
    return ctx.factory.items(op, ex) if ex.status == 200 else None


def _check(
    ctx: Context,
    res: Resource,
    op: Operation,
    obj: Created,
    param: str,
    field: str,
    value: Any,
    other: Any,
    why: str | None,
) -> None:
    path = obj.parent_path if op.path_params else {}
    size = ctx.contract.pagination.max or 100
    size_param = ctx.contract.pagination.size_param
    page = {size_param: size} if size_param else {}
    failures = len(ctx.results.failing)

    def fail(ex: Exchange, message: str, key: str) -> None:
        results_fail = ctx.results.fail
        results_fail(
            "filters",
            op.label,
            message,
            curl="\n".join(e.curl() for e in (obj.exchange, ex)),
            response=ex.summary(),
            key=f"{param}:{key}",
            inferred=why,
        )

    same = ctx.client.call(op, path=path, query={param: value, **page})
    items = _items(ctx, op, same)
    if items is None:
        fail(same, f"?{param}={value} answered {same.status}", "status")
        return
    wrong = [i.get(field) for i in items if isinstance(i, dict) and i.get(field) != value]
    if wrong:
        fail(
            same, f"?{param}={value} returned records whose {field} is {sorted(map(str, set(wrong)))}", "only"
        )
    total = ctx.contract.total(same.json())
    ids = {str(i.get("id")) for i in items if isinstance(i, dict)}
    if (total is None or total <= len(items)) and obj.id not in ids:
        fail(
            same,
            f"?{param}={value} left out the {res.name} record {obj.id} whose {field} is {value!r}",
            "every",
        )
    if other is not None:
        miss = ctx.client.call(op, path=path, query={param: other, **page})
        found = _items(ctx, op, miss)
        if found is not None:
            if obj.id in {str(i.get("id")) for i in found if isinstance(i, dict)}:
                fail(
                    miss,
                    f"?{param}={other} returned the record {obj.id} whose {field} is {value!r}",
                    "ignored",
                )
            off = [i.get(field) for i in found if isinstance(i, dict) and i.get(field) != other]
            if off:
                fail(
                    miss,
                    f"?{param}={other} returned records whose {field} is {sorted(map(str, set(off)))}",
                    "only",
                )
    if size_param and total is not None:
        one = ctx.client.call(op, path=path, query={param: value, size_param: 1})
        small = ctx.contract.total(one.json()) if one.status == 200 else None
        if small is not None and small != total:
            fail(
                one,
                f"?{param}={value} counts {small} with {size_param}=1 but {total} with {size_param}={size}",
                "paged",
            )
    if len(ctx.results.failing) == failures:
        ctx.results.ok("filters", op.label)
