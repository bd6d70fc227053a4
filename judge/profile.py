"""A profile: which view of the contract fails a backend, and why a finding does not fail.

`documented` (the default) fails a backend only for what the vendor documents say; what only
the full spec finds (the sandbox's `x-inferred` choices) is reported as inferred, with the
reason. `strict` judges by the full spec: everything fails."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from contract import Contract, Operation

INFERRED = "judged by a part of the spec the documents do not state (x-inferred): the sandbox's choice"
ENDPOINT_INFERRED = "the endpoint is not in the documents"
PROFILES = ("documented", "strict")

T = TypeVar("T")


@dataclass(frozen=True)
class Profile:
    name: str = "documented"

    @classmethod
    def named(cls, name: str) -> Profile:
        if name not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}, not {name!r}")
        return cls(name)

    def view(self, contract: Contract) -> Contract:
        """The contract a backend fails by under this profile."""
        return contract.documented if self.name == "documented" else contract


def view_op(view: Contract, op: Operation | None) -> Operation | None:
    """`op` as `view` has it (the documented view keeps every operation the full spec has)."""
    return view.by_id(op.operation_id) if op is not None else None


def classify(
    failing: Iterable[T], full: Iterable[T], key: Callable[[T], Hashable], reason: str | None = None
) -> list[tuple[T, str | None]]:
    """Findings of the judging view fail (`reason`, None unless the whole endpoint is inferred);
    those only the full contract finds are inferred: tagged with why they do not fail."""
    out: list[tuple[T, str | None]] = [(f, reason) for f in failing]
    seen = {key(f) for f, _ in out}
    out += [(f, INFERRED) for f in full if key(f) not in seen]
    return out


def endpoint_reason(op: Operation) -> str | None:
    """Why every finding on `op` is inferred: the endpoint itself is the sandbox's (x-inferred)."""
    return f"{ENDPOINT_INFERRED} ({op.provenance.reason})" if op.provenance.inferred else None
