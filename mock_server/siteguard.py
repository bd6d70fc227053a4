"""Keep other web sites away from the control API (`/_mock`: tokens, reset, the dashboard).

A page the developer opens can send a "simple" cross-origin request (a `text/plain` or form
POST, no preflight) and, through DNS rebinding, read answers under its own origin. So, on
`/_mock` only (the APIs keep their tokens and `--cors`):

- a foreign `Origin` (not this server's own origin, nor a loopback one on its port) is `403`,
  as is `Origin: null` and a browser's `Sec-Fetch-Site: cross-site`;
- when the server is bound to a loopback address, a `Host` that is not `localhost`, a
  `*.localhost` name or a loopback address is `403` (the rule of Vite's, webpack's and Jupyter's
  dev servers): a rebound DNS name reaches the server but is refused;
- a write with a body needs a JSON `Content-Type` (`415` otherwise), except the form type
  curl's `-d` sends by default when the request carries no browser mark (`Origin`,
  `Sec-Fetch-*`): the documented `curl -X POST .../_mock/clock/advance -d '{...}'` works, a
  browser's form or `text/plain` POST does not.

The answers are the control API's shape (`{"error": {"code", "message"}}`).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import urlsplit

from starlette.responses import Response

WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _split_host(value: str) -> tuple[str, int | None]:
    """`host[:port]` of a Host header (IPv6 in brackets)."""
    try:
        parts = urlsplit("//" + value)
        return (parts.hostname or ""), parts.port
    except ValueError:
        return "", None


def _refuse(status: int, code: str, message: str) -> Response:
    return Response(
        json.dumps({"error": {"code": code, "message": message}}), status, media_type="application/json"
    )


def refusal(scope: MutableMapping[str, Any]) -> Response | None:
    """The answer to a `/_mock` request another site could have made, or None to go on."""
    headers: dict[bytes, bytes] = {}
    for k, v in scope["headers"]:
        headers.setdefault(k.lower(), v)
    server = scope.get("server")
    bound = str(server[0]) if server else ""
    raw_host = headers.get(b"host", b"").decode("latin-1")
    host, port = _split_host(raw_host)
    if bound and _loopback(bound) and raw_host and not _loopback(host):
        return _refuse(
            403,
            "FORBIDDEN_HOST",
            f"Host {raw_host!r} is not this loopback server's name: use localhost or 127.0.0.1 "
            "(a page on another site cannot reach the control API through its own DNS name)",
        )
    origin = headers.get(b"origin")
    if origin is not None and not _same_origin(origin.decode("latin-1"), host, port, scope):
        return _refuse(
            403,
            "FORBIDDEN_ORIGIN",
            f"Origin {origin.decode('latin-1')!r} may not use the control API: only pages of this "
            "sandbox may (--cors opens the APIs, never /_mock)",
        )
    if headers.get(b"sec-fetch-site", b"").lower() == b"cross-site":
        return _refuse(403, "FORBIDDEN_ORIGIN", "A cross-site request may not use the control API")
    if scope["method"] in WRITES:
        ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if ctype and not (ctype == b"application/json" or ctype.endswith(b"+json")):
            browser = origin is not None or any(k.startswith(b"sec-fetch-") for k in headers)
            if browser or ctype != b"application/x-www-form-urlencoded":
                return _refuse(
                    415,
                    "UNSUPPORTED_MEDIA_TYPE",
                    f"Control API writes take Content-Type: application/json, not {ctype.decode('latin-1')}",
                )
    return None


def _same_origin(origin: str, host: str, port: int | None, scope: MutableMapping[str, Any]) -> bool:
    """`origin` is this server's: its scheme, the Host's name (or a loopback name when the Host
    is one) and the Host's port."""
    if origin == "null":
        return False
    try:
        o = urlsplit(origin)
        o_port = o.port
    except ValueError:
        return False
    scheme = scope.get("scheme", "http")
    default = 443 if scheme == "https" else 80
    if o.scheme != scheme or not o.hostname:
        return False
    if (o_port or default) != (port or default):
        return False
    return o.hostname.lower() == host.lower() or (_loopback(o.hostname) and _loopback(host))
