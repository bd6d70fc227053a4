"""Secrets kept out of the proxy's log, reports and recordings: the values of query parameters
and JSON fields named like a secret (`password`, `token`, `api_key`, `client_secret`, ...) become
`***`; the Authorization header is `$TOKEN` and cookies are omitted (`app.reproduction`)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

SECRET_NAME = re.compile(
    r"(passw|passphrase|secret|token|api[-_]?key|apikey|access[-_]?key|private[-_]?key|credential|"
    r"signature|^sig$|^auth|session|otp|one[-_]?time|passcode|^code$|^key$)",
    re.IGNORECASE,
)
MASK = "***"


def secret(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: MASK if secret(str(k)) and v not in (None, "") else _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def body(raw: bytes) -> bytes:
    """A JSON body with its secret fields masked; form bodies likewise; other bytes unchanged."""
    text = raw.strip()
    if text[:1] in (b"{", b"["):
        try:
            return json.dumps(_masked(json.loads(raw))).encode()
        except (ValueError, RecursionError):
            return raw
    if b"=" in text and b" " not in text and b"\n" not in text:
        return query(text.decode("latin-1")).encode("latin-1")
    return raw


def query(qs: str) -> str:
    pairs = parse_qsl(qs, keep_blank_values=True)
    if not any(secret(k) for k, _ in pairs):
        return qs
    return urlencode([(k, MASK if secret(k) else v) for k, v in pairs], safe="*")


def url(value: str) -> str:
    parts = urlsplit(value)
    if not parts.query:
        return value
    return parts._replace(query=query(parts.query)).geturl()
