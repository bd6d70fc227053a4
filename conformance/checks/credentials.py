"""credentials: for each operation declaring `x-credential` (specs/EXTENSIONS.md), a created
credential has the documented format, authenticates its probe, never appears in clear in the
list that shows it masked, and answers 401 once its delete has revoked it."""

from __future__ import annotations

from typing import Any

from contract import MISSING, Contract
from contract.credentials import credential

from . import Context, family
from .common import example_body

CHECK = "credentials"


def _applies(contract: Contract) -> str | None:
    if any(credential(op) for op in contract.operations):
        return None
    return "no operation declares x-credential"


def _record(ctx: Context, body: Any) -> dict[str, Any]:
    data = ctx.judged.data(body)
    return data if isinstance(data, dict) else body if isinstance(body, dict) else {}


@family(CHECK, "created credentials: documented format, masked in lists, 401 once revoked", applies=_applies)
def run(ctx: Context) -> None:
    contract = ctx.contract
    for op in contract.operations:
        cred = credential(op)
        if cred is None:
            continue
        body = example_body(op)
        created = ctx.client.call(op, **({"body": body} if body is not MISSING else {}))
        record = _record(ctx, created.json())
        secret = record.get(cred.field)
        if not 200 <= created.status < 300 or not isinstance(secret, str) or not secret:
            ctx.fail(CHECK, created, f"no credential in `{cred.field}` of a {created.status}", key="create")
            continue
        clean = True
        if not cred.well_formed(secret):
            clean = False
            ctx.fail(CHECK, created, f"`{cred.field}` does not match the documented format {cred.pattern!r}",
                     key="format")  # fmt: skip
        probe = contract.by_id(cred.probe)
        assert probe is not None  # checked when the spec compiled
        auth = {"Authorization": f"Bearer {secret}"}
        works = ctx.client.call(probe, as_=None, headers=auth)
        if works.status == 401:
            clean = False
            ctx.fail(
                CHECK, works, "a newly created credential is refused (401)", key="probe", before=[created]
            )
        listing = contract.by_id(cred.listed_by) if cred.listed_by else None
        if listing is not None:
            listed = ctx.client.call(listing)
            if secret in listed.content.decode("utf-8", "replace"):
                clean = False
                ctx.fail(CHECK, listed, "the list shows the credential in clear (documented masked)",
                         key="masked", before=[created])  # fmt: skip
        revoke = contract.by_id(cred.revoked_by) if cred.revoked_by else None
        if revoke is not None:  # always: the run leaves the account as it found it
            params = {p.name: record.get("id") for p in revoke.path_params}
            gone = ctx.client.call(revoke, path=params)
            if not 200 <= gone.status < 300:
                ctx.fail(CHECK, gone, f"revoking the credential answered {gone.status}", key="revoke",
                         before=[created])  # fmt: skip
                continue
            after = ctx.client.call(probe, as_=None, headers=auth)
            if works.status != 401 and after.status != 401:
                clean = False
                ctx.fail(CHECK, after, f"a revoked credential answered {after.status}, expected 401",
                         key="revoked", before=[created, gone])  # fmt: skip
        if clean:
            ctx.results.ok(CHECK, op.label)
