"""events: a webhook receiver does what each documented event says (`x-events`): a record of
`x-signature.resource` is created, a delivery of each named body example is sent for it (signed
with the record's secret or `--webhook-secret` when the suite has one; unsigned else, the documents
stating no signature), and `makes` must add a record to its collection under it, `removes` must
take the one made away (its get answers 404, or its status is no longer what it was)."""

from __future__ import annotations

import copy
from typing import Any

from contract import Contract, Event, Operation, Resource

from ..factory import CannotCreate, Created
from ..http import Exchange
from ..success import _example, _signed
from . import Context, family

CHECK = "events"


def _applies(contract: Contract) -> str | None:
    declared = any(op.events and op.signature for op in contract.operations)
    return None if declared else "no webhook receiver declares x-events"


def _ids(ctx: Context, child: Resource, owner: Created) -> list[str] | None:
    """The ids of `child` records under `owner` (None when the list cannot be read)."""
    if child.list_op is None or child.parent is None:
        return None
    ex = ctx.client.call(child.list_op, path={child.parent.param: owner.id})
    items = ctx.factory.items(child.list_op, ex) if 200 <= ex.status < 300 else None
    if items is None:
        return None
    return [str(i["id"]) for i in items if isinstance(i, dict) and "id" in i]


def _deliver(ctx: Context, op: Operation, event: Event, owner: Created) -> Exchange:
    """A delivery of `event`'s example naming `owner` (`x-signature.match`), signed when the
    suite knows a secret; a required header whose enum names the event says which it is."""
    sig = op.signature
    assert sig is not None
    body: Any = copy.deepcopy(event.body) if isinstance(event.body, dict) else {}
    for dotted, source in sig.match.items():
        target = body
        *parents, last = str(dotted).split(".")
        for name in parents:
            target = target.setdefault(name, {})
        target[last] = owner.data.get(str(source), owner.sent.get(str(source)))
    headers: dict[str, str] = {}
    secret = ctx.webhook_secret or owner.data.get(sig.secret_field)
    signed = _signed(op, body, secret) if isinstance(secret, str) else None
    if signed is not None:
        headers.update(signed[1])
    for p in op.params:
        if p.location == "header" and p.required and p.name not in headers:
            enum = p.schema.get("enum") or []
            example = _example(op, p.name)
            value = event.example if event.example in enum else example
            if value is not None:
                headers[p.name] = str(value)
    return ctx.client.call(op, as_=None, body=body, headers=headers)


@family(
    CHECK, "each documented webhook event does what it says: a push makes, a delete removes", applies=_applies
)
def run(ctx: Context) -> None:
    for op in ctx.contract.operations:
        if op.events and op.signature is not None:
            _receiver(ctx, op)


def _receiver(ctx: Context, op: Operation) -> None:
    assert op.signature is not None
    res = ctx.contract.resources.get(op.signature.resource)
    if res is None:
        return
    try:
        owner = ctx.factory.create(res)
    except CannotCreate as exc:
        ctx.results.skip(CHECK, f"cannot create {res.name}: {exc.reason}", op.label)
        return
    made: dict[str, list[str]] = {}
    for event in op.events:
        child = ctx.contract.resources.get(event.collection)
        before = _ids(ctx, child, owner) if child is not None else None
        if child is None or child.get_op is None or before is None:
            ctx.results.skip(
                CHECK, f"{event.example}: the {event.collection} of a {res.name} cannot be listed", op.label
            )
            continue
        settled: dict[str, Any] = {}
        if event.effect == "removes":
            for cid in made.get(event.collection, []):
                record = Created(child, cid, {}, {}, {}, owner.exchange)
                settled[cid] = ctx.factory.settle(record, ctx.settle_timeout).get(child.status_field)
            if not settled:
                ctx.results.skip(
                    CHECK, f"{event.example}: no {event.collection} made by an earlier delivery", op.label
                )
                continue
        ex = _deliver(ctx, op, event, owner)
        if ex.status in (401, 403):
            ctx.results.skip(
                CHECK,
                f"the receiver refused an {'unsigned ' if ctx.webhook_secret is None else ''}"
                f"delivery ({ex.status}): give --webhook-secret",
                op.label,
            )
            return
        if not 200 <= ex.status < 300:
            ctx.fail(
                CHECK,
                ex,
                f"a {event.example} delivery answered {ex.status}",
                key=f"{event.example}:status",
                before=[owner.exchange],
            )
            continue
        if event.effect == "makes":
            after = _ids(ctx, child, owner) or []
            new = [i for i in after if i not in before]
            if new:
                made.setdefault(event.collection, []).extend(new)
                ctx.results.ok(CHECK, op.label)
            else:
                ctx.fail(
                    CHECK,
                    ex,
                    f"a {event.example} delivery made no {event.collection} record under its {res.name}",
                    key=f"{event.example}:made-none",
                    before=[owner.exchange],
                )
            continue
        path_name = child.get_op.path_params[-1].name
        for cid, was in settled.items():
            got = ctx.client.call(child.get_op, path={path_name: cid})
            data = ctx.factory.extract(child.get_op, got) if 200 <= got.status < 300 else None
            now = data.get(child.status_field) if isinstance(data, dict) else None
            if got.status == 404 or (data is not None and now != was):
                ctx.results.ok(CHECK, op.label)
            elif data is not None:
                ctx.fail(
                    CHECK,
                    got,
                    f"after a {event.example} delivery the {event.collection} record it names is "
                    f"still there, status {now!r} as before",
                    key=f"{event.example}:kept",
                    before=[ex],
                )
