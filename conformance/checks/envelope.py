"""envelope: every response and every error has the API's envelope (`x-sandbox.envelope`) and
uses its error-code vocabulary, with the code the spec documents for the status.

The per-response check (`responses.envelope_problems`) runs on everything the suite receives,
Schemathesis' requests included; this family adds deliberate error probes so each operation's
error envelope is seen even without Schemathesis: a well-formed id that names nothing (404) and
a body of the wrong type (400).
"""

from __future__ import annotations

from . import Context, family
from .common import missing_path, protected


@family(
    "envelope",
    "success and error bodies follow x-sandbox.envelope; error codes from the spec's vocabulary",
    per_response=True,
)
def run(ctx: Context) -> None:
    contract = ctx.contract
    for op in protected(contract):
        statuses = {int(c) for c in op.responses if c.isdigit()}
        if op.path_params and 404 in statuses:
            if op.body_schema is not None:
                ctx.client.call(op, path=missing_path(contract, op), body=[])
            else:
                ctx.client.call(op, path=missing_path(contract, op))
        elif op.body_schema is not None and 400 in statuses:
            ctx.client.call(op, body=["not", "an", "object"])
