"""actions: each declared lifecycle action (`x-action`, specs/EXTENSIONS.md) is performed on a
fresh record in the state the documents name for it (the first of its `from`), and the status
read back must show the documented outcome.

The status words are read from the backend itself, never assumed: a new record settles into its
"home" (the sandbox's `running`), and each state an action leads to is learned the first time it
is reached. An action leading to a state already seen must bring the record back to that very
status (start after stop: running again, whatever the word), one leading to a new state must move
it off every status seen so far (stop: no longer running), one with no `to` leaves the status as
it was; an intermediate status (`via`, a backend's own `stopping`) is waited out. A state no
action leaves (destroyed) may also be shown by forgetting the record (404). `creates`: the child
list shows one more record. `without: [rebuild]`: the record never shows a status the rebuild
showed on its way ("no rebuild"). Where the documents give the word (`to` not inferred), or in
the strict profile, the word itself is required too; the strict profile, or a documented `from`,
also requires every action to be refused (409 in strict, a 4xx otherwise) from a state its
`from` lacks, the status unchanged."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from contract import MISSING, Action, Contract, Operation, Resource

from ..factory import CannotCreate, Created, singular
from ..http import Exchange
from ..success import _webhook
from . import Context, family

CHECK = "actions"
POLL = 0.5  # seconds between reads while a status settles
GONE = (404, 410)


def _applies(contract: Contract) -> str | None:
    return None if any(op.action for op in contract.operations) else "no operation declares x-action"


@dataclass
class Walk:
    """One record walked through its actions: the declared state it is in, the backend's word
    for each declared state seen so far, and the statuses each action showed on its way."""

    ctx: Context
    res: Resource
    obj: Created
    state: str
    words: dict[str, Any]
    strict: bool
    shown: dict[str, set[Any]] = field(default_factory=dict)
    gone: bool = False

    # -- reading --------------------------------------------------------------------------
    def read(self) -> tuple[Exchange, Any]:
        ex = self.ctx.factory.get(self.obj)
        op = self.res.get_op
        data = self.ctx.factory.extract(op, ex) if op is not None else MISSING
        status = data.get(self.res.status_field) if isinstance(data, dict) else None
        return ex, status

    def until(self, good: Any, seen: list[Any]) -> tuple[Exchange, Any, bool]:
        """Read until `good(status)` (or the record is gone) within the settle timeout; every
        status read goes into `seen`."""
        deadline = time.monotonic() + self.ctx.settle_timeout
        while True:
            ex, status = self.read()
            if ex.status in GONE:
                return ex, None, False
            seen.append(status)
            if ex.status == 200 and good(status):
                return ex, status, True
            if time.monotonic() > deadline:
                return ex, status, False
            self.ctx.client.budget.pause(POLL)

    def steady(self, ex: Exchange, status: Any, seen: list[Any]) -> tuple[Exchange, Any]:
        """A new status may be a backend's own intermediate one (`stopping`): read again until
        two reads a second apart agree."""
        deadline = time.monotonic() + self.ctx.settle_timeout
        while time.monotonic() < deadline:
            self.ctx.client.budget.pause(1.0)
            again, now = self.read()
            if again.status != 200:
                return again, status
            seen.append(now)
            if now == status:
                return again, now
            ex, status = again, now
        return ex, status


def _one(res: Resource) -> str:
    name = singular(res.name)
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _documented(ctx: Context) -> bool:
    return ctx.judge is not None and ctx.judge is not ctx.contract


def _home(res: Resource) -> str | None:
    """The declared status a new record settles in: its default, carried on by the lifecycle."""
    state = res.defaults.get(res.status_field)
    steps = {t.source: t.to for t in res.lifecycle.transitions} if res.lifecycle else {}
    seen = set()
    while state in steps and state not in seen:
        seen.add(state)
        state = steps[state]
    return state if isinstance(state, str) else None


def _fresh(ctx: Context, res: Resource) -> Created:
    """A new record of `res`: created, else made by the signed delivery (a push) under a new
    parent and found in the parent's list."""
    if res.create_op is not None:
        return ctx.factory.create(res)
    link = res.parent
    parent_res = ctx.contract.resources.get(link.name) if link else None
    if link is None or parent_res is None or res.list_op is None:
        raise CannotCreate(f"no operation makes a {res.name} record")
    parent = ctx.factory.create(parent_res)
    for hook in ctx.contract.operations:
        if hook.signature is not None and hook.signature.resource == parent_res.name:
            _webhook(ctx.contract, ctx.factory, hook, hook.signature, ctx.webhook_secret, owner=parent)
    listed = ctx.client.call(res.list_op, path={link.param: parent.id})
    for item in ctx.factory.items(res.list_op, listed) or []:
        if isinstance(item, dict) and "id" in item:
            made = Created(res, str(item["id"]), item, {}, {link.param: parent.id}, listed)
            ctx.factory.created.append(made)
            return made
    raise CannotCreate(f"a signed delivery to a new {parent_res.name} made no {res.name} record", listed)


def _terminal(state: str, res: Resource, acts: list[tuple[Operation, Action]]) -> bool:
    leaves = {s for _, a in acts for s in a.sources}
    moves = {t.source for t in res.lifecycle.transitions} if res.lifecycle else set()
    return state not in leaves and state not in moves


def _target(walk: Walk, act: Action) -> str:
    return act.to or walk.state


def _children(ctx: Context, act: Action, walk: Walk) -> set[str] | None:
    """Ids of the records of `act.creates` listed under the record (None: no such list)."""
    child = ctx.contract.resources.get(act.creates or "")
    link = child.parent if child else None
    if child is None or child.list_op is None or link is None or link.name != walk.res.name:
        return None
    ex = ctx.client.call(child.list_op, path={link.param: walk.obj.id})
    items = ctx.factory.items(child.list_op, ex) if ex.status == 200 else None
    return None if items is None else {str(i["id"]) for i in items if isinstance(i, dict) and "id" in i}


def _send(ctx: Context, op: Operation, act: Action, walk: Walk) -> Exchange:
    decl = op.action
    assert decl is not None
    path = {op.path_params[-1].name: walk.obj.id}
    if decl.select is not None:
        return ctx.client.call(op, path=path, body={decl.select: act.name})
    if op.body_schema is not None:
        return ctx.client.call(op, path=path, body=ctx.factory.body(op))
    return ctx.client.call(op, path=path)


def _reported(ctx: Context, op: Operation, ex: Exchange, field_: str) -> Any:
    """The record's status as the action's answer shows it (a record, or one nested in it)."""
    data = ctx.factory.extract(op, ex)
    if not isinstance(data, dict):
        return None
    if field_ in data and "id" in data:
        return data[field_]
    for value in data.values():
        if isinstance(value, dict) and field_ in value and "id" in value:
            return value[field_]
    return None


def _perform(walk: Walk, op: Operation, act: Action, acts: list[tuple[Operation, Action]]) -> bool:
    """Do `act` from the state the walk is in (its documented one); judge the outcome. False: the
    walk cannot go on (refused, or the state is no longer known)."""
    ctx, res = walk.ctx, walk.res
    before_children = _children(ctx, act, walk) if act.creates else None
    ex = _send(ctx, op, act, walk)
    if ex.status == 429:
        ctx.results.skip(CHECK, f"{act.name}: rate limited", op.label)
        return False
    if not 200 <= ex.status < 300:
        ctx.fail(CHECK, ex, f"{act.name} of {_one(res)} that is {walk.words[walk.state]!r} answered "
                 f"{ex.status} (documented: {act.name} from that state)", op=op.label,
                 key=f"refused:{act.name}", before=[walk.obj.exchange])  # fmt: skip
        return False
    target = _target(walk, act)
    known = walk.words.get(target)
    seen: list[Any] = [_reported(ctx, op, ex, res.status_field)]
    if known is not None:
        got, status, ok = walk.until(lambda s: s == known, seen)
        want = f"back to {known!r}, the status it showed when {target}"
    else:
        old = set(walk.words.values())
        got, status, ok = walk.until(lambda s: s not in old, seen)
        if ok:
            got, status = walk.steady(got, status, seen)
            ok = status not in old
        want = f"a status other than {sorted(map(str, old))}"
    if got.status in GONE and _terminal(target, res, acts) and act.to is not None:
        walk.gone, walk.state = True, target
        ctx.results.ok(CHECK, op.label)
        return False  # forgotten: nothing more to act on
    if not ok:
        shown = "answers " + str(got.status) if got.status != 200 else f"reads {status!r}"
        ctx.fail(CHECK, got, f"after {act.name} the {singular(res.name)} {shown} (documented: {want})",
                 op=op.label, key=f"outcome:{act.name}", before=[walk.obj.exchange, ex])  # fmt: skip
        return False
    passes = [s for s in seen if s is not None and s != status]
    for other in act.without:
        if other not in walk.shown:
            ctx.results.notes.append(f"{CHECK}: {act.name} without {other}: {other} was not performed first")
            continue
        like = sorted({str(s) for s in passes if s in walk.shown[other]})
        if like:
            ctx.fail(CHECK, got, f"{act.name} went through {like}, as {other} does (documented: no {other})",
                     op=op.label, key=f"without:{act.name}", before=[walk.obj.exchange, ex])  # fmt: skip
            return False
    walk.shown[act.name] = {s for s in passes if s != walk.words.get(walk.state)}
    if act.to is not None and (walk.strict or act.documents("to")) and status != act.to:
        ctx.fail(CHECK, got, f"after {act.name} the status is {status!r}, not {act.to!r}",
                 op=op.label, key=f"word:{act.name}")  # fmt: skip
    if act.creates and before_children is not None:
        after = _children(ctx, act, walk)
        if after is not None and not after - before_children:
            ctx.fail(CHECK, ex, f"{act.name} answered {ex.status} but no new {act.creates} record is listed "
                     f"(documented: it creates one)", op=op.label, key=f"creates:{act.name}")  # fmt: skip
            return False
    walk.words.setdefault(target, status)
    walk.state = target
    ctx.results.ok(CHECK, op.label)
    return True


def _refusals(walk: Walk, acts: list[tuple[Operation, Action]], done: set[tuple[str, str]]) -> bool:
    """Every action whose `from` lacks the walk's state is refused there, the status unchanged
    (strict profile, or a documented `from`)."""
    ctx = walk.ctx
    for op, act in acts:
        key = (act.name, walk.state)
        if walk.state in act.sources or key in done or not (walk.strict or act.documents("from")):
            continue
        done.add(key)
        ex = _send(ctx, op, act, walk)
        refused = ex.status == 409 if walk.strict else 400 <= ex.status < 500 and ex.status != 429
        if ex.status == 429:
            continue
        if not refused:
            ctx.fail(CHECK, ex, f"{act.name} of {_one(walk.res)} that is "
                     f"{walk.words.get(walk.state)!r} answered {ex.status} (expected a refusal: 409)",
                     op=op.label, key=f"wrong-state:{act.name}:{walk.state}")  # fmt: skip
            return False
        _, now = walk.read()
        if now != walk.words.get(walk.state):
            was = walk.words.get(walk.state)
            ctx.fail(CHECK, ex, f"a refused {act.name} moved the status {was!r} → {now!r}",
                     op=op.label, key=f"refused-moved:{act.name}")  # fmt: skip
            return False
    return True


def _route(state: str, goals: set[str], acts: list[tuple[Operation, Action]], res: Resource) -> list[Any]:
    """The shortest run of actions (each from its documented state) from `state` to one of
    `goals`, never through a terminal state."""
    queue: deque[tuple[str, list[Any]]] = deque([(state, [])])
    seen = {state}
    while queue:
        at, path = queue.popleft()
        if at in goals and path:
            return path
        for op, act in acts:
            nxt = act.to or at
            if act.sources[0] == at and nxt not in seen and not _terminal(nxt, res, acts):
                seen.add(nxt)
                queue.append((nxt, [*path, (op, act)]))
    return []


def _order(walk: Walk, pending: list[tuple[Operation, Action]], acts: list[tuple[Operation, Action]]) -> Any:
    """Next action to do from here: one keeping the state first, then one whose `without` were
    done, terminal ones last."""
    here = [(op, a) for op, a in pending if a.sources[0] == walk.state]

    def rank(pair: tuple[Operation, Action]) -> tuple[bool, bool, bool]:
        act = pair[1]
        after = _target(walk, act)
        return (
            any(w not in walk.shown for w in act.without),
            after != walk.state,
            _terminal(after, walk.res, acts),
        )

    here.sort(key=rank)
    return here[0] if here else None


def _steps(walk: Walk, route: list[Any], pending: list[Any], acts: list[tuple[Operation, Action]]) -> bool:
    for step in route:
        if step in pending:
            pending.remove(step)
        if not _perform(walk, *step, acts):
            return False
    return True


def _walk(ctx: Context, res: Resource, acts: list[tuple[Operation, Action]]) -> None:
    labels = sorted({op.label for op, _ in acts})
    home = _home(res)
    if res.get_op is None or home is None:
        for label in labels:
            ctx.results.skip(CHECK, f"{res.name}: no read, or no declared status a new one settles in", label)
        return
    try:
        obj = _fresh(ctx, res)
    except CannotCreate as exc:
        for label in labels:
            ctx.results.skip(CHECK, exc.reason, label)
        return
    data = ctx.factory.settle(obj, ctx.settle_timeout, changed=True)
    walk = Walk(ctx, res, obj, home, {home: data.get(res.status_field)}, strict=not _documented(ctx))
    pending: list[tuple[Operation, Action]] = list(acts)
    tried: set[tuple[str, str]] = set()
    while _refusals(walk, acts, tried) and pending:
        nxt = _order(walk, pending, acts)
        goals = {a.sources[0] for _, a in pending}
        route = [nxt] if nxt is not None else _route(walk.state, goals, acts, res)
        if not route or not _steps(walk, route, pending, acts):
            break
    for op, act in pending:
        ctx.results.skip(CHECK, f"{act.name}: not reached from {walk.state!r}", op.label)


@family(CHECK, "each documented action leads the record where the documents say", applies=_applies)
def run(ctx: Context) -> None:
    by_res: dict[str, list[tuple[Operation, Action]]] = {}
    for op in ctx.contract.operations:
        if op.action is not None and op.action.resource in ctx.contract.resources:
            for act in op.action.actions.values():
                by_res.setdefault(op.action.resource, []).append((op, act))
    for name, acts in by_res.items():
        _walk(ctx, ctx.contract.resources[name], acts)
