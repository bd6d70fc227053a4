"""What a client rule is, what it answers, and what it reads: the request log of one API (oldest
first), the compiled contract, and the tokens' scopes and modes.

A rule answers `pass`, `fail` or `not exercised` (the client never did what the rule judges, so
it is neither praised nor blamed), with a one-line message and the request ids that show it.
`basis` says where its threshold comes from; `inferred` says why, when that is our choice and
not the documents' (a suite of ours may hold an app to it, a vendor never promised it)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from contract import Contract, Operation

PASS, FAIL, UNSEEN = "pass", "fail", "not exercised"
MAX_EVIDENCE = 20
Row = dict[str, Any]


@dataclass
class Verdict:
    verdict: str
    message: str
    evidence: list[str] = field(default_factory=list)
    basis: str = ""
    inferred: str | None = None


@dataclass(frozen=True)
class Rule:
    id: str
    title: str  # what a good client does, in one line
    check: Callable[[Context], Verdict]
    inferred: str | None = None  # why the rule (or its threshold) is our choice


RULES: list[Rule] = []


def rule(
    rule_id: str, title: str, inferred: str | None = None
) -> Callable[[Callable[[Context], Verdict]], Any]:
    def register(check: Callable[[Context], Verdict]) -> Callable[[Context], Verdict]:
        RULES.append(Rule(rule_id, title, check, inferred))
        return check

    return register


def failed(message: str, evidence: Iterable[str], basis: str = "") -> Verdict:
    ids = list(dict.fromkeys(evidence))  # in order, once each
    return Verdict(FAIL, message, ids[:MAX_EVIDENCE], basis)


def passed(message: str, basis: str = "") -> Verdict:
    return Verdict(PASS, message, [], basis)


def unseen(message: str, basis: str = "") -> Verdict:
    return Verdict(UNSEEN, message, [], basis)


def limits_inferred(spec: Contract) -> str | None:
    """Why the API's rate limits are the sandbox's, when one of them is."""
    reasons = [f"{b.name}: {b.provenance.reason}" for b in spec.buckets.values() if b.provenance.inferred]
    return f"{spec.name}'s limits are the sandbox's ({'; '.join(reasons)})" if reasons else None


def scopes_inferred(spec: Contract) -> str | None:
    p = spec.scopes_provenance
    return f"{spec.name}'s scope names are the sandbox's ({p.reason})" if p.inferred else None


class Context:
    """The requests being graded (one API; one token or all; since a time) and what judges them."""

    def __init__(self, spec: Contract, rows: list[Row], tokens: dict[str, dict[str, Any]]) -> None:
        self.spec = spec
        self.rows = rows
        self.tokens = tokens  # token_id -> {"scopes": [...], "mode": ...} where still known
        self._ops = {o.operation_id: o for o in spec.operations}
        # per operation id, what the rules ask of it (looked up once per row, not recomputed)
        self.scopes_of: dict[str | None, tuple[str, ...]] = {
            o.operation_id: o.scopes for o in spec.operations
        }
        self.counts_in: dict[str | None, list[tuple[str, str | None]]] = {
            o.operation_id: [("o", o.operation_id), *(("b", b) for b in o.rate_buckets)]
            for o in spec.operations
        }
        self.kind_of: dict[str | None, str | None] = {
            o.operation_id: o.resource.op if o.resource else None for o in spec.operations
        }

    def op(self, row: Row) -> Operation | None:
        name = row.get("operation")
        return self._ops.get(name) if name else None

    @cached_property
    def by_token(self) -> dict[str | None, list[Row]]:
        """Each caller's requests in order (a public operation's callers under None)."""
        out: dict[str | None, list[Row]] = {}
        for r in self.rows:
            out.setdefault(r.get("token_id"), []).append(r)
        return out
