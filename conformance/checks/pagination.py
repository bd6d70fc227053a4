"""pagination: for every list of the spec's pagination style (`x-sandbox.pagination`), small pages
are disjoint and together cover the collection, meta echoes the request and its total matches,
the default and maximum page sizes are as documented, a size above the maximum is refused, and
a page past the end is empty. Meta is read where the judge's list envelope places it: in the
documented profile only the keys the documents show are demanded (no page, size or total the
documents never place); what a page holds is judged either way."""

from __future__ import annotations

from typing import Any

from contract import Contract, Operation, Resource

from ..factory import CannotCreate, Created
from ..http import Exchange
from . import Context, family

NEW_ITEMS = 3
SMALL = 2
MAX_PAGES = 60


def applies(contract: Contract) -> str | None:
    style = contract.pagination.style
    if style not in ("page", "offset"):
        return f"the spec's lists are not paginated (x-sandbox.pagination.style: {style})"
    return None


@family(
    "pagination",
    "pages are disjoint and cover the collection; meta totals, defaults and maxima as documented",
    applies=applies,
)
def run(ctx: Context) -> None:
    pag = ctx.contract.pagination
    style = pag.style
    for res in ctx.contract.resources.values():
        if res.list_op is None:
            continue
        try:
            path, created, parent = _populate(ctx, res)
        except CannotCreate as exc:
            ctx.results.skip("pagination", f"cannot reach a {res.name} list: {exc.reason}", res.list_op.label)
            continue
        default = pag.default or 20
        if created and res.list_op.provenance.documented and not _shown(ctx, pag.size_param or ""):
            # no documented meta echoes the page size: only a default page of more records than
            # the default shows it (a few more creates, on a documented list only); the cap needs
            # max + 1 records, made only when asked (--fill-to-max)
            target = (pag.max or 100) + 1 if ctx.fill_to_max else default + 1
            created += _fill(ctx, res, res.list_op, path, parent, target)
        _paginate(ctx, res.list_op, path, created, style, default, pag.max or 100)


def _fill(
    ctx: Context, res: Resource, op: Operation, path: dict[str, Any], parent: Created | None, target: int
) -> list[Created]:
    """Records created until the list holds `target` (no more than that many creates)."""
    pag = ctx.contract.pagination
    pages, _, complete = _walk(ctx, op, path, pag.style, pag.max or 100)
    have = sum(len(p) for p in pages)
    made: list[Created] = []
    while complete and have + len(made) < target:
        try:
            made.append(ctx.factory.create(res, parent=parent))
        except CannotCreate as exc:
            ctx.results.notes.append(f"pagination: {res.name}: {exc.reason}; the default page size unseen")
            break
    return made


def _populate(ctx: Context, res: Resource) -> tuple[dict[str, Any], list[Created], Created | None]:
    """Path parameters of the list, its parent record, and a few records created in it (when
    the spec allows)."""
    assert res.list_op is not None
    parent: Created | None = None
    path: dict[str, Any] = {}
    link = res.parent
    if res.list_op.path_params:
        parent_res = ctx.contract.resources.get(link.name) if link else None
        if parent_res is None or link is None:
            raise CannotCreate("its path parameters are not tied to a parent collection")
        parent = ctx.factory.create(parent_res)
        path = {link.param: parent.id}
    created: list[Created] = []
    if res.create_op is not None:
        for _ in range(NEW_ITEMS):
            try:
                created.append(ctx.factory.create(res, parent=parent))
            except CannotCreate as exc:
                ctx.results.notes.append(f"pagination: {res.name}: {exc.reason}; paging what exists")
                break
    return path, created, parent


def _meta(ctx: Context, ex: Exchange, name: str) -> Any:
    """A list meta value, where the judge's list envelope places it (MISSING if it names none)."""
    return ctx.judged.listing.extract(ex.json(), name)


def _shown(ctx: Context, name: str) -> bool:
    """Whether the judge's list envelope has `$name`: in the documented profile a meta key the
    documents do not show (`x-sandbox.envelope.inferred`) is not demanded."""
    return ctx.judged.listing.locate(name) is not None


def _query(style: str, index: int, size: int) -> dict[str, int]:
    return (
        {"page": index + 1, "per_page": size} if style == "page" else {"limit": size, "offset": index * size}
    )


def _walk(
    ctx: Context, op: Operation, path: dict[str, Any], style: str, size: int
) -> tuple[list[list[str]], list[Exchange], bool]:
    """Pages of ids, their exchanges, and whether the walk reached the end."""
    pages: list[list[str]] = []
    exchanges: list[Exchange] = []
    for index in range(MAX_PAGES):
        ex = ctx.client.call(op, path=path, query=_query(style, index, size))
        exchanges.append(ex)
        items = ctx.factory.items(op, ex)
        if ex.status != 200 or items is None:
            ctx.fail(
                "pagination", ex, f"page {index + 1} of size {size} answered {ex.status}", key="page-status"
            )
            return pages, exchanges, False
        pages.append([str(i.get("id")) if isinstance(i, dict) else repr(i) for i in items])
        if len(items) > size:
            ctx.fail("pagination", ex, f"a page of size {size} returned {len(items)} items", key="oversize")
        echoed = {k: _meta(ctx, ex, k) for k in _query(style, index, size)}
        expected = _query(style, index, size)
        if any(echoed[k] != v for k, v in expected.items() if _shown(ctx, k)):
            ctx.fail("pagination", ex, f"meta echoes {echoed}, the request asked {expected}", key="echo")
        if len(items) < size:
            return pages, exchanges, True
    return pages, exchanges, False


def _paginate(
    ctx: Context,
    op: Operation,
    path: dict[str, Any],
    created: list[Created],
    style: str,
    default: int,
    maximum: int,
) -> None:
    failures = _count(ctx)
    full_pages, full_ex, complete = _walk(ctx, op, path, style, maximum)
    if not full_ex or full_ex[-1].status != 200:
        return
    full = [i for page in full_pages for i in page]
    dups = sorted({i for i in full if full.count(i) > 1})
    if dups:
        ctx.fail("pagination", full_ex[0], f"the listing repeats ids {dups[:5]}", key="dups")
    totals = {_meta(ctx, ex, "total") for ex in full_ex} if _shown(ctx, "total") else set()
    if len(totals) > 1:
        ctx.fail(
            "pagination",
            full_ex[-1],
            f"meta.total changes from page to page: {sorted(map(str, totals))}",
            key="total-unstable",
        )
    total = next(iter(totals), None)
    if complete and totals and total != len(full):
        ctx.fail(
            "pagination",
            full_ex[0],
            f"meta.total is {total} but the pages hold {len(full)} items",
            key="total",
        )
    lost = [c.id for c in created if c.id not in full]
    if complete and lost:
        ctx.fail(
            "pagination",
            full_ex[0],
            f"{len(lost)} record(s) just created are not listed: {lost[:3]}",
            key="lost",
        )
    # small pages: disjoint, covering, same total
    if complete and len(full) > SMALL:
        small_pages, small_ex, done = _walk(ctx, op, path, style, SMALL)
        seen: list[str] = [i for page in small_pages for i in page]
        overlap = sorted({i for i in seen if seen.count(i) > 1})
        if overlap:
            ctx.fail(
                "pagination",
                small_ex[-1],
                f"pages of {SMALL} overlap: {overlap[:5]} appear twice",
                key="overlap",
            )
        missing = sorted(set(full) - set(seen))
        if done and missing:
            ctx.fail(
                "pagination",
                small_ex[0],
                f"pages of {SMALL} never show {len(missing)} listed item(s)",
                key="cover",
            )
        small_totals = {_meta(ctx, ex, "total") for ex in small_ex} if totals else set()
        if small_totals - {total}:
            ctx.fail(
                "pagination",
                small_ex[0],
                f"meta.total is {sorted(map(str, small_totals))} with pages of "
                f"{SMALL}, {total} with pages of {maximum}",
                key="total-size",
            )
        # past the end
        beyond = ctx.client.call(op, path=path, query=_query(style, len(small_pages), SMALL))
        items = ctx.factory.items(op, beyond)
        if beyond.status == 200 and items:
            ctx.fail("pagination", beyond, f"a page past the end returned {len(items)} items", key="beyond")
    # defaults
    plain = ctx.client.call(op, path=path)
    if plain.status == 200:
        size_key = "per_page" if style == "page" else "limit"
        start_key, start = ("page", 1) if style == "page" else ("offset", 0)
        items = ctx.factory.items(op, plain) or []
        if _shown(ctx, size_key) and _meta(ctx, plain, size_key) != default:
            ctx.fail(
                "pagination",
                plain,
                f"without parameters meta.{size_key} is {_meta(ctx, plain, size_key)!r}; "
                f"the documented default is {default}",
                key="default",
            )
        if _shown(ctx, start_key) and _meta(ctx, plain, start_key) != start:
            ctx.fail(
                "pagination",
                plain,
                f"without parameters meta.{start_key} is {_meta(ctx, plain, start_key)!r}",
                key="start",
            )
        if len(items) > default:
            ctx.fail(
                "pagination",
                plain,
                f"the default page holds {len(items)} items (> {default})",
                key="default-n",
            )
        elif complete and len(items) < min(len(full), default):
            ctx.fail(
                "pagination",
                plain,
                f"the default page holds {len(items)} of {len(full)} listed items; "
                f"the documented default page size is {default}",
                key="default-n",
            )
    # above the maximum
    size_key = "per_page" if style == "page" else "limit"
    over = ctx.client.call(op, path=path, query={size_key: maximum + 1})
    n = len(ctx.factory.items(op, over) or []) if 200 <= over.status < 300 else 0
    # the documents say only "max": capping there is as honest as refusing (strict wants a refusal);
    # a page size echoed in a documented meta shows the cap without max + 1 records
    echoed = _meta(ctx, over, size_key) if _shown(ctx, size_key) else None
    uncapped = isinstance(echoed, int) and not isinstance(echoed, bool) and echoed > maximum
    capped_ok = ctx.judge is not None and ctx.judge is not ctx.contract and n <= maximum and not uncapped
    if 200 <= over.status < 300 and not capped_ok:
        ctx.fail(
            "pagination",
            over,
            f"{size_key}={maximum + 1} (documented maximum {maximum}) was accepted"
            + (f" and returned {n} items" if n > maximum else "")
            + (f"; meta.{size_key} says {echoed}" if uncapped else ""),
            key="max",
        )
    if _count(ctx) == failures:
        ctx.results.ok("pagination", op.label)


def _count(ctx: Context) -> int:
    return sum(1 for v in ctx.results.failing if v.check == "pagination")
