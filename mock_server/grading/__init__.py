"""Grading the client, not the API: rules derived from the contract, judged from the request
log (`GET /_mock/grade`, `sandbox.grade(token)`, `mock-server grade`, the dashboard).

One module per family of rules (`retries`, `pagination`, `lifecycle`, `scopes`, `writes`,
`documented`); `rules.py` says what a rule answers. Grading reads the log once per rule and
never touches the store's resources: 10,000 logged requests grade in tens of ms
(`python -m bench.grading`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import documented, lifecycle, pagination, retries, scopes, writes  # noqa: F401  (they register)
from .rules import FAIL, RULES, Context, Row

FAMILIES = ("retries", "pagination", "lifecycle", "writes", "scopes", "documented")
RULES.sort(key=lambda r: FAMILIES.index(r.check.__module__.rsplit(".", 1)[-1]))  # stable: in-module order

if TYPE_CHECKING:
    from contract import Contract


def grade(spec: Contract, rows: list[Row], tokens: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every rule's verdict on `rows` (requests of `spec`'s API, oldest first)."""
    ctx = Context(spec, rows, tokens)
    out = []
    for r in RULES:
        v = r.check(ctx)
        out.append(
            {
                "id": r.id,
                "title": r.title,
                "verdict": v.verdict,
                "message": v.message,
                "evidence": v.evidence,
                "basis": v.basis,
                "inferred": v.inferred or r.inferred,
            }
        )
    return out


def explain(report: dict[str, Any], rows: list[dict[str, Any]] | None = None) -> str:
    """The broken rules of a grade, one paragraph each, with the requests that show it (their
    method, path, status and the sandbox's reason when `rows` of the log are given)."""
    seen = {r["request_id"]: r for r in rows or ()}
    lines = []
    for rule in report["rules"]:
        if rule["verdict"] != FAIL:
            continue
        lines.append(f"{rule['id']}: {rule['message']}")
        lines.append(f"    rule: {rule['title']} ({rule['basis']})")
        if rule.get("inferred"):
            lines.append(f"    inferred: {rule['inferred']}")
        for rid in rule["evidence"]:
            r = seen.get(rid)
            where = f" {r['method']} {r['path']} -> {r['status']} at {r['at']}" if r else ""
            why = f" ({r['reason']})" if r and r.get("reason") else ""
            lines.append(f"    - {rid}{where}{why}")
    return "\n".join(lines)


__all__ = ["RULES", "explain", "grade"]
