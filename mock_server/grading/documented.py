"""Rules on keeping to the contract: documented operations, requests its schemas accept."""

from __future__ import annotations

from .rules import Context, Verdict, failed, passed, rule

INVALID = frozenset({400, 413, 415, 422})


@rule("documented-operations", "calls only operations the contract documents")
def documented_operations(ctx: Context) -> Verdict:
    basis = f"the paths and methods of {ctx.spec.name}'s spec"
    bad = [r["request_id"] for r in ctx.rows if r.get("operation") is None and r["status"] in (404, 405)]
    if bad:
        return failed(f"{len(bad)} request(s) to no documented operation (404/405)", bad, basis)
    if not ctx.rows:
        return Verdict("not exercised", "no requests", [], basis)
    return passed(f"{len(ctx.rows)} request(s), all to documented operations", basis)


@rule("valid-requests", "sends requests the contract's schemas accept")
def valid_requests(ctx: Context) -> Verdict:
    basis = "the parameter and body schemas of each operation"
    judged = [r for r in ctx.rows if r.get("operation")]
    most = ctx.spec.pagination.max
    if most is not None:  # a page size above the maximum is `page-size`'s to judge
        judged = [r for r in judged if not _oversized(r.get("page"), most)]
    bad = [
        r["request_id"]
        for r in judged
        if r["status"] in INVALID
        and not any(p.get("field") in ("fault", "Prefer") for p in r.get("problems") or ())
    ]
    if bad:
        return failed(f"{len(bad)} request(s) the schemas refuse", bad, basis)
    if not judged:
        return Verdict("not exercised", "called no operation", [], basis)
    return passed(f"{len(judged)} request(s), each valid", basis)


def _oversized(page: dict[str, object] | None, most: int) -> bool:
    size = page.get("size") if page else None
    return isinstance(size, int) and size > most
