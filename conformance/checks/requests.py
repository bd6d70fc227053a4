"""generated, requires: what an operation does with the body it is sent, as declared.

- `x-generated: [field, ...]`: a field the request may omit; the response then returns one
  (Nurosentrix' clone: "If admin_password is omitted, Nurosentrix will generate one and return
  it in the response").
- `x-requires: {field: {collection, status}}`: the body field names a record that must be in
  `status`; one not yet there is refused, 4xx ("Creates a new instance from a completed backup").

Both run the operation's success path: the record it acts on, created and settled; the record
the field names, created under it (and settled, for the success)."""

from __future__ import annotations

from typing import Any

from contract import Contract, Operation

from ..factory import CannotCreate, Created
from . import Context, family
from .common import resource_of


def _declares(contract: Contract) -> str | None:
    if any(op.generated or op.requires for op in contract.operations):
        return None
    return "no operation declares x-generated or x-requires"


def _data(ctx: Context, ex: Any) -> dict[str, Any]:
    body = ex.json()
    data = ctx.judged.data(body)
    return data if isinstance(data, dict) else body if isinstance(body, dict) else {}


def _setup(ctx: Context, op: Operation) -> tuple[dict[str, Any], dict[str, Created], dict[str, Any]]:
    """Path parameters addressing a settled record `op` acts on, a fresh record for each field
    `x-requires` names (created under it when its collection is a child), and the body naming
    them — built first, so the named records are sent while still fresh (a backup in progress)."""
    res = resource_of(ctx.contract, op)
    path: dict[str, Any] = {}
    owner = None
    if res is not None and op.path_params:
        owner = ctx.factory.create(res)
        ctx.factory.settle(owner, ctx.settle_timeout, changed=True)
        path = {op.path_params[-1].name: owner.id}
    base = ctx.factory.body(op)
    named: dict[str, Created] = {}
    for field, need in op.requires.items():
        target = ctx.contract.resources[need.collection]
        link = target.parent
        under = owner if owner is not None and link and link.name == owner.resource.name else None
        named[field] = ctx.factory.create(target, parent=under)
    body = {**(base if isinstance(base, dict) else {}), **{f: c.id for f, c in named.items()}}
    return path, named, body


def _status(ctx: Context, made: Created) -> Any:
    ex = ctx.factory.get(made)
    return _data(ctx, ex).get(made.resource.status_field) if ex.status == 200 else None


def _adopt(ctx: Context, op: Operation, ex: Any, sent: dict[str, Any]) -> None:
    """A record the operation made (a clone) is deleted with the rest at the end of the run."""
    res = resource_of(ctx.contract, op)
    data = _data(ctx, ex)
    if res is not None and "id" in data:
        ctx.factory.created.append(Created(res, str(data["id"]), data, sent, {}, ex))


@family(
    "requires", "a body field naming a record not yet in the required status is refused", applies=_declares
)
def run_requires(ctx: Context) -> None:
    for op in ctx.contract.operations:
        needs = op.requires
        if not needs:
            continue
        try:
            path, named, body = _setup(ctx, op)
        except CannotCreate as exc:
            ctx.results.skip("requires", exc.reason, op.label)
            continue
        early = {f: c for f, c in named.items() if c.data.get(c.resource.status_field) != needs[f].status}
        if not early:
            ctx.results.skip("requires", "the named records are created in the required status", op.label)
            continue
        ex = ctx.client.call(op, path=path, body=body)
        if 200 <= ex.status < 300:
            _adopt(ctx, op, ex, body)
            # accepted: a violation only if the record is still not there (it may have got there meanwhile)
            states = {f: _status(ctx, c) for f, c in early.items()}
            still = {f: s for f, s in states.items() if s != needs[f].status}
            if not still:
                ctx.results.skip("requires", "the named records reached the status meanwhile", op.label)
                continue
            wanted = {f: needs[f].status for f in still}
            ctx.fail("requires", ex, f"accepted {still} (documented: {wanted})",
                     before=[c.exchange for c in named.values()])  # fmt: skip
        else:
            ctx.results.ok("requires", op.label)


@family("generated", "a field omitted from the request is generated and returned", applies=_declares)
def run_generated(ctx: Context) -> None:
    for op in ctx.contract.operations:
        fields = op.generated
        if not fields:
            continue
        try:
            path, named, body = _setup(ctx, op)
            for made in named.values():
                ctx.factory.settle(made, ctx.settle_timeout, changed=True)
        except CannotCreate as exc:
            ctx.results.skip("generated", exc.reason, op.label)
            continue
        body = {k: v for k, v in body.items() if k not in fields}
        ex = ctx.client.call(op, path=path, body=body)
        if not 200 <= ex.status < 300:
            ctx.results.skip("generated", f"the request answered {ex.status}", op.label)
            continue
        _adopt(ctx, op, ex, body)
        data = _data(ctx, ex)
        missing = [f for f in fields if data.get(f) in (None, "")]
        if missing:
            ctx.fail("generated", ex, f"{missing} omitted, not returned (documented: generated)",
                     before=[c.exchange for c in named.values()])  # fmt: skip
        else:
            ctx.results.ok("generated", op.label)
