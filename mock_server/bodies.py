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


def clip(body: Any) -> tuple[bytes, int] | None:
    """What the log keeps of a body: its first BODY_BYTES, as they came, and its size (None when
    empty). Decoded only when read (`shown`): the Redis log carries them as they are, and the
    `--workers` log as JSON text (`as_text`)."""
    if not body or not isinstance(body, (bytes, bytearray)):
        return None
    return bytes(body[:BODY_BYTES]), len(body)


def as_text(kept: Any) -> str:
    """A kept body's bytes as text (for a log stored as JSON); TypeError for anything else."""
    if isinstance(kept, (bytes, bytearray)):
        return kept.decode("utf-8", "replace")
    raise TypeError(f"{type(kept).__name__} is not JSON serializable")


def shown(kept: Any) -> dict[str, Any] | None:
    """A kept body as the control API shows it: text with secrets masked, its size, truncated?"""
    if not kept:
        return None
    text, size = kept
    if not isinstance(text, str):  # as `clip` kept it (a log stored as JSON holds the text)
        text = as_text(text)
    text = _FORM.sub(rf"\1{MASK}", _JSON.sub(rf'\1"{MASK}"', text))
    return {"text": text, "bytes": size, "truncated": size > BODY_BYTES}
