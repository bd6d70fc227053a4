"""A Starlette `Response` built from header bytes: the engine's answers carry the same few
headers on every request (request id, rate limits), which it encodes once each instead of
through `Response.init_headers`' normalisation of a dict."""

from __future__ import annotations

from starlette.responses import Response

RawHeaders = list[tuple[bytes, bytes]]


def encode_headers(headers: dict[str, str]) -> RawHeaders:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


class RawResponse(Response):
    """`Response(body, status, headers, media_type)` from headers already encoded (lowercase
    names, latin-1). `Content-Length` and `Content-Type` are added as Starlette adds them; with
    `scan`, only where the headers given lack them (a reply that set its own)."""

    def __init__(
        self, body: bytes, status_code: int, raw: RawHeaders, media_type: str | None, scan: bool = False
    ) -> None:
        self.status_code = status_code
        self.background = None
        self.body = body
        names = {k for k, _ in raw} if scan else ()
        if media_type is not None:
            self.media_type = media_type
            if media_type.startswith("text/") and "charset=" not in media_type.lower():
                media_type += "; charset=" + self.charset
        if b"content-length" not in names and not (status_code < 200 or status_code in (204, 304)):
            raw.append((b"content-length", str(len(body)).encode("latin-1")))
        if media_type is not None and b"content-type" not in names:
            raw.append((b"content-type", media_type.encode("latin-1")))
        self.raw_headers = raw
