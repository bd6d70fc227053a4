"""statuses: what the documents' table of statuses says a refusal is for (`x-sandbox.status-table`),
read from outside:

* `insufficient-permissions` (403): the full token holds every permission, so no documented
  operation refuses it so (each is sent its example body, or an id that names nothing);
* `not-found` (404): a read of a well-formed id that names nothing is never a success. The row is
  the API's, not an endpoint's, so reads the documents do not show are judged too: a backend
  without such a read answers 404 or 405 and passes.

The `invalid-parameters` row (400) is Schemathesis' `negative_data_rejection`'s: its refusals of
invalid data must carry that status (`schemathesis_phase`).
"""

from __future__ import annotations

from contract import MISSING, Contract

from . import Context, family
from .common import missing_path, protected

PERMISSIONS, NOT_FOUND = "insufficient-permissions", "not-found"


def applies(contract: Contract) -> str | None:
    if contract.status_for(PERMISSIONS) is None and contract.status_for(NOT_FOUND) is None:
        return "the spec declares no status table (x-sandbox.status-table) saying what 403 or 404 is for"
    return None


@family(
    "statuses",
    "the documented status table: the full token never gets 403; an unknown id is never found",
    applies=applies,
)
def run(ctx: Context) -> None:
    contract = ctx.contract
    forbidden = contract.status_for(PERMISSIONS)
    if forbidden is not None:
        for op in protected(contract):
            if op.provenance.inferred:
                continue
            body = ctx.factory.body(op, depth=9) if op.body_schema is not None else MISSING
            kwargs = {"body": body} if body is not MISSING else {}
            ex = ctx.client.call(op, path=missing_path(contract, op), **kwargs)  # created: cleaned up
            if ex.status == forbidden:
                ctx.fail(
                    "statuses",
                    ex,
                    f"{forbidden} (insufficient permissions, says the status table) to the full token, "
                    "which holds every permission",
                    key="full-token-forbidden",
                )
            else:
                ctx.results.ok("statuses", op.label)
    if contract.status_for(NOT_FOUND) is not None:
        for res in contract.resources.values():
            op = res.get_op
            if op is None or op.public:
                continue
            ex = ctx.client.call(op, path=missing_path(contract, op))
            if 200 <= ex.status < 300:
                ctx.results.fail(
                    "statuses",
                    ex.label,
                    f"an id that names nothing answered {ex.status}; the status table says a resource "
                    "that does not exist is not found",
                    curl=ex.curl(),
                    response=ex.summary(),
                    key="unknown-id-found",
                    api_wide=True,
                )
            else:
                ctx.results.ok("statuses", op.label)
