"""credentials: for each operation declaring `x-credential` (specs/EXTENSIONS.md), a created
credential has the documented format, authenticates its probe, never appears in clear in the
list that shows it masked, and answers 401 once its delete has revoked it; for each collection
declaring `masked` fields, a value written is listed, never in clear."""

from __future__ import annotations

from typing import Any

from contract import MISSING, Contract, Resource, body_for

from ..factory import CannotCreate
from . import Context, family
from .common import example_body

CHECK = "credentials"


def _applies(contract: Contract) -> str | None:
    if any(op.credential for op in contract.operations) or any(r.masked for r in contract.resources.values()):
        return None
    return "no operation declares x-credential, no collection masked fields"


def _record(ctx: Context, body: Any) -> dict[str, Any]:
    data = ctx.judged.data(body)
    return data if isinstance(data, dict) else body if isinstance(body, dict) else {}


@family(CHECK, "created credentials: documented format, masked in lists, 401 once revoked", applies=_applies)
def run(ctx: Context) -> None:
    for res in ctx.contract.resources.values():
        if res.masked:
            _masked_list(ctx, res)
    _credentials(ctx)


def _writer(contract: Contract, res: Resource) -> Any:
    upserts = (
        o
        for o in contract.operations
        if o.resource and (o.resource.name, o.resource.op) == (res.name, "upsert")
    )
    return res.create_op or next(upserts, None)


def _masked_list(ctx: Context, res: Resource) -> None:
    """Write a record with a distinctive value in each masked field; the list shows the record
    (as many items as before plus one), never the value."""
    writer, listing = _writer(ctx.contract, res), res.list_op
    if writer is None or listing is None:
        ctx.results.skip(CHECK, f"{res.name}: masked fields, but no operation writes or lists them")
        return
    path: dict[str, Any] = {}
    link = res.parent
    try:
        if link is not None:
            parent = ctx.contract.resources[link.name]
            path = {link.param: ctx.factory.create(parent).id}
    except CannotCreate as exc:
        ctx.results.skip(CHECK, f"{res.name}: {exc}", listing.label)
        return
    body = body_for(writer)
    body = dict(body) if isinstance(body, dict) else {}
    secrets_ = {f: f"conformance-secret-{ctx.factory.unique('v')}" for f in res.masked if f in body}
    if not secrets_:
        ctx.results.skip(CHECK, f"{writer.label}: its example body has no masked field", listing.label)
        return
    body.update(secrets_)
    wrote = ctx.client.call(writer, path=path, body=body)
    if not 200 <= wrote.status < 300:
        ctx.results.skip(CHECK, f"{writer.label} answered {wrote.status}: nothing to list", listing.label)
        return
    listed = ctx.client.call(listing, path=path)
    items = ctx.factory.items(listing, listed) or []
    text = listed.content.decode("utf-8", "replace")
    if not items:
        ctx.fail(CHECK, listed, "the record just written is not listed", key="masked-listed", before=[wrote])
    elif any(v in text for v in secrets_.values()):
        ctx.fail(CHECK, listed, f"the list shows {sorted(secrets_)} in clear (documented masked)",
                 key="masked", before=[wrote])  # fmt: skip
    else:
        ctx.results.ok(CHECK, listing.label)


def _credentials(ctx: Context) -> None:
    contract = ctx.contract
    for op in contract.operations:
        cred = op.credential
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
