"""No token or secret in a tool's output (but a freshly minted token, to its minter): every
string that looks like one of the APIs' tokens, or a JWT, is masked before it leaves."""

from __future__ import annotations

import re
from typing import Any

from contract import load_all
from mock_server.diagnose import log_mask

_JWT = r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"


def _pattern() -> re.Pattern[str]:
    prefixes = sorted({p for c in load_all() for p in c.token_prefixes.values()}, key=len, reverse=True)
    token = "|".join(re.escape(p) for p in prefixes)
    # a masked token (`nsx_test_Ab…9xYz`) is left as it is: the look-ahead refuses the `…`
    return re.compile(rf"(?:{token})[A-Za-z0-9_-]{{6,}}(?![…A-Za-z0-9_-])|{_JWT}")


class Redactor:
    """Masks tokens, JWTs and the given secrets (the admin token) in any JSON-like value."""

    def __init__(self, secrets: list[str | None] | None = None) -> None:
        self.pattern = _pattern()
        self.secrets = [s for s in secrets or [] if s]

    def text(self, value: str) -> str:
        for secret in self.secrets:
            value = value.replace(secret, "***")
        return self.pattern.sub(lambda m: _mask(m.group(0)), value)

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self(v) for v in value]
        return value


def _mask(found: str) -> str:
    return "eyJ…(a JWT, hidden)" if found.startswith("eyJ") else log_mask(found)
