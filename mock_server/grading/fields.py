"""The few facts the client rules need that the request log did not hold, taken cheaply after
the response (`Sandbox.record`): what the sandbox told the client to wait, a digest of the body
it sent, and where a listing's page started. Never a body, a token or a query string itself."""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from contract import Operation

BODY = "sandbox.body"  # the request scope key the engine keeps the raw body under
_NONE_LEFT = (b"x-ratelimit-remaining", b"0")  # a success's headers saying the bucket is empty
_FIRST: dict[str, Any] = {"at": None, "size": None, "query": None}  # a listing without parameters


def told(response: Response) -> tuple[int | None, str | None]:
    """Seconds the response told the client to wait and the bucket it named: `Retry-After`, or a
    `RateLimit` saying `r=0` (no request left until `t`)."""
    raw = getattr(response, "raw_headers", ())
    if response.status_code < 400 and _NONE_LEFT not in raw:  # the common case, one C-level scan
        return None, None
    wait: int | None = None
    bucket: str | None = None
    for name, value in raw:
        if name == b"retry-after":
            if value.isdigit():
                wait = int(value)
        elif name == b"ratelimit" and b";r=0;" in value:
            quoted, _, rest = value.partition(b";r=0;t=")
            bucket = quoted.strip(b'" ').decode("latin-1")
            if wait is None and rest.split(b",", 1)[0].strip().isdigit():
                wait = int(rest.split(b",", 1)[0])
    return wait, bucket


def body_digest(request: Request) -> str | None:
    raw: bytes | None = request.scope.get(BODY)
    return f"{zlib.crc32(raw):08x}" if raw else None


def page(request: Request, op: Operation | None, size_param: str | None) -> dict[str, Any] | None:
    """A list operation's paging: `{"at": page or offset, "size": per_page or limit, "query": the
    other parameters' digest}` (the listing a page belongs to, as sent: not decoded); None elsewhere."""
    if op is None or op.resource is None or op.resource.op != "list":
        return None
    qs: bytes = request.scope["query_string"]
    if not qs:
        return _FIRST  # shared: log entries are never changed
    size_key = size_param.encode() if size_param else b"\0"
    at = size = None
    rest = []
    for part in qs.split(b"&"):
        key, _, value = part.partition(b"=")
        if key in (b"page", b"offset"):
            at = value
        elif key == size_key:
            size = value
        elif part:
            rest.append(part)
    return {
        "at": _number(at),
        "size": _number(size),
        "query": f"{zlib.crc32(b'&'.join(sorted(rest))):08x}" if rest else None,
    }


def _number(raw: bytes | None) -> int | str | None:
    if raw is None:
        return None
    return int(raw) if raw.isdigit() and len(raw) < 10 else raw.decode("latin-1")[:32]
