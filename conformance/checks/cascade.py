"""cascade: for each collection declaring `cascade` (specs/EXTENSIONS.md), a record is created
with a child of each named collection (created directly, or by the signed webhook that makes
them); once the record is deleted, each child's get answers 404."""

from __future__ import annotations

from typing import Any

from contract import Contract, Resource

from ..factory import CannotCreate, Created
from ..success import _webhook
from . import Context, family

CHECK = "cascade"


def _applies(contract: Contract) -> str | None:
    declares = any(res.cascade for res in contract.resources.values())
    return None if declares else "no collection declares cascade"


def _children(ctx: Context, child: Resource, parent: Created) -> list[str]:
    """Ids of `child` records under `parent`, made first if the spec says how."""
    link = child.parent
    if child.create_op is not None:
        ctx.factory.create(child, parent=parent)
    else:
        for op in ctx.contract.operations:
            sig = op.signature
            if sig is not None and sig.resource == parent.resource.name:
                _webhook(ctx.contract, ctx.factory, op, sig, None, owner=parent)
    if child.list_op is None or link is None:
        return []
    listed = ctx.client.call(child.list_op, path={link.param: parent.id})
    items: list[Any] = ctx.factory.items(child.list_op, listed) or []
    return [str(i["id"]) for i in items if isinstance(i, dict) and "id" in i]


@family(CHECK, "deleting a record deletes the children the documents say it does", applies=_applies)
def run(ctx: Context) -> None:
    for res in ctx.contract.resources.values():
        for name in res.cascade:
            child = ctx.contract.resources[name]
            if child.get_op is None:
                ctx.results.skip(CHECK, f"{res.name} -> {name}: no operation reads a {name} record")
                continue
            try:
                parent = ctx.factory.create(res)
                ids = _children(ctx, child, parent)
            except CannotCreate as exc:
                ctx.results.skip(CHECK, f"{res.name} -> {name}: {exc.reason}", child.get_op.label)
                continue
            if not ids:
                ctx.results.skip(CHECK, f"{res.name} -> {name}: no child could be made", child.get_op.label)
                continue
            gone = ctx.factory.delete(parent)
            if gone is None or not 200 <= gone.status < 300:
                ctx.results.skip(CHECK, f"{res.name} -> {name}: the delete was refused", child.get_op.label)
                continue
            path_name = child.get_op.path_params[-1].name
            left = [
                ex
                for cid in ids
                if (ex := ctx.client.call(child.get_op, path={path_name: cid})).status != 404
            ]
            if left:
                ctx.fail(CHECK, left[0], f"{len(left)} {name} of a deleted {res.name} still answer "
                         f"{left[0].status} (documented: deleted with it)", before=[gone])  # fmt: skip
            else:
                ctx.results.ok(CHECK, child.get_op.label)
                for made in ctx.factory.created:  # gone: nothing left for the cleanup or success paths
                    if made.resource is child and made.id in ids:
                        made.deleted = True
