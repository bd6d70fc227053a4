"""Validate the sandbox's own responses against its spec (on in tests): the mock must never
answer what the contract does not allow."""

from __future__ import annotations

import json

from starlette.responses import Response

from contract import Contract, Operation

from .validation import schema_problems


def response_problems(spec: Contract, op: Operation, response: Response) -> list[str]:
    status = str(response.status_code)
    doc = op.response(status)
    if doc is None:
        return [f"status {status} is not documented for {op.operation_id}"]
    body = bytes(response.body) if hasattr(response, "body") else b""
    if not doc.has_body:
        return (
            [f"{op.operation_id} {status}: documented without a body, got {len(body)} bytes"] if body else []
        )
    if "application/json" not in doc.media_types:
        return []
    try:
        value = json.loads(body)
    except ValueError:
        return [f"{op.operation_id} {status}: body is not JSON"]
    return [
        f"{op.operation_id} {status}: {p.field}: {p.reason}" for p in schema_problems(value, doc.schema or {})
    ]
