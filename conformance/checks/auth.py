"""auth: on every operation that needs a token, no token, a malformed one and a revoked (or
revoked-looking) one each get 401 with the documented body: the operation's 401 response schema
and the error code its examples show."""

from __future__ import annotations

import secrets

from contract import MISSING
from judge.schema import first_error

from . import Context, family
from .common import example_body, missing_path, protected


@family("auth", "no, malformed and revoked tokens get 401 with the documented body on every operation")
def run(ctx: Context) -> None:
    contract = ctx.contract
    ops = protected(contract)
    for op in contract.operations:
        if op.public:
            ctx.results.skip("auth", "public operation (security: [])", op.label)
    if not ops:
        ctx.results.skip("auth", "every operation is public")
        return
    # a revoked-looking token has the prefix of the token the backend accepts (a live key's, if so)
    given = ctx.tokens.get("token") or ""
    prefix = next((p for p in contract.token_prefixes.values() if given.startswith(p)), None)
    if prefix is None:
        prefix = contract.token_prefixes.get("test") or next(iter(contract.token_prefixes.values()), "")
    revoked = ctx.revoked_token or prefix + secrets.token_urlsafe(24).replace("-", "a").replace("_", "b")
    variants = [
        ("no token", {}),
        ("a malformed token", {"Authorization": "Bearer not a token"}),
        (
            "a revoked token" if ctx.revoked_token else "a revoked-looking token",
            {"Authorization": f"Bearer {revoked}"},
        ),
    ]
    for op in ops:
        body = example_body(op)
        path = missing_path(contract, op)
        judged = ctx.judged_op(op)  # the documented 401, in the documented profile
        response = judged.response(401)
        schema = judged.response_schema(401)
        codes = ctx.judged.codes_for(judged, 401)
        clean = True
        for label, headers in variants:
            kwargs = {"body": body} if body is not MISSING else {}
            ex = ctx.client.call(op, as_=None, path=path, headers=headers, **kwargs)
            if ex.status != 401:
                clean = False
                ctx.fail("auth", ex, f"{label} answered {ex.status}, expected 401", key=f"status:{label}")
                continue
            if response is None:
                clean = False
                ctx.fail(
                    "auth", ex, "the spec documents no 401 response for this operation", key="undocumented"
                )
                continue
            data = ex.json()
            if schema is not None:
                error = first_error(data, schema) if data is not MISSING else None
                if data is MISSING or error is not None:
                    clean = False
                    why = "body is not JSON" if data is MISSING else error
                    ctx.fail(
                        "auth", ex, f"401 body does not match the documented schema: {why}", key="schema"
                    )
                    continue
            code = ctx.judged.error_code(data)
            if codes and code not in codes:
                clean = False
                ctx.fail("auth", ex, f"401 error code {code!r}, documented {sorted(codes)}", key="code")
        if clean:
            ctx.results.ok("auth", op.label)
