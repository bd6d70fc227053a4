"""Domain check families. Each registers itself with `@family`, receives a `Context` and reports
into `ctx.results` (violations with a curl reproduction, skips with a reason).

A family declares its kind: `once` runs in the plan's order before Schemathesis' phases, `last`
after the cleanup (it spends the token's rate-limit budget); `per_response` families also judge
every response the run receives (`judge.response`). The registry refuses a name twice."""

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
    revoked_token: str | None = None  # a really revoked token (--revoked-token or sandbox mode)
    login_email: str | None = None  # a user of the backend (--login-email or sandbox mode)
    settle_timeout: float = 30.0
    notes: list[str] = field(default_factory=list)
    judge: Contract | None = None  # what responses are judged by: the documented view, or `contract`
    webhook_secret: str | None = None  # signs deliveries (x-signature) when records carry no secret
    fill_to_max: bool = False  # --fill-to-max: create max + 1 records where only that shows the cap

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


ONCE, LAST = "once", "last"
KINDS = (ONCE, LAST)


@dataclass(frozen=True)
class Family:
    name: str
    description: str
    run: CheckRun
    needs: tuple[str, ...] = ()  # tokens besides the full one: "limited", "other"
    applies: Applies | None = None
    kind: str = ONCE
    per_response: bool = False  # also judges every response the run receives


FAMILIES: dict[str, Family] = {}


def family(
    name: str,
    description: str,
    needs: tuple[str, ...] = (),
    applies: Applies | None = None,
    kind: str = ONCE,
    per_response: bool = False,
) -> Callable[[CheckRun], CheckRun]:
    if kind not in KINDS:
        raise ValueError(f"check family {name!r}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if name in FAMILIES:
        raise ValueError(f"a check family named {name!r} is already registered")

    def register(run: CheckRun) -> CheckRun:
        FAMILIES[name] = Family(name, description, run, needs, applies, kind, per_response)
        return run

    return register


# The plan's order of the families (`--checks` lists them so); `last` ones run last whatever
# their place here.
ORDER = (
    "envelope",
    "auth",
    "modes",
    "credentials",
    "cascade",
    "events",
    "quota",
    "generated",
    "requires",
    "media",
    "upsert",
    "identity",
    "actions",
    "scopes",
    "statuses",
    "tenancy",
    "lifecycle",
    "settles",
    "defaults",
    "pagination",
    "filters",
    "inputs",
    "ratelimit",
)


def load_all() -> dict[str, Family]:
    """Import every family module (registration happens at import); every family is in ORDER."""
    from . import (  # noqa: F401
        actions,
        auth,
        cascade,
        credentials,
        defaults,
        envelope,
        events,
        filters,
        identity,
        inputs,
        lifecycle,
        media,
        modes,
        pagination,
        quota,
        ratelimit,
        requests,
        scopes,
        settles,
        statuses,
        tenancy,
        upsert,
    )

    if set(FAMILIES) != set(ORDER):
        raise AssertionError(f"check families {sorted(FAMILIES)} differ from ORDER {sorted(ORDER)}")
    return FAMILIES


def per_response() -> tuple[str, ...]:
    """The families that judge every response, in the plan's order."""
    families = load_all()
    return tuple(n for n in ORDER if families[n].per_response)


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
