"""Examples that run wherever the sandbox listens: every runnable shell block of README.md and
docs/ reaches the sandbox through `$SANDBOX_URL` (the banner prints its export line), never a
fixed 127.0.0.1:8080 / localhost:8080 (kept only as the fallback of that export)."""

from __future__ import annotations

import re

from tests.test_docs_blocks import BLOCKS

FIXED = re.compile(r"(?:localhost|127\.0\.0\.1):8080")
FALLBACK = re.compile(r"\$\{SANDBOX_URL:-http://127\.0\.0\.1:8080\}")


def test_runnable_blocks_use_sandbox_url_not_a_fixed_port() -> None:
    fixed = [
        f"{b.id}: {line.strip()}"
        for b in BLOCKS
        if b.illustrative is None
        for line in b.code.splitlines()
        if FIXED.search(FALLBACK.sub("", line))
    ]
    assert fixed == []
    assert sum("$SANDBOX_URL" in b.code for b in BLOCKS if b.illustrative is None) >= 8
