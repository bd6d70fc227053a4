"""Documented behaviours declared as `x-` extensions (specs/EXTENSIONS.md): `x-credential`,
`x-quota`, `x-generated`, `x-requires`, `x-resources.<name>.masked` and `.cascade`, decoded into
typed fields; the sandbox and the suites read them here, never by string key."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import SpecError

if TYPE_CHECKING:
    from .model import Operation, Resource


@dataclass(frozen=True)
class Credential:
    """The response `field` holds a secret shown once, in the documented `pattern`; it
    authenticates `probe`; after `revoked_by` (a delete of the created record) it answers 401;
    `listed_by` shows it masked, never in clear."""

    field: str
    probe: str
    pattern: str | None = None
    revoked_by: str | None = None
    listed_by: str | None = None

    def well_formed(self, secret: str) -> bool:
        return self.pattern is None or re.search(self.pattern, secret) is not None


def credential(op: Operation) -> Credential | None:
    raw = op.raw.get("x-credential")
    if not raw:
        return None
    return Credential(
        field=str(raw["field"]),
        probe=str(raw["probe"]),
        pattern=raw.get("pattern"),
        revoked_by=raw.get("revoked-by"),
        listed_by=raw.get("listed-by"),
    )


def masked(res: Resource) -> dict[str, str]:
    """`x-resources.<name>.masked`: field -> what every response shows in its place."""
    return {str(k): str(v) for k, v in (res.config.get("masked") or {}).items()}


@dataclass(frozen=True)
class Counter:
    """`x-quota` item: `usage` (a dotted body path) counts the records of `counts`; `limit` (a
    dotted body path) bounds them: a create beyond it is refused."""

    counts: str
    usage: str
    limit: str | None = None


def counters(op: Operation) -> tuple[Counter, ...]:
    return tuple(
        Counter(str(c["counts"]), str(c["usage"]), c.get("limit")) for c in op.raw.get("x-quota") or ()
    )


def at_path(body: Any, dotted: str) -> Any:
    """The value at a dotted path of a JSON body, None when absent."""
    for key in dotted.split("."):
        body = body.get(key) if isinstance(body, dict) else None
    return body


def check_quota(doc: dict[str, Any], raw: Any, check: Callable[[Any, str, str], None], at: str) -> None:
    check(raw, "quota", f"{at} x-quota")
    for item in raw:
        if item["counts"] not in (doc.get("x-resources") or {}):
            raise SpecError(f"{at}: x-quota: unknown resource {item['counts']}")


@dataclass(frozen=True)
class Requirement:
    """`x-requires` item: the body field names a `collection` record that must be in `status`."""

    collection: str
    status: str


def generated(op: Operation) -> tuple[str, ...]:
    """`x-generated`: body fields the request may omit; the response then returns one."""
    return tuple(str(f) for f in op.raw.get("x-generated") or ())


def requires(op: Operation) -> dict[str, Requirement]:
    """`x-requires`: body field -> the record it names and the status that record must be in."""
    raw = op.raw.get("x-requires") or {}
    return {str(f): Requirement(str(r["collection"]), str(r["status"])) for f, r in raw.items()}


def cascade(res: Resource) -> tuple[str, ...]:
    """`x-resources.<name>.cascade`: the child collections a delete is documented to delete."""
    return tuple(str(c) for c in res.config.get("cascade") or ())


def check_credential(doc: dict[str, Any], raw: Any, check: Callable[[Any, str, str], None], at: str) -> None:
    """Schema-check `raw` and that the operations it names exist (a start-up error otherwise)."""
    check(raw, "credential", f"{at} x-credential")
    ids = {
        op.get("operationId")
        for item in (doc.get("paths") or {}).values()
        if isinstance(item, dict)
        for op in item.values()
        if isinstance(op, dict)
    }
    for key in ("probe", "revoked-by", "listed-by"):
        if key in raw and raw[key] not in ids:
            raise SpecError(f"{at}: x-credential.{key}: no operation {raw[key]}")
    if "pattern" in raw:
        try:
            re.compile(raw["pattern"])
        except re.error as exc:
            raise SpecError(f"{at}: x-credential.pattern: {exc}") from None
