"""Where each element of a contract comes from: the vendor documents, or our inference.

The specs mark what the documents do not show with `x-inferred: true` and
`x-inferred-reason` (on a path item, operation, parameter, response, header, schema or
property; a mark covers everything beneath it), and an `x-sandbox` rate-limit bucket or the
pagination with `inferred: "<reason>"`. Everything unmarked traces to the documents."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Provenance:
    inferred: bool
    reason: str | None = None

    @property
    def documented(self) -> bool:
        return not self.inferred

    def describe(self) -> str:
        return f"inferred: {self.reason}" if self.inferred else "documented"


DOCUMENTED = Provenance(False)


def marked(node: Any) -> Provenance | None:
    """The node's own mark, None when it has none."""
    if isinstance(node, dict) and node.get("x-inferred") is True:
        return Provenance(True, str(node.get("x-inferred-reason") or "marked x-inferred"))
    return None


def of(*chain: Any, inherited: Provenance = DOCUMENTED) -> Provenance:
    """The provenance of the last node of `chain` (outermost first): the innermost mark wins,
    and a mark on an ancestor covers what lies beneath it."""
    found = inherited
    for node in chain:
        found = marked(node) or found
    return found


def reason_key(entry: Any) -> Provenance:
    """`inferred: "<reason>"` on an `x-sandbox` entry (a bucket, the pagination)."""
    if isinstance(entry, dict) and entry.get("inferred"):
        return Provenance(True, str(entry["inferred"]))
    return DOCUMENTED


def any_inferred(items: Iterable[Provenance]) -> bool:
    return any(p.inferred for p in items)
