"""Validate the sandbox's own responses against its spec (on in tests): the mock must never
answer what the contract does not allow. The judgement is the judge's (`judge.response`)."""

from __future__ import annotations

from starlette.responses import Response

from contract import Contract, Operation
from judge.response import own_problems


def response_problems(spec: Contract, op: Operation, response: Response) -> list[str]:
    body = bytes(response.body) if hasattr(response, "body") else b""
    return own_problems(op, response.status_code, body)
