"""modes: with `--live-token` (a live-mode token of `--token`'s account, `--token` being a
test-mode one), a record made in one mode is invisible in the other, both ways: its get is not
answered 2xx and the other mode's list does not show it (one record made with each token, deleted
at the end). Where the spec keeps the modes apart by its own choice (`x-sandbox.modes-inferred`:
the documents state no test mode), the findings are reported apart."""

from __future__ import annotations

from contract import Contract, Resource

from ..factory import CannotCreate
from . import Context, family
from .tenancy import _leaks

CHECK = "modes"
FLAG = {"token": "--token", "live": "--live-token"}


def _applies(contract: Contract) -> str | None:
    return None if len(set(contract.token_prefixes.values())) > 1 else "the spec declares one token mode"


def _collection(ctx: Context) -> Resource | None:
    """A top-level collection the suite can create, read and list."""
    for res in ctx.contract.resources.values():
        ops = (res.create_op, res.get_op, res.list_op)
        if all(op is not None and not op.path_params for op in (res.create_op, res.list_op)) and all(ops):
            return res
    return None


@family(
    CHECK,
    "records made with a test-mode token are invisible to a live-mode one of the account, and back",
    needs=("live",),
    applies=_applies,
)
def run(ctx: Context) -> None:
    if ctx.contract.modes_provenance.inferred:
        ctx.results.inferred_checks[CHECK] = (
            f"the modes are not in the documents ({ctx.contract.modes_provenance.reason})"
        )
    res = _collection(ctx)
    if res is None or res.get_op is None or res.list_op is None:
        ctx.results.skip(CHECK, "no top-level collection can be created, read and listed")
        return
    for owner, viewer in (("token", "live"), ("live", "token")):
        try:
            obj = ctx.factory.create(res, as_=owner)
        except CannotCreate as exc:
            ctx.results.skip(
                CHECK,
                f"cannot create {res.name} with {FLAG[owner]}: {exc.reason}",
                res.create_op.label if res.create_op else "*",
            )
            continue
        made = f"made with {FLAG[owner]}"
        got = ctx.factory.get(obj, as_=viewer)
        if 200 <= got.status < 300:
            ctx.fail(
                CHECK,
                got,
                f"a {res.name} record {made} is readable in the other mode",
                key=f"read:{owner}",
                before=[obj.exchange],
            )
        elif got.status == 401:
            ctx.fail(CHECK, got, f"{FLAG[viewer]} was rejected (401): is it valid for this API?", key="401")
            return
        else:
            ctx.results.ok(CHECK, res.get_op.label)
        listed = ctx.client.call(res.list_op, as_=viewer)
        if 200 <= listed.status < 300 and _leaks(listed.content, obj.id):
            ctx.fail(
                CHECK,
                listed,
                f"the other mode's list shows a {res.name} record {made}",
                key=f"list:{owner}",
                before=[obj.exchange],
            )
        elif listed.status < 500:
            ctx.results.ok(CHECK, res.list_op.label)
