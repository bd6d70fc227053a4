"""Lifecycle actions served from their declaration (`x-action`, specs/EXTENSIONS.md): the record
the path names (404 for another account's), its status checked against the action's `from`
(409 CONFLICT otherwise), then its `effect`, the new status (`via`, else `to`; the resource's
lifecycle carries `via` on), the generated fields and a child record it `creates` — all in one
transaction — answered by the declaration's `reply` template."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from contract import Action, ActionSet, Contract, SpecError

from .calls import Call, Reply
from .generic import id_param
from .store import Record

Effect = Callable[[Call, Record, Action], Record]


def effect(name: str) -> Effect:
    """`module.function` in `mock_server/apis` (an `effect` of `x-action`)."""
    module_name, _, func = name.rpartition(".")
    return getattr(importlib.import_module(f"{__package__}.apis.{module_name}"), func)


def check_effects(spec: Contract) -> None:
    """Every declared effect resolves (a start-up error otherwise)."""
    for op in spec.operations:
        for act in op.action.actions.values() if op.action else ():
            if act.effect:
                try:
                    effect(act.effect)
                except (ModuleNotFoundError, AttributeError) as exc:
                    raise SpecError(f"{spec.name}: {op.operation_id}: effect {act.effect} not found") from exc


def _link(call: Call, child: str, parent: str) -> str:
    """The field of a `child` record naming its `parent` (belongs-to, else the nested path's)."""
    res = call.spec.resources[child]
    for field, target in res.belongs_to.items():
        if target == parent:
            return field
    link = res.parent
    assert link is not None and link.name == parent  # checked when the spec is compiled
    return link.field


def _render(template: Any, values: dict[str, Any]) -> Any:
    if isinstance(template, str) and template.startswith("$"):
        return values.get(template[1:].rstrip("?"))
    if isinstance(template, dict):
        out = {}
        for key, sub in template.items():
            value = _render(sub, values)
            if not (value is None and isinstance(sub, str) and sub.endswith("?")):
                out[key] = value
        return out
    return template


def run(call: Call) -> Reply:
    decl: ActionSet | None = call.op.action
    assert decl is not None  # dispatched here only for operations with x-action
    act = decl.chosen(call.body)
    r, name = call.resources, decl.resource
    with call.sandbox.store.transaction():
        record = r.get(name, call.owner, call.params[id_param(call)])
        r.require_status(name, record, set(act.sources), act.name, field=decl.select or "status")
        if act.effect:
            record = effect(act.effect)(call, record, act)
        changes: Record = {f: r.generate(kind) for f, kind in act.generate.items()}
        if act.first:
            changes[r.spec.resources[name].status_field] = act.first
        if changes:
            record = r.update(name, call.owner, record["id"], changes)
        created = None
        if act.creates:
            extra = {_link(call, act.creates, name): record["id"]}
            created = r.public(act.creates, r.create(act.creates, call.owner, {}, extra=extra))
    values = {"record": r.public(name, record), "action": act.name, "created": created}
    return Reply(call.op.success_status, _render(decl.reply, values))
