"""identity: for each operation declaring `x-identity: <field>`, the record it returns is the
caller's own (Nexos: "GET /auth/me | Get current authenticated user"): two accounts' tokens get
different users, and each token the same one every time. Where the documents show no body the
field is the sandbox's choice: then the two accounts' answers must differ as a whole, and the
field is compared only where both show it."""

from __future__ import annotations

from typing import Any

from contract import Contract

from . import Context, family

CHECK = "identity"


def _applies(contract: Contract) -> str | None:
    return None if any(op.identity for op in contract.operations) else "no operation declares x-identity"


def _data(ctx: Context, ex: Any) -> Any:
    body = ex.json()
    data = ctx.judged.data(body)
    return data if isinstance(data, dict) else body


@family(CHECK, "the caller's own record: two accounts differ, each token gets its own", needs=("other",),
        applies=_applies)  # fmt: skip
def run(ctx: Context) -> None:
    for op in ctx.contract.operations:
        field = op.identity
        if field is None:
            continue
        calls = [ctx.client.call(op, as_=who) for who in ("token", "other", "token", "other")]
        if any(not 200 <= ex.status < 300 for ex in calls):
            bad = next(ex for ex in calls if not 200 <= ex.status < 300)
            ctx.results.skip(CHECK, f"a read answered {bad.status}", op.label)
            continue
        mine, theirs, mine2, theirs2 = (_data(ctx, ex) for ex in calls)
        ids = [d.get(field) if isinstance(d, dict) else None for d in (mine, theirs, mine2, theirs2)]
        if mine == theirs or (ids[0] is not None and ids[0] == ids[1]):
            ctx.fail(CHECK, calls[1], f"two accounts' tokens get the same {field!r} (documented: the "
                     "caller's own)", before=calls[:1])  # fmt: skip
        elif ids[0] != ids[2] or ids[1] != ids[3]:
            ctx.fail(CHECK, calls[2], f"the same token gets another {field!r} on a second read",
                     before=calls[:2])  # fmt: skip
        else:
            ctx.results.ok(CHECK, op.label)
