"""tenancy, continued: the operations that take another record's id outside a path the tenancy
probe walks. A body field naming a record (`belongs-to` on a create, `x-requires`) refuses a
record of another account; a record no operation creates (an environment a signed delivery
makes) cannot be read or acted on by another account; nor can a record only deleted (an API key)
be deleted by one."""

from __future__ import annotations

from typing import Any

from contract import MISSING, Operation, Resource

from ..factory import CannotCreate, Created
from ..success import _delivered
from . import Context
from .common import example_body, resource_of

CHECK = "tenancy"


def run(ctx: Context) -> None:
    for op in ctx.contract.operations:
        for field, collection in _named(ctx, op).items():
            _foreign_reference(ctx, op, field, ctx.contract.resources[collection])
    for res in ctx.contract.resources.values():
        if res.create_op is None and res.get_op is not None:
            _delivered_record(ctx, res)
        elif res.get_op is None and res.create_op is not None and res.delete_op is not None:
            _delete_only(ctx, res)


def _named(ctx: Context, op: Operation) -> dict[str, str]:
    """Body field -> the collection whose record it names, as declared."""
    fields = set((op.body_schema or {}).get("properties") or {})
    named = {f: need.collection for f, need in op.requires.items()}
    for res in ctx.contract.resources.values():
        if res.create_op is op:
            named.update(res.belongs_to)
    return {f: c for f, c in named.items() if f in fields and c in ctx.contract.resources}


def _foreign_reference(ctx: Context, op: Operation, field: str, target: Resource) -> None:
    """`op`, sent with the other token, naming the owner's `target` record in `field`: refused."""
    factory = ctx.factory
    try:
        theirs = factory.create(target)
        factory.settle(theirs, ctx.settle_timeout, changed=True)  # e.g. a backup cloned only once done
        path: dict[str, Any] = {}
        acting = resource_of(ctx.contract, op)
        if op.path_params and acting is not None:
            mine = factory.create(acting, as_="other")
            factory.settle(mine, ctx.settle_timeout, changed=True)
            path = {op.path_params[-1].name: mine.id}
        body = factory.body(op, as_="other")
    except CannotCreate as exc:
        ctx.results.skip(CHECK, f"{field} of another account: {exc.reason}", op.label)
        return
    if not isinstance(body, dict):
        return
    body[field] = theirs.id
    ex = ctx.client.call(op, as_="other", path=path, body=body)
    if 200 <= ex.status < 300:
        made = resource_of(ctx.contract, op)  # the create's collection; a clone's (instances)
        data = factory.extract(op, ex)
        if made is not None and isinstance(data, dict) and "id" in data:  # deleted at the end
            factory.created.append(Created(made, str(data["id"]), data, body, path, ex, owner="other"))
        ctx.fail(CHECK, ex, f"another account could name a {target.name} record it does not own in "
                 f"`{field}`", key=f"reference-{field}", before=[theirs.exchange])  # fmt: skip
    elif ex.status >= 500:
        ctx.fail(
            CHECK, ex, f"naming another account's {target.name} caused a server error", key="reference-5xx"
        )
    else:
        ctx.results.ok(CHECK, op.label)


def _delivered_record(ctx: Context, res: Resource) -> None:
    """A record only a delivery makes: another account's get and every action on it refused."""
    assert res.get_op is not None
    known = _delivered(ctx.contract, ctx.factory, res, ctx.webhook_secret)
    if not known:
        ctx.results.skip(CHECK, f"no {res.name} record could be made (a signed delivery)", res.get_op.label)
        return
    obj = known[-1]
    for op in (res.get_op, *res.actions):
        body = example_body(op)
        kwargs: dict[str, Any] = {"body": body} if body is not MISSING else {}
        path = {p.name: obj.id for p in op.path_params[:1]}
        ex = ctx.client.call(op, as_="other", path=path, **kwargs)
        if 200 <= ex.status < 300:
            verb = "read" if op.method == "get" else "act on"
            ctx.fail(CHECK, ex, f"another account could {verb} a {res.name} record it does not own",
                     key=f"{verb}-{res.name}", before=[obj.exchange])  # fmt: skip
        elif ex.status >= 500:
            ctx.fail(CHECK, ex, f"another account's request on a {res.name} caused a server error",
                     key=f"{res.name}-5xx")  # fmt: skip
        else:
            ctx.results.ok(CHECK, op.label)


def _delete_only(ctx: Context, res: Resource) -> None:
    """A record with no get (an API key): another account's delete refused, the owner's works."""
    assert res.delete_op is not None
    try:
        obj: Created = ctx.factory.create(res)
    except CannotCreate as exc:
        ctx.results.skip(CHECK, exc.reason, res.delete_op.label)
        return
    ex = ctx.factory.delete(obj, as_="other")
    if ex is not None and 200 <= ex.status < 300:
        ctx.fail(CHECK, ex, f"another account could delete a {res.name} record it does not own",
                 key=f"delete-{res.name}", before=[obj.exchange])  # fmt: skip
    elif ex is not None and ex.status >= 500:
        ctx.fail(
            CHECK, ex, f"another account's delete of a {res.name} caused a server error", key="delete-5xx"
        )
    elif ex is not None:
        ctx.results.ok(CHECK, ex.label)
    ctx.factory.delete(obj)
