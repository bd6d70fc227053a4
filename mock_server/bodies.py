"""Request and response bodies in the request log: kept bounded on the hot path (a slice, no
parsing), masked only when read (`GET /_mock/requests?bodies=1`): the values of secret-looking
fields (passwords, secrets, tokens, keys, signatures, OAuth codes) never leave the sandbox."""

from __future__ import annotations

import re
from typing import Any

BODY_BYTES = 4096  # per body, per logged request: 500 requests hold at most ~4 MB of bodies

_SECRET = (
    r"[\w-]*(?:password|passwd|secret|token|api[_-]?key|apikey|authorization|credential"
    r"|private[_-]?key|signature)[\w-]*"
)
_JSON = re.compile(rf'("{_SECRET}"\s*:\s*)"(?:[^"\\]|\\.)*"?', re.I)
_FORM = re.compile(rf"(?<![\w-])((?:{_SECRET}|code)=)[^&\s]*", re.I)
MASK = "•••"


def clip(body: Any) -> tuple[str, int] | None:
    """What the log keeps of a body: its first BODY_BYTES as text and its size (None when empty);
    text, so the shared logs (--workers, Redis) carry it as JSON."""
    if not body or not isinstance(body, (bytes, bytearray)):
        return None
    return body[:BODY_BYTES].decode("utf-8", "replace"), len(body)


def shown(kept: Any) -> dict[str, Any] | None:
    """A kept body as the control API shows it: text with secrets masked, its size, truncated?"""
    if not kept:
        return None
    text, size = kept
    text = _FORM.sub(rf"\1{MASK}", _JSON.sub(rf'\1"{MASK}"', text))
    return {"text": text, "bytes": size, "truncated": size > BODY_BYTES}
