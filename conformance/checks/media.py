"""media: a body sent as a type the operation does not take is refused with a 4xx.

The types an operation takes are its `requestBody.content` (JSON for every spec here;
Nurosentrix' document makes it the client's duty: "Content-Type | Yes (POST/PUT) | Must be
application/json", without saying a server refuses another type).
Each operation with a body is sent its valid JSON body once, labelled `text/plain`: a 2xx (or a
5xx) is a violation. Where the documents never say another type is refused
(`x-sandbox.media-inferred`), only the strict profile checks it."""

from __future__ import annotations

from contract import Contract

from ..factory import CannotCreate, Created
from . import Context, family
from .common import resource_of
from .inputs import _keep, _path

OTHER = "text/plain"


def _applies(contract: Contract) -> str | None:
    if not any(op.body_media and not op.public for op in contract.operations):
        return "no operation takes a request body"
    return None


@family("media", "a body of a type the operation does not take is refused (4xx)", applies=_applies)
def run(ctx: Context) -> None:
    if ctx.judge is not None and ctx.judge is not ctx.contract and ctx.contract.media_provenance.inferred:
        ctx.results.skip("media", f"not documented ({ctx.contract.media_provenance.reason})")
        return
    records: dict[str, Created | None] = {}
    for op in ctx.contract.operations:
        if not op.body_media or op.public or OTHER in op.body_media:
            continue  # logins and webhooks need secrets; an op taking text/plain has nothing to refuse
        path = _path(ctx, op, records)
        if path is None:
            ctx.results.skip("media", "no record to address its path parameters with", op.label)
            continue
        try:
            body = ctx.factory.body(op, resource_of(ctx.contract, op))
        except CannotCreate as exc:
            ctx.results.skip("media", exc.reason, op.label)
            continue
        ex = ctx.client.call(op, path=path, body=body, headers={"Content-Type": OTHER})
        _keep(ctx, op, ex)
        if 400 <= ex.status < 500:
            ctx.results.ok("media", op.label)
        else:
            takes = ", ".join(op.body_media)
            ctx.fail("media", ex, f"a body sent as {OTHER} answered {ex.status} (it takes {takes})")
