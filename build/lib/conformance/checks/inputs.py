"""inputs: what breaks real servers, sent to every operation in every run (whatever
`--max-examples`): text that is not ASCII (accents, the astral plane, combining marks), strings at
their maximum length, boundary and very large numbers, empty arrays and objects, and a value of
the wrong type where an enum is expected, in each field of the body, the query and the path.

A valid value must not break the backend, and an invalid one must be refused with a 4xx: any 5xx
is reported (under `not_a_server_error`, by the client's observer), with its reproduction."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from contract import MISSING, Operation, Resource

from ..factory import CannotCreate, Created
from . import Context, family
from .common import resource_of

PER_OPERATION = 12  # requests per operation at the most: a few, whatever the spec's size
TEXT = ("Ünïcødé façade — ✓", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 😀🚀", "e\u0301\u0301\u0301 a\u20dd z\u0336")


def _kind(schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    return kind if isinstance(kind, str) else None


def variants(schema: dict[str, Any], turn: int) -> Iterator[Any]:
    """Values for one field: the valid ones that break real servers, then one of a wrong type."""
    if schema.get("enum"):
        yield {"unexpected": ["object"]}  # a non-string where a string enum is read: a classic crash
        yield 12345
        return
    kind = _kind(schema)
    if kind == "string" and not schema.get("format") and not schema.get("pattern"):
        yield TEXT[turn % len(TEXT)]
        if schema.get("maxLength"):
            yield "é" * int(schema["maxLength"])
    elif kind in ("integer", "number"):
        for key in ("minimum", "maximum"):
            if key in schema:
                yield schema[key]
        if "maximum" not in schema:
            yield 10**18 if kind == "integer" else 1e308
    elif kind == "array":
        yield []
    elif kind == "object":
        yield {}


@family("inputs", "text, sizes and numbers that break real servers; never a 5xx")
def run(ctx: Context) -> None:
    records: dict[str, Created | None] = {}
    for op in ctx.contract.operations:
        if op.public and op.method != "get":
            continue  # logins, webhooks and node registration need secrets an input cannot carry
        path = _path(ctx, op, records)
        if path is None:
            ctx.results.skip("inputs", "no record to address its path parameters with", op.label)
            continue
        sent = 0
        for query, body in _requests(ctx, op):
            if sent >= PER_OPERATION:
                break
            kwargs: dict[str, Any] = {"body": body} if body is not MISSING else {}
            ex = ctx.client.call(op, path=path, query=query or None, **kwargs)
            sent += 1
            _keep(ctx, op, ex)
        for name in [p.name for p in op.path_params][-1:]:
            if sent < PER_OPERATION:
                ctx.client.call(op, path={**path, name: TEXT[1]})  # an id no server has seen
        ctx.results.ok("inputs", op.label)


def _requests(ctx: Context, op: Operation) -> Iterator[tuple[dict[str, Any], Any]]:
    res = resource_of(ctx.contract, op)
    base = ctx.factory.body(op, res, depth=9) if op.body_schema is not None else MISSING
    props = (op.body_schema or {}).get("properties") or {}
    turn = 0
    if isinstance(base, dict):
        for name, schema in props.items():
            for value in variants(schema if isinstance(schema, dict) else {}, turn):
                body = copy.deepcopy(base)
                body[name] = value
                turn += 1
                yield {}, body
    for p in op.params:
        if p.location == "query":
            for value in variants(p.schema, turn):
                if isinstance(value, (str, int, float)):
                    turn += 1
                    yield {p.name: value}, base


def _path(ctx: Context, op: Operation, records: dict[str, Created | None]) -> dict[str, Any] | None:
    """Path parameters naming real records of this run (the parent's for a nested collection)."""
    if not op.path_params:
        return {}
    res = resource_of(ctx.contract, op)
    if res is None:
        return None
    if res.name not in records:
        try:
            records[res.name] = ctx.factory.create(res)
        except CannotCreate:
            records[res.name] = None
    obj = records[res.name]
    if obj is None:
        return None
    names = [p.name for p in op.path_params]
    path = {names[0]: obj.id} if len(names) == 1 else {**obj.parent_path, names[-1]: obj.id}
    return path if set(path) == set(names) else None


def _keep(ctx: Context, op: Operation, ex: Any) -> None:
    """What a create accepted is deleted at the end, like every record of the run."""
    res: Resource | None = resource_of(ctx.contract, op)
    if res is None or op is not res.create_op or not 200 <= ex.status < 300:
        return
    data = ctx.factory.extract(op, ex)
    if isinstance(data, dict) and isinstance(data.get("id"), (str, int)):
        ctx.factory.created.append(Created(res, str(data["id"]), data, {}, {}, ex))
