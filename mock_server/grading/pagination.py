"""Rules on listings: a page size the contract allows, and each page of a walk fetched once."""

from __future__ import annotations

from .rules import Context, Row, Verdict, failed, passed, rule, unseen


def _first(at: object) -> bool:
    return at in (None, 0, 1, "0", "1")


@rule("page-size", "asks for no more items per page than the documented maximum")
def page_size(ctx: Context) -> Verdict:
    pg = ctx.spec.pagination
    if pg.max is None or pg.size_param is None:
        return unseen(f"{ctx.spec.name} documents no page size maximum")
    basis = f"x-sandbox.pagination.max = {pg.max} ({pg.provenance.describe()})"
    listed = 0
    bad: list[str] = []
    for r in ctx.rows:
        page = r.get("page")
        if page is None:
            continue
        listed += 1
        size = page.get("size")
        if isinstance(size, int) and size > pg.max:
            bad.append(r["request_id"])
    if bad:
        return failed(
            f"asked for {pg.size_param} above {pg.max} in {len(bad)} listing request(s)", bad, basis
        )
    if not listed:
        return unseen("listed nothing", basis)
    return passed(f"{listed} listing request(s), none above {pg.size_param}={pg.max}", basis)


@rule(
    "page-once",
    "fetches each page of one listing once",
    inferred="the documents do not forbid it; a refetched page costs a request and double-counts items",
)
def page_once(ctx: Context) -> Verdict:
    basis = "a walk starts at the first page; a page index met again before that is a refetch"
    walked = 0
    bad: list[str] = []
    for rows in ctx.by_token.values():
        walks: dict[tuple[str, object], dict[object, Row]] = {}
        for r in rows:
            page = r.get("page")
            if page is None or r["status"] >= 300:
                continue
            key = (r["path"], page.get("query"))
            at = page.get("at")
            if _first(at):
                walks[key] = {at if at is not None else "first": r}
                continue
            walk = walks.setdefault(key, {})
            walked += 1
            if at in walk:
                bad += [walk[at]["request_id"], r["request_id"]]
            walk[at] = r
    if bad:
        return failed("fetched the same page twice in one listing", bad, basis)
    if not walked:
        return unseen("never went past a first page", basis)
    return passed(f"{walked} further page(s) fetched, each once", basis)
