"""Examples that run wherever the sandbox listens: every runnable shell block of README.md and
docs/ reaches the sandbox through `$SANDBOX_URL` (the banner prints its export line), never a
fixed 127.0.0.1:8080 / localhost:8080 (kept only as the fallback of that export); the CI recipes
install the extra their suite needs (the slim install has neither Schemathesis nor Locust)."""

from __future__ import annotations

import re

from tests.live import ROOT
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


EXTRAS = {"python -m conformance": "conformance", "python -m load run": "load", "mock_server mcp": "mcp"}
RECIPE_DOCS = [ROOT / "README.md", *sorted(ROOT.glob("*/README.md")), *sorted(ROOT.glob("docs/**/*.md"))]


def test_ci_recipes_install_the_extra_their_commands_need() -> None:
    """The slim install (`pip install -e .`) has no Schemathesis nor Locust: a CI recipe that runs
    the conformance or load suite installs its extra (`.[conformance]`, `[load]`, `[all]`)."""
    recipes = [
        (f"{doc.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}", m.group(1))
        for doc in RECIPE_DOCS
        for text in [doc.read_text(encoding="utf-8")]
        for m in re.finditer(r"^```ya?ml[^\n]*\n(.*?)^```", text, re.M | re.S)
    ]
    checked = 0
    for where, code in recipes:
        installs = re.findall(r"pip install ([^\n#]*)", code)
        for command, extra in EXTRAS.items():
            if command in code and installs:
                checked += 1
                assert any(f"[{extra}" in i or "[all" in i or f",{extra}" in i for i in installs), (
                    where,
                    installs,
                )
    assert checked >= 2, recipes  # docs/conformance.md and conformance/README.md (two jobs)
