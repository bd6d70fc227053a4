"""Domain check families. Each registers itself with `@family`, receives a `Context` and reports
into `ctx.results` (violations with a curl reproduction, skips with a reason)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from contract import Contract, Operation, Resource

    from ..factory import Created, Factory
    from ..http import Client, Exchange
    from ..results import Results


@dataclass
class Context:
    contract: Contract
    client: Client
    results: Results
    factory: Factory
    tokens: dict[str, str | None]
    limited_scopes: list[str] | None = None  # known when the suite minted the limited token itself
    revoked_token: str | None = None  # a really revoked token (sandbox mode), else None
    settle_timeout: float = 30.0
    notes: list[str] = field(default_factory=list)
    judge: Contract | None = None  # what responses are judged by: the documented view, or `contract`

    @property
    def judged(self) -> Contract:
        return self.judge or self.contract

    def judged_op(self, op: Operation) -> Operation:
        """`op` as the judge reads it (its documented responses and codes)."""
        return self.judged.by_id(op.operation_id) or op

    def fail(
        self,
        check: str,
        ex: Exchange | None,
        message: str,
        key: str | None = None,
        op: str | None = None,
        before: list[Exchange] | None = None,
    ) -> None:
        """Report a violation; `before`: the earlier requests the reproduction needs (e.g. the create)."""
        steps = [*(before or []), *([ex] if ex is not None else [])]
        self.results.fail(
            check,
            op or (ex.label if ex is not None else "*"),
            message,
            curl="\n".join(s.curl() for s in steps) or None,
            response=ex.summary() if ex is not None else None,
            key=key,
        )


CheckRun = Callable[[Context], None]
Applies = Callable[["Contract"], "str | None"]  # None: applies; else the reason it does not


@dataclass(frozen=True)
class Family:
    name: str
    description: str
    run: CheckRun
    needs: tuple[str, ...] = ()  # tokens besides the full one: "limited", "other"
    applies: Applies | None = None


FAMILIES: dict[str, Family] = {}


def family(
    name: str, description: str, needs: tuple[str, ...] = (), applies: Applies | None = None
) -> Callable[[CheckRun], CheckRun]:
    def register(run: CheckRun) -> CheckRun:
        FAMILIES[name] = Family(name, description, run, needs, applies)
        return run

    return register


def load_all() -> dict[str, Family]:
    """Import every family module (registration happens at import)."""
    from . import (  # noqa: F401
        auth,
        cascade,
        credentials,
        defaults,
        envelope,
        filters,
        inputs,
        lifecycle,
        pagination,
        quota,
        ratelimit,
        requests,
        scopes,
        tenancy,
    )

    return FAMILIES


ORDER = (
    "envelope",
    "auth",
    "credentials",
    "cascade",
    "quota",
    "generated",
    "requires",
    "scopes",
    "tenancy",
    "lifecycle",
    "defaults",
    "pagination",
    "filters",
    "inputs",
    "ratelimit",
)


def created_records(ctx: Context, check: str) -> Iterator[tuple[Resource, Created]]:
    """One fresh record of each collection the spec can create and read back; what cannot be
    created is reported as skipped under `check`, and so is having nothing to test at all."""
    from ..factory import CannotCreate

    tested = False
    for res in ctx.contract.resources.values():
        if res.get_op is None:
            continue
        if res.create_op is None:
            ctx.results.skip(check, f"the spec has no operation creating {res.name}", res.get_op.label)
            continue
        try:
            obj = ctx.factory.create(res)
        except CannotCreate as exc:
            ctx.results.skip(check, f"cannot create {res.name}: {exc.reason}", res.create_op.label)
            continue
        tested = True
        yield res, obj
    if not tested:
        ctx.results.skip(check, "no collection could be created from the spec")
