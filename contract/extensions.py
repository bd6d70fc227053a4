"""The `x-` extensions the engine and the suites act on, decoded once into typed fields
(`specs/EXTENSIONS.md`); compiling a spec checks them against `extensions.schema.yaml` first,
so the decoders trust their input. Nothing outside `contract/` reads these by string key."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .provenance import DOCUMENTED, Provenance, reason_key


@dataclass(frozen=True)
class Parent:
    """`x-resource.parent`: the path parameter `param` holds the id of a `name` record; the
    child's `field` is set to, and filtered by, it."""

    name: str
    param: str
    field: str


@dataclass(frozen=True)
class ResourceOp:
    """`x-resource`: what the generic engine does for an operation."""

    name: str
    op: str  # list | get | create | update | delete | upsert
    parent: Parent | None = None
    id_param: str | None = None  # default: the operation's last path parameter
    key: str | None = None  # upsert: the field that identifies the child


@dataclass(frozen=True)
class Transition:
    """One lifecycle step: a record whose field equals `source` for `after` seconds becomes `to`."""

    source: str  # `from`
    to: str
    after: float = 0
    set: Mapping[str, Any] = field(default_factory=dict)
    generate: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Settles:
    """`lifecycle.settles`: a created record reaches one of `to` (the documented part of a
    lifecycle; the transitions' timing is the sandbox's). `provenance` inferred when the
    documents never state that it ends (then only the strict profile checks it)."""

    to: tuple[str, ...]
    provenance: Provenance = DOCUMENTED


@dataclass(frozen=True)
class Lifecycle:
    """`x-resources.<name>.lifecycle`."""

    field: str
    transitions: tuple[Transition, ...]
    settles: Settles | None = None

    def reached(self, start: Any) -> set[Any]:
        """Every status the transitions lead to from `start` (itself included)."""
        seen, todo = {start}, [start]
        while todo:
            here = todo.pop()
            for t in self.transitions:
                if t.source == here and t.to not in seen:
                    seen.add(t.to)
                    todo.append(t.to)
        return seen


@dataclass(frozen=True)
class Signature:
    """`x-signature`: how a delivery to a webhook receiver is signed."""

    header: str
    algorithm: str
    resource: str  # the collection whose record's secret keys the HMAC
    secret_field: str
    match: Mapping[str, str]  # body path (dotted) -> the record's field naming it
    prefix: str = ""


def resource_op(raw: Mapping[str, Any] | None) -> ResourceOp | None:
    if not raw:
        return None
    parent = raw.get("parent")
    return ResourceOp(
        name=str(raw["name"]),
        op=str(raw["op"]),
        parent=Parent(str(parent["name"]), str(parent["param"]), str(parent["field"])) if parent else None,
        id_param=raw.get("id-param"),
        key=raw.get("key"),
    )


def lifecycle(raw: Mapping[str, Any] | None) -> Lifecycle | None:
    if not raw:
        return None
    steps = tuple(
        Transition(
            source=t["from"],
            to=t["to"],
            after=t.get("after", 0),
            set=dict(t.get("set") or {}),
            generate=dict(t.get("generate") or {}),
        )
        for t in raw.get("transitions") or ()
    )
    settles = raw.get("settles")
    return Lifecycle(
        str(raw.get("field", "status")),
        steps,
        Settles(tuple(settles["to"]), reason_key(settles)) if settles else None,
    )


def signature(raw: Mapping[str, Any] | None) -> Signature | None:
    if not raw:
        return None
    return Signature(
        header=str(raw["header"]),
        algorithm=str(raw["algorithm"]),
        resource=str(raw["resource"]),
        secret_field=str(raw["secret-field"]),
        match=dict(raw.get("match") or {}),
        prefix=str(raw.get("prefix", "")),
    )


# -- documented behaviours (issue 32): the sandbox serves them, the suites check them ----------
@dataclass(frozen=True)
class Event:
    """`x-events.<example>`: what a delivery of the request body example `example` does to the
    `collection` under the record it names (`x-signature.match`): `makes` one, or `removes` the
    one an earlier delivery made."""

    example: str
    effect: str  # "makes" | "removes"
    collection: str
    body: Any = field(default=None, compare=False, hash=False)  # that example's value


def events(raw: Mapping[str, Any] | None, examples: Mapping[str, Any]) -> tuple[Event, ...]:
    """`examples`: the request body's named examples (`examples.<name>`, as written)."""
    out = []
    for name, spec in (raw or {}).items():
        example = examples.get(name)
        body = example.get("value") if isinstance(example, dict) else None
        out += [Event(str(name), effect, str(collection), body) for effect, collection in spec.items()]
    return tuple(out)


@dataclass(frozen=True)
class Credential:
    """`x-credential`: the response `field` holds a secret shown once, in the documented `pattern`
    (searched); it authenticates `probe`; after `revoked_by` (a delete of the created record) it
    answers 401; `listed_by` shows it masked, never in clear (operationIds)."""

    field: str
    probe: str
    pattern: str | None = None
    revoked_by: str | None = None
    listed_by: str | None = None

    def well_formed(self, secret: str) -> bool:
        return self.pattern is None or re.search(self.pattern, secret) is not None


@dataclass(frozen=True)
class Counter:
    """`x-quota` item: `usage` (a dotted body path) counts the records of `counts`; `limit` (a
    dotted body path) bounds them: a create beyond it is refused."""

    counts: str
    usage: str
    limit: str | None = None


@dataclass(frozen=True)
class Requirement:
    """`x-requires` item: the body field names a `collection` record that must be in `status`."""

    collection: str
    status: str


def credential(raw: Mapping[str, Any] | None) -> Credential | None:
    if not raw:
        return None
    return Credential(
        field=str(raw["field"]),
        probe=str(raw["probe"]),
        pattern=raw.get("pattern"),
        revoked_by=raw.get("revoked-by"),
        listed_by=raw.get("listed-by"),
    )


def quota(raw: Sequence[Mapping[str, Any]] | None) -> tuple[Counter, ...]:
    return tuple(Counter(str(c["counts"]), str(c["usage"]), c.get("limit")) for c in raw or ())


def generated(raw: Sequence[Any] | None) -> tuple[str, ...]:
    """`x-generated`: body fields the request may omit; the response then returns one."""
    return tuple(str(f) for f in raw or ())


def requires(raw: Mapping[str, Mapping[str, Any]] | None) -> Mapping[str, Requirement]:
    """`x-requires`: body field -> the record it names and the status that record must be in."""
    return {str(f): Requirement(str(r["collection"]), str(r["status"])) for f, r in (raw or {}).items()}


def masked(raw: Mapping[str, Any] | None) -> Mapping[str, str]:
    """`x-resources.<name>.masked`: field -> what every response shows in its place."""
    return {str(k): str(v) for k, v in (raw or {}).items()}


def cascade(raw: Sequence[Any] | None) -> tuple[str, ...]:
    """`x-resources.<name>.cascade`: the child collections a delete is documented to delete."""
    return tuple(str(c) for c in raw or ())


def at_path(body: Any, dotted: str) -> Any:
    """The value at a dotted path of a JSON body (`x-quota`'s `usage`, `limit`), None when absent."""
    for key in dotted.split("."):
        body = body.get(key) if isinstance(body, dict) else None
    return body


# -- lifecycle actions (`x-action`) --------------------------------------------------------------
@dataclass(frozen=True)
class Action:
    """One lifecycle action of a record (`x-action.actions.<name>`): allowed while its status is
    one of `sources` (the first is the state the documents name, the one the suite acts from);
    it moves the record to `to` (None: the status stays) — through `via` first when given, the
    resource's lifecycle then carrying it on. `generate` fills fields as on create, `creates`
    makes a child record of that collection, `effect` (`module.function`) does what cannot be
    declared (a rebuild's deployment). `without`: actions of the same record it is documented
    not to do ("no rebuild"). `inferred`: the parts (`from`, `to`, `via`) the documents do not
    state -> why; the documented profile judges a backend by the rest."""

    name: str
    sources: tuple[str, ...]  # `from`
    to: str | None = None
    via: str | None = None
    generate: Mapping[str, str] = field(default_factory=dict)
    creates: str | None = None
    effect: str | None = None
    without: tuple[str, ...] = ()
    inferred: Mapping[str, str] = field(default_factory=dict)

    @property
    def first(self) -> str:
        """The status written at once: `via`, else `to` (None: unchanged)."""
        return self.via or self.to or ""

    def documents(self, part: str) -> bool:
        return part not in self.inferred


@dataclass(frozen=True)
class ActionSet:
    """`x-action` on an operation: the `resource` record its path names, its actions by name —
    one, or several chosen by the body field `select` — and its `reply` template (`$record`,
    `$action`, `$created?`: the record after the action, the action's name, a record it made)."""

    resource: str
    actions: Mapping[str, Action]
    select: str | None = None
    reply: Any = "$record"

    def chosen(self, body: Any) -> Action:
        if self.select is None:
            return next(iter(self.actions.values()))
        return self.actions[str(body[self.select])]


def action(raw: Mapping[str, Any] | None) -> ActionSet | None:
    if not raw:
        return None
    acts = {
        str(name): Action(
            name=str(name),
            sources=tuple(str(s) for s in a["from"]),
            to=a.get("to"),
            via=a.get("via"),
            generate=dict(a.get("generate") or {}),
            creates=a.get("creates"),
            effect=a.get("effect"),
            without=tuple(str(w) for w in a.get("without") or ()),
            inferred=dict(a.get("inferred") or {}),
        )
        for name, a in raw["actions"].items()
    }
    return ActionSet(str(raw["resource"]), acts, raw.get("select"), raw.get("reply", "$record"))
