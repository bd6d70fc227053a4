"""auth: on every operation that needs a token, no token, a malformed one and a revoked (or
revoked-looking) one each get 401 with the documented body: the operation's 401 response schema
and the error code its examples show (in the documented view only where the document states the
body for that very status: `x-stated-code`). With a user's email (`--login-email`), the login
operation refuses a wrong password: 401 where it documents one, else any 4xx."""

from __future__ import annotations

import secrets

from contract import MISSING, Operation, body_for
from judge.schema import first_error

from ..success import is_login
from . import Context, family
from .common import example_body, missing_path, protected


@family("auth", "no, malformed and revoked tokens get 401 with the documented body on every operation")
def run(ctx: Context) -> None:
    contract = ctx.contract
    ops = protected(contract)
    for op in contract.operations:
        if op.public and not is_login(op):
            ctx.results.skip("auth", "public operation (security: [])", op.label)
        elif op.public:
            _wrong_password(ctx, op)
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


def _wrong_password(ctx: Context, op: Operation) -> None:
    """A login with the user's email and a surely-wrong password is refused."""
    if ctx.login_email is None:
        ctx.results.skip("auth", "SKIPPED: a wrong-password login needs --login-email (not given)", op.label)
        return
    body = {
        **(body_for(op) or {}),
        "email": ctx.login_email,
        "password": "wrong-" + secrets.token_urlsafe(12),
    }
    ex = ctx.client.call(op, as_=None, body=body)
    stated = "401" in ctx.judged_op(op).responses  # else the documents show no failed login
    if ex.status == 429:
        ctx.results.skip("auth", "the wrong-password login was rate-limited (429): not judged", op.label)
    elif not 400 <= ex.status < 500:
        ctx.fail("auth", ex, f"a login with a wrong password answered {ex.status}, expected a refusal "
                 f"({'401' if stated else '4xx'})", key="wrong-password")  # fmt: skip
    elif stated and ex.status != 401:
        ctx.fail("auth", ex, f"a login with a wrong password answered {ex.status}, documented 401",
                 key="wrong-password-status")  # fmt: skip
    else:
        ctx.results.ok("auth", op.label)
