"""scopes: with `--limited-token`, every operation needing a scope the token lacks answers 403
naming it (documented body; its error code too where a document states it, `x-stated-code`), and
every operation it may do is not refused.

When the suite minted the limited token (`--sandbox`) it knows the token's scopes and checks
each operation exactly. For a token given by hand it infers them: a 403 must name one of the
operation's `x-scopes`; a scope named in some 403 is missing, so any other operation needing it
must be refused too; and a token documented to lack a write scope must be refused somewhere.
"""

from __future__ import annotations

from contract import MISSING, Contract, Operation

from ..http import Exchange
from . import Context, family
from .common import missing_path

WRITE_METHODS = {"post", "put", "patch", "delete"}


def applies(contract: Contract) -> str | None:
    if not contract.scopes:
        return "the spec declares no scopes (x-sandbox.scopes): any valid token may do anything"
    if not any(op.scopes and not op.public for op in contract.operations):
        return "no operation declares x-scopes"
    return None


@family(
    "scopes",
    "operations needing a scope the limited token lacks get 403 naming it; the rest are allowed",
    needs=("limited",),
    applies=applies,
)
def run(ctx: Context) -> None:
    contract = ctx.contract
    scoped = [op for op in contract.operations if op.scopes and not op.public]
    held = set(ctx.limited_scopes) if ctx.limited_scopes is not None else None
    outcomes: list[tuple[Operation, Exchange]] = []
    for op in scoped:
        body = ctx.factory.body(op, depth=9) if op.body_schema is not None else MISSING
        kwargs = {"body": body} if body is not MISSING else {}
        ex = ctx.client.call(op, as_="limited", path=missing_path(contract, op), **kwargs)
        outcomes.append((op, ex))  # what it creates, the run's tracker deletes at the end
    named: set[str] = set()
    for op, ex in outcomes:
        if ex.status == 403:
            data = ex.json()
            codes = ctx.judged.codes_for(ctx.judged_op(op), 403)  # where a document states the body
            code = ctx.judged.error_code(data)
            if codes and code not in codes:
                ctx.fail("scopes", ex, f"403 error code {code!r}, documented {sorted(codes)}", key="code")
            message = contract.error_message(data)
            text = message if isinstance(message, str) else ex.content.decode("utf-8", "replace")
            hits = [s for s in op.scopes if s in text]
            named.update(s for s in contract.scopes if s in text)
            if not hits:
                ctx.fail(
                    "scopes",
                    ex,
                    f"403 does not name a scope this operation needs ({', '.join(op.scopes)})",
                    key="unnamed",
                )
            elif held is not None and not [s for s in hits if s not in held]:
                ctx.fail("scopes", ex, f"403 names {hits}, which the token holds", key="held")
    refused_any = False
    for op, ex in outcomes:
        missing = (
            [s for s in op.scopes if s not in held]
            if held is not None
            else [s for s in op.scopes if s in named]
        )
        if ex.status == 403:
            refused_any = True
            if held is not None and not missing:
                ctx.fail(
                    "scopes",
                    ex,
                    f"refused although the token holds {', '.join(op.scopes)}",
                    key="overrefused",
                )
            elif held is not None or [s for s in op.scopes if s in named]:
                ctx.results.ok("scopes", op.label)
        elif ex.status == 401:
            ctx.fail(
                "scopes", ex, "the limited token was rejected (401): is it valid for this API?", key="401"
            )
        elif missing:
            ctx.fail(
                "scopes",
                ex,
                f"answered {ex.status} to a token lacking {', '.join(missing)}; expected 403",
                key="ignored",
            )
        else:
            ctx.results.ok("scopes", op.label)
    lacks_write = held is None or any(
        s not in held for op in scoped if op.method in WRITE_METHODS for s in op.scopes
    )
    if not refused_any and lacks_write:
        ctx.results.fail(
            "scopes",
            "*",
            "no operation refused the limited token (403): scopes are not enforced",
            key="none-refused",
        )
