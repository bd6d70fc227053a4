"""`GET /_mock/requests`: a page of the (bounded) request log, newest last, with the total that
matched the filters for paging (`offset` counts back from the newest); bodies, their secrets
masked, only when asked for (`bodies=1`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .bodies import shown
from .clock import iso


def request_page(
    log: Iterable[dict[str, Any]],
    query: Any,
    make_filter: Callable[[Any], Callable[[dict[str, Any]], bool]],
    as_int: Callable[[str | None, int], int],
) -> dict[str, Any]:
    keep = make_filter(query)
    rows = [r for r in log if keep(r)]
    limit = as_int(query.get("limit"), 100)
    raw = query.get("offset") or "0"
    offset = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 6 else 0
    end = max(len(rows) - offset, 0)
    with_bodies = query.get("bodies") in ("1", "true")
    page = []
    for r in rows[max(end - limit, 0) : end]:
        row = {k: v for k, v in r.items() if k != "bodies"}
        row["at"] = iso(r["at"])
        if with_bodies:
            sent, answered = r.get("bodies") or (None, None)
            row["request_body"], row["response_body"] = shown(sent), shown(answered)
        page.append(row)
    return {"requests": page, "total": len(rows), "offset": offset}
