"""lifecycle: create then get (and list) shows the record as sent; update shows the change;
delete then get answers 404 and the list forgets it; actions (an operation under the record's
path whose body picks an `enum` value, e.g. `{action: start|stop|...}`) change its status, and
refused ones (409) leave it as it was.

Statuses must stay within the schema's enum; the spec's timed transitions
(`x-resources.<r>.lifecycle`) are waited out before acting.
"""

from __future__ import annotations

from typing import Any

from contract import Operation, Resource

from ..factory import Created
from ..http import Exchange
from . import Context, created_records, family


@family("lifecycle", "create→get/list, update→get, delete→404, actions change status")
def run(ctx: Context) -> None:
    for res, obj in created_records(ctx, "lifecycle"):
        _lifecycle(ctx, res, obj)


def listed(
    ctx: Context, res: Resource, obj: Created, as_: str = "token"
) -> tuple[bool | None, Exchange | None]:
    """Whether `obj` appears in its collection (walking pages); None when it cannot be told."""
    op = res.list_op
    if op is None:
        return None, None
    path = obj.parent_path if op.path_params else {}
    pag = ctx.contract.pagination
    style = pag.style
    size = pag.max or 100
    ex: Exchange | None = None
    for page in range(50):
        query: dict[str, Any] = {}
        if style == "page":
            query = {"page": page + 1, "per_page": size}
        elif style == "offset":
            query = {"limit": size, "offset": page * size}
        ex = ctx.client.call(op, as_=as_, path=path, query=query)
        items = ctx.factory.items(op, ex)
        if ex.status != 200 or items is None:
            return None, ex
        if any(isinstance(i, dict) and str(i.get("id")) == obj.id for i in items):
            return True, ex
        if style == "none" or len(items) < size:
            return False, ex
    return None, ex


def _same(sent: dict[str, Any], data: Any, schema: dict[str, Any]) -> list[str]:
    """Scalar fields sent at creation that the record shows differently."""
    props = schema.get("properties") or {}
    if not isinstance(data, dict):
        return ["(no record in the body)"]
    return sorted(
        k
        for k, v in sent.items()
        if k in props and isinstance(v, (str, int, float, bool)) and k in data and data[k] != v
    )


def _lifecycle(ctx: Context, res: Resource, obj: Created) -> None:
    assert res.get_op is not None and res.create_op is not None
    factory = ctx.factory
    create_label = res.create_op.label
    wrong = _same(obj.sent, obj.data, res.schema)
    if wrong:
        ctx.fail(
            "lifecycle",
            obj.exchange,
            f"the created {res.name} record differs from the request in {wrong}",
            key="create-echo",
        )
    _status_ok(ctx, res, obj.data, obj.exchange)
    got = factory.get(obj)
    if got.status != 200:
        ctx.fail(
            "lifecycle",
            got,
            f"a {res.name} record just created ({create_label}) cannot be read: {got.status}",
            key="lost",
            before=[obj.exchange],
        )
    else:
        data = factory.extract(res.get_op, got)
        wrong = _same(obj.sent, data, res.schema)
        if wrong:
            ctx.fail(
                "lifecycle",
                got,
                f"the {res.name} record read back differs from what was created in {wrong}",
                key="get-echo",
                before=[obj.exchange],
            )
        else:
            ctx.results.ok("lifecycle", res.get_op.label)
        _status_ok(ctx, res, data, got)
    seen, lst = listed(ctx, res, obj)  # the list too: a read by id may be an endpoint the documents lack
    if seen is False and lst is not None:
        ctx.fail(
            "lifecycle",
            lst,
            f"a {res.name} record just created is missing from its list",
            key="list-lost",
            before=[obj.exchange],
        )
    elif seen and res.list_op is not None:
        ctx.results.ok("lifecycle", res.list_op.label)
    if got.status != 200:
        return
    if res.update_op is not None and res.update_op.body_schema is not None:
        _update(ctx, res, obj)
    for action in res.actions:
        if _enum_property(action) is not None:
            _actions(ctx, res, obj, action)
    if res.delete_op is not None:
        _delete(ctx, res, obj)


def _status_ok(ctx: Context, res: Resource, data: Any, ex: Exchange) -> None:
    enum = ctx.judged.resources.get(res.name, res).status_enum()  # documented statuses only, by default
    if enum and isinstance(data, dict) and res.status_field in data and data[res.status_field] not in enum:
        ctx.fail(
            "lifecycle", ex, f"status {data[res.status_field]!r} is not one of {enum}", key="status-enum"
        )


def _update(ctx: Context, res: Resource, obj: Created) -> None:
    op = res.update_op
    assert op is not None and res.get_op is not None
    body = ctx.factory.body(op, res, depth=9)
    if not isinstance(body, dict) or not body:
        return
    ex = ctx.client.call(op, path=obj.path, body=body)
    if not 200 <= ex.status < 300:
        ctx.fail(
            "lifecycle",
            ex,
            f"updating a {res.name} record with the spec's example answered {ex.status}",
            key="update",
            before=[obj.exchange],
        )
        return
    got = ctx.factory.get(obj)
    wrong = _same(body, ctx.factory.extract(res.get_op, got), res.schema)
    if wrong:
        ctx.fail(
            "lifecycle",
            got,
            f"an update of {wrong} is not visible when the record is read back",
            key="update-lost",
            before=[obj.exchange],
        )
    else:
        ctx.results.ok("lifecycle", op.label)


def _enum_property(op: Operation) -> tuple[str, list[Any]] | None:
    """The single required enum property of an action body (`{action: start|stop|...}`)."""
    schema = op.body_schema or {}
    props = schema.get("properties") or {}
    required = list(schema.get("required") or [])
    if op.method != "post" or len(required) != 1:
        return None
    enum = (props.get(required[0]) or {}).get("enum")
    return (required[0], list(enum)) if enum else None


def _actions(ctx: Context, res: Resource, obj: Created, op: Operation) -> None:
    name, values = _enum_property(op) or ("", [])
    field = res.status_field
    before = ctx.factory.settle(obj, ctx.settle_timeout).get(field)
    changed = accepted = 0
    for value in values:
        ex = ctx.client.call(op, path=obj.path, body={name: value})
        reported = _status_in(ex, ctx, op, field)
        if ex.status == 409:
            now = ctx.factory.settle(obj, ctx.settle_timeout).get(field)
            if now != before:
                ctx.fail(
                    "lifecycle",
                    ex,
                    f"a refused {name}={value!r} (409) moved status {before!r} → {now!r}",
                    key=f"409-moved:{value}",
                )
            continue
        if not 200 <= ex.status < 300:
            continue
        accepted += 1
        now = ctx.factory.settle(obj, ctx.settle_timeout).get(field)
        if (reported is not None and reported != before) or now != before:
            changed += 1
        before = now
    if accepted and not changed:
        ctx.fail(
            "lifecycle",
            None,
            f"{accepted} accepted {name} value(s) never changed the {res.name} {field}",
            key="no-change",
            op=op.label,
        )
    elif accepted:
        ctx.results.ok("lifecycle", op.label)


def _status_in(ex: Exchange, ctx: Context, op: Operation, field: str) -> Any:
    """The status of the record embedded in an action's response, if it carries one."""
    data = ctx.factory.extract(op, ex)
    if not isinstance(data, dict):
        return None
    if field in data and "id" in data:
        return data[field]
    for value in data.values():
        if isinstance(value, dict) and field in value and "id" in value:
            return value[field]
    return None


def _delete(ctx: Context, res: Resource, obj: Created) -> None:
    op = res.delete_op
    assert op is not None
    ex = ctx.factory.delete(obj)
    if ex is None:
        return
    if not 200 <= ex.status < 300:
        ctx.fail(
            "lifecycle",
            ex,
            f"deleting a {res.name} record answered {ex.status}",
            key="delete",
            before=[obj.exchange],
        )
        return
    got = ctx.factory.get(obj)
    if got.status != 404:
        ctx.fail(
            "lifecycle",
            got,
            f"a deleted {res.name} record still answers {got.status}; expected 404",
            key="deleted-visible",
            before=[obj.exchange, ex],
        )
        return
    seen, lst = listed(ctx, res, obj)
    if seen and lst is not None:
        ctx.fail(
            "lifecycle",
            lst,
            f"a deleted {res.name} record is still listed",
            key="deleted-listed",
            before=[obj.exchange, ex],
        )
        return
    again = ctx.client.call(op, path=obj.path)
    if again.status != 404:
        ctx.fail(
            "lifecycle",
            again,
            f"deleting a deleted {res.name} record answered {again.status}; expected 404",
            key="delete-twice",
            before=[obj.exchange, ex],
        )
        return
    ctx.results.ok("lifecycle", op.label)
