"""tenancy: a record created with `--token` is invisible and untouchable with `--other-token`
(a token of another account): get answers 404, lists never show it, update/delete/actions are
refused, and afterwards the owner still sees it unchanged."""

from __future__ import annotations

import json
from typing import Any

from contract import MISSING, Resource

from ..factory import CannotCreate, Created
from ..success import _linked_from, _via_link
from . import Context, created_records, family, references
from .common import example_body


@family(
    "tenancy",
    "records of one account are invisible and untouchable with another account's token",
    needs=("other",),
)
def run(ctx: Context) -> None:
    for res, obj in created_records(ctx, "tenancy"):
        _probe(ctx, res, obj)
        _totals(ctx, res)
    for res in ctx.contract.resources.values():  # made through a link (a node, by a join token)
        linked = (
            res.get_op is not None and res.create_op is not None and _linked_from(ctx.contract, res.create_op)
        )
        if linked and res.create_op is not None and _via_link(ctx.contract, ctx.factory, res.create_op):
            made = [c for c in ctx.factory.created if c.resource is res and not c.deleted]
            if made:
                _probe(ctx, res, made[-1])
    references.run(ctx)


def _totals(ctx: Context, res: Resource) -> None:
    """A record another account creates changes neither the owner's list nor its total."""
    op = res.list_op
    if op is None or op.path_params or ctx.contract.listing.locate("total") is None:
        return
    first = ctx.client.call(op)
    if first.status != 200:
        return
    try:
        theirs = ctx.factory.create(res, as_="other")
    except CannotCreate:
        return
    again = ctx.client.call(op)
    was, now = ctx.contract.total(first.json()), ctx.contract.total(again.json())
    if again.status == 200 and was is not None and now is not None and now != was:
        ctx.fail(
            "tenancy",
            again,
            f"the owner's {res.name} total went from {was} to {now} when another account created one",
            key="total",
            before=[first, theirs.exchange],
        )
    elif again.status == 200 and _leaks(again.content, theirs.id):
        ctx.fail(
            "tenancy", again, f"the owner's {res.name} list shows another account's record", key="list-in"
        )
    else:
        ctx.results.ok("tenancy", op.label)


def _leaks(body: bytes, ident: str) -> bool:
    return json.dumps(ident).encode() in body or ident.encode() in body


def _probe(ctx: Context, res: Resource, obj: Created) -> None:
    assert res.get_op is not None
    factory, client = ctx.factory, ctx.client
    factory.settle(obj, ctx.settle_timeout, changed=True)  # a running backup cannot be restored yet
    before = factory.extract(res.get_op, factory.get(obj))
    ex = factory.get(obj, as_="other")
    if ex.status == 401:
        ctx.fail("tenancy", ex, "the other token was rejected (401): is it valid for this API?", key="401")
        return
    if 200 <= ex.status < 300:
        ctx.fail(
            "tenancy",
            ex,
            f"another account can read a {res.name} record it does not own",
            key="read",
            before=[obj.exchange],
        )
    elif ex.status != 404:
        ctx.fail(
            "tenancy",
            ex,
            f"another account's read answered {ex.status}; expected 404 (indistinguishable "
            "from a missing record)",
            key="read-status",
        )
    else:
        ctx.results.ok("tenancy", res.get_op.label)
    if res.list_op is not None:
        path = obj.parent_path if res.list_op.path_params else {}
        lst = client.call(res.list_op, as_="other", path=path)
        if 200 <= lst.status < 300 and _leaks(lst.content, obj.id):
            ctx.fail(
                "tenancy",
                lst,
                f"another account's list shows a {res.name} record it does not own",
                key="list",
                before=[obj.exchange],
            )
        elif lst.status < 500:
            ctx.results.ok("tenancy", res.list_op.label)
    touched: list[str] = []
    if res.update_op is not None:
        body = factory.body(res.update_op, res, depth=9)
        kwargs: dict[str, Any] = {"body": body} if body is not MISSING else {}
        up = client.call(res.update_op, as_="other", path=obj.path, **kwargs)
        _refused(ctx, up, "update", res, touched, obj)
    for action in res.actions:
        if action.method not in ("post", "put", "patch", "delete", "get"):
            continue
        body = example_body(action)
        kwargs = {"body": body} if body is not MISSING else {}
        path = {p.name: obj.id for p in action.path_params[:1]}
        path.update({p.name: "cf0missing" for p in action.path_params[1:]})
        act = client.call(action, as_="other", path=path, **kwargs)
        _refused(ctx, act, "read" if action.method == "get" else "act on", res, touched, obj)
    if res.delete_op is not None:
        gone = factory.delete(obj, as_="other")
        if gone is not None:
            _refused(ctx, gone, "delete", res, touched, obj)
    after = factory.get(obj)
    if after.status != 200:
        ctx.fail(
            "tenancy",
            after,
            f"the owner lost its {res.name} record after another account's requests "
            f"({', '.join(touched) or 'refused'})",
            key="owner-lost",
        )
        obj.deleted = after.status == 404
    elif isinstance(before, dict):
        now = factory.extract(res.get_op, after)
        changed = sorted(
            k
            for k in before
            if isinstance(now, dict)
            and k not in ("updated_at", res.status_field)
            and now.get(k) != before.get(k)
        )
        if changed:
            ctx.fail(
                "tenancy",
                after,
                f"another account's requests changed the owner's record: {changed}",
                key="owner-changed",
            )


def _refused(ctx: Context, ex: Any, verb: str, res: Resource, touched: list[str], obj: Created) -> None:
    if 200 <= ex.status < 300:
        touched.append(ex.label)
        ctx.fail(
            "tenancy",
            ex,
            f"another account could {verb} a {res.name} record it does not own",
            key=verb,
            before=[obj.exchange],
        )
    elif ex.status >= 500:
        ctx.fail("tenancy", ex, f"another account's {verb} caused a server error", key=f"{verb}-5xx")
    else:
        ctx.results.ok("tenancy", ex.label)
