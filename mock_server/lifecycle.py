"""Lifecycles declared in `x-resources.<name>.lifecycle`, applied lazily, on read, from the
engine's clock: a jump of the clock moves every resource on at once and no background thread
is needed. A view is a pure function of (stored record, clock); `Resources` stores the views
that came to rest."""

from __future__ import annotations

import base64
import hashlib
import uuid
from typing import Any

from contract import Contract, Transition

from .clock import Clock
from .store import Record

# name -> (the field a lifecycle moves, {from-status: its transitions in declared order})
Moves = dict[str, tuple[str, dict[Any, list[Transition]]]]


def derived(kind: str, seed: str, api: str) -> Any:
    """A generated value that is a function of `seed` (lifecycle views stay stable across reads)."""
    digest = hashlib.sha256(seed.encode()).digest()
    if kind == "ipv4":
        return f"{('203.0.113', '198.51.100')[digest[0] % 2]}.{2 + digest[1] % 253}"
    if kind == "hostname":
        return f"{digest.hex()[:10]}.{api}.sandbox.test"
    if kind == "uuid":
        return str(uuid.UUID(bytes=digest[:16], version=4))
    if kind == "secret":
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")[:40]
    return None


class Lifecycles:
    """The lifecycles of one API's collections."""

    def __init__(self, spec: Contract, clock: Clock, delay_override: float | None = None) -> None:
        self.spec, self.clock, self.delay_override = spec, clock, delay_override
        self.moves: Moves = {}
        for n, res in spec.resources.items():
            if res.lifecycle is not None:
                by_from: dict[Any, list[Transition]] = {}
                for t in res.lifecycle.transitions:
                    by_from.setdefault(t.source, []).append(t)
                self.moves[n] = (res.lifecycle.field, by_from)
        self._sources: dict[tuple[str, Any], list[Any] | None] = {}

    def delay(self, seconds: float) -> float:
        return seconds if self.delay_override is None else self.delay_override

    def moving(self, name: str) -> str | None:
        """The field a declared lifecycle moves on its own (None without a lifecycle)."""
        life = self.moves.get(name)
        return life[0] if life else None

    def settle(self, name: str, record: Record) -> Record:
        """The record as of now: every due lifecycle transition applied.

        A pure view of (stored record, clock) — nothing is written here, so a read of one record
        never costs a write (a list stores the views that came to rest: `Resources._keep`); values
        a transition generates are derived from the record's id, so every read sees the same
        address. Returns `record` itself when nothing is due."""
        life = self.moves.get(name)
        if life is None or record.get(life[0]) not in life[1]:
            return record  # no lifecycle, or a state nothing leaves: the common case, kept cheap
        status_field, by_from = life
        view = record
        since = record.get("_since", 0.0)
        now = self.clock.now()
        for _ in range(64):  # a bound, should a spec declare a zero-delay cycle
            step = next(
                (t for t in by_from.get(view.get(status_field), ()) if now >= since + self.delay(t.after)),
                None,
            )
            if step is None:
                break
            since += self.delay(step.after)
            view = {**view, status_field: step.to, "_since": since, **step.set}
            for f, kind in step.generate.items():
                view[f] = (
                    self.clock.isoformat(since)
                    if kind == "at"
                    else derived(kind, f"{record['id']}:{f}", self.spec.name)
                )
        return view

    def at_rest(self, name: str, view: Record) -> bool:
        """Whether the record's lifecycle moves it no further."""
        return self.resting(name, view.get(self.moves[name][0]))

    def resting(self, name: str, status: Any) -> bool:
        """Whether no transition leaves `status`."""
        try:
            return status not in self.moves[name][1]
        except TypeError:
            return False

    def sources_of(self, name: str, status: Any) -> list[Any] | None:
        """The stored statuses from which a record can settle into `status` (itself included),
        per the lifecycle's transitions; None if that cannot be told (then every record is read)."""
        try:
            return self._sources[(name, status)]
        except KeyError:
            pass
        except TypeError:
            return None
        field, by_from = self.moves[name]
        if any(field in t.set for ts in by_from.values() for t in ts):
            found = None
        else:
            found, todo = [status], [status]
            while todo:
                target = todo.pop()
                for source, ts in by_from.items():
                    if source not in found and any(t.to == target for t in ts):
                        found.append(source)
                        todo.append(source)
        self._sources[(name, status)] = found
        return found

    def next_step(self, name: str, view: Record) -> tuple[Any, float] | None:
        """The status `view` moves to next and when (epoch), or None when it rests."""
        status_field, by_from = self.moves[name]
        steps = by_from.get(view.get(status_field))
        if not steps:
            return None
        step = min(steps, key=lambda t: self.delay(t.after))
        return step.to, view.get("_since", 0.0) + self.delay(step.after)

    def durations(self, name: str) -> dict[str, float]:
        """Seconds a record of `name` spends in each status a transition leaves, as applied."""
        res = self.spec.resources[name]
        return {t.source: self.delay(t.after) for t in (res.lifecycle.transitions if res.lifecycle else ())}
