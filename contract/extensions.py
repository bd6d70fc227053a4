"""The `x-` extensions the engine and the suites act on, decoded once into typed fields
(`specs/EXTENSIONS.md`); compiling a spec checks them against `extensions.schema.yaml` first,
so the decoders trust their input. Nothing outside `contract/` reads these by string key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


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
class Lifecycle:
    """`x-resources.<name>.lifecycle`."""

    field: str
    transitions: tuple[Transition, ...]


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
    return Lifecycle(str(raw.get("field", "status")), steps)


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
