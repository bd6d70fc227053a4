"""Small helpers the families share."""

from __future__ import annotations

from typing import Any

from contract import MISSING, Contract, Operation, Resource, body_for


def resource_of(contract: Contract, op: Operation) -> Resource | None:
    """The collection an operation addresses: its x-resource, else the one whose path it extends."""
    if op.resource is not None and op.resource.name in contract.resources:
        res = contract.resources[op.resource.name]
        parent = res.parent
        if op.resource.op in ("list", "create") and parent and op.path_params:
            return contract.resources.get(parent.name, res)
        return res
    best: Resource | None = None
    for res in contract.resources.values():
        get = res.get_op
        if get is None or not (op.path == get.path or op.path.startswith(get.path + "/")):
            continue
        if best is None or best.get_op is None or len(get.path) > len(best.get_op.path):
            best = res
    return best


def missing_id(res: Resource | None) -> str:
    """An id that looks right for `res` but names nothing."""
    if res is not None and res.id_style == "uuid":
        return "00000000-0000-4000-8000-00000000c0f0"
    prefix = res.id_prefix if res is not None and res.id_prefix else ""
    return f"{prefix}cf0missing0000"


def missing_path(contract: Contract, op: Operation) -> dict[str, Any]:
    res = resource_of(contract, op)
    return {p.name: missing_id(res) for p in op.path_params}


def example_body(op: Operation) -> Any:
    return body_for(op) if op.body_schema is not None else MISSING


def protected(contract: Contract) -> list[Operation]:
    return [op for op in contract.operations if not op.public]
