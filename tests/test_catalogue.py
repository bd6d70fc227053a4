"""The catalogue of documented behaviours (issue 32 item 1): every sentence of the vendor documents
is accounted for in `tests/provenance/catalogue/<api>.yaml`, next to the provenance quotes.

A `behaviours` entry quotes a sentence that states observable behaviour and says one of:
- `check` (+ `declared`, + `defect`): how the contract declares it (a JSON pointer into
  specs/<api>.yaml, or `per-API code: <file>`), the conformance family or Schemathesis check that
  verifies it from outside, and the planted blind-backend defect(s) that check catches
  (`tests/conformance/test_blind_conformance.py` CAUGHT, with that very check; for limits the check
  `load ratelimit`, the rate-limit verifier, and `tests/load/test_blind_ratelimit.py` CAUGHT);
- `not-observable`: why no client can see it;
- `gap`: what is still missing (optionally the blind `defect` it lets through, listed in MISSED).
Every other sentence is quoted under `descriptive`. Quotes are checked verbatim (whitespace
normalised) against the seeds; every letter and digit of a document must lie inside some quote.
The figures (checked / not observable / gap / total) are printed per API (`pytest -s`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import schemathesis.specs.openapi.checks as st_checks
import yaml

from conformance.checks import ORDER
from contract import SPECS_DIR
from tests.conformance.test_blind_conformance import CAUGHT, MISSED
from tests.load.test_blind_ratelimit import CAUGHT as LIMITS_CAUGHT
from tests.load.test_blind_ratelimit import VERIFIER
from tests.test_spec_provenance import APIS, ROOT, SEEDS, allow_list, normalise, resolve

CATALOGUE = Path(__file__).parent / "provenance" / "catalogue"
KINDS = ("check", "not-observable", "gap")
BLIND = {
    "nurosentrix": "nurosentrix",
    "cloudnexus": "cloudnexus_com",
    "cloudnexus-io": "cloudnexus_io",
    "nexos": "nexos",
}


def catalogue(api: str) -> dict[str, Any]:
    return yaml.load((CATALOGUE / f"{api}.yaml").read_text(), Loader=yaml.CSafeLoader)


def spec(api: str) -> dict[str, Any]:
    """specs/<api>.yaml as written (the C loader: the pure-Python one takes seconds)."""
    return yaml.load((SPECS_DIR / f"{api}.yaml").read_text(), Loader=yaml.CSafeLoader)


def document(api: str) -> str:
    return normalise(" ".join((SEEDS / name).read_text() for name in allow_list(api)["seeds"]))


def is_check(name: str) -> bool:
    return (
        name == VERIFIER
        or name in ORDER
        or name == "not_a_server_error"
        or callable(getattr(st_checks, name, None))
    )


def kind(entry: dict[str, Any]) -> str:
    kinds = [k for k in KINDS if k in entry]
    assert len(kinds) == 1, f"{entry.get('quote')!r}: exactly one of {KINDS}, got {kinds}"
    return kinds[0]


def figures(api: str) -> dict[str, int]:
    entries = catalogue(api)["behaviours"]
    counts = {k: sum(kind(e) == k for e in entries) for k in KINDS}
    return {**counts, "total": len(entries)}


@pytest.mark.parametrize("api", APIS)
def test_every_sentence_of_the_documents_is_accounted_for(api: str) -> None:
    text = document(api)
    data = catalogue(api)
    quotes = [normalise(e["quote"]) for e in data["behaviours"]] + [normalise(q) for q in data["descriptive"]]
    covered = bytearray(len(text))
    for quote in quotes:
        assert quote in text, f"not in the documents: {quote!r}"
        for m in re.finditer(re.escape(quote), text):
            covered[m.start() : m.end()] = b"\x01" * (m.end() - m.start())
    loose = [i for i, c in enumerate(text) if c.isalnum() and not covered[i]]
    runs: list[list[int]] = []
    for i in loose:
        if runs and i - runs[-1][1] <= 3:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    assert not runs, f"{len(runs)} passages unaccounted:\n" + "\n".join(
        repr(text[max(0, a - 30) : b + 30]) for a, b in runs[:60]
    )


@pytest.mark.parametrize("api", APIS)
def test_each_behaviour_names_a_declaration_a_check_and_a_defect_that_exist(api: str) -> None:
    written = spec(api)
    prefix = BLIND[api]
    for entry in catalogue(api)["behaviours"]:
        what, quote = kind(entry), entry["quote"]
        assert str(entry.get(what) or "").strip(), f"{quote!r}: {what} needs its reason / name"
        declared = entry.get("declared")
        if declared:
            if declared.startswith("per-API code: "):
                where = declared.removeprefix("per-API code: ").split(":")[0].strip()
                assert (ROOT / where).exists(), f"{quote!r}: {where} does not exist"
            else:
                try:
                    resolve(written, declared)
                except (KeyError, IndexError, ValueError):
                    pytest.fail(f"{quote!r}: {declared} not in specs/{api}.yaml")
        defects = entry.get("defect") or []
        defects = [defects] if isinstance(defects, str) else defects
        for d in defects:
            assert d.startswith(prefix + ":"), f"{quote!r}: {d} is not a {prefix} defect"
        if what == "check":
            assert declared, f"{quote!r}: a checked behaviour says how the contract declares it"
            assert is_check(entry["check"]), f"{quote!r}: no check named {entry['check']}"
            assert defects, f"{quote!r}: a check is proven by a planted defect it catches"
            caught = {**CAUGHT, **dict.fromkeys(LIMITS_CAUGHT, VERIFIER)}
            for d in defects:
                assert d in caught, f"{quote!r}: {d} is not a caught blind defect"
                assert caught[d] == entry["check"], f"{quote!r}: {d} is caught by {caught[d]}"
        else:
            assert not declared or what == "not-observable", (
                f"{quote!r}: declared ({declared}) but not checked: a declared behaviour needs its check"
            )
            for d in defects:
                assert d in MISSED, f"{quote!r}: {d} is not a missed blind defect"


@pytest.mark.parametrize("api", APIS)
def test_the_figures(api: str) -> None:
    """checked / not observable / gap / total, per API (printed with `pytest -s`)."""
    numbers = figures(api)
    print(
        f"{api}: {numbers['check']} checked / {numbers['not-observable']} not observable / "
        f"{numbers['gap']} gap / {numbers['total']} total"
    )
    assert numbers["check"] + numbers["not-observable"] + numbers["gap"] == numbers["total"] > 0
