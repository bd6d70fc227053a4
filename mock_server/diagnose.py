"""Why the sandbox refused a request, in words, for the request log (`/_mock/requests`, the
dashboard): a 401 says whether the token is unknown, revoked, another API's, or an expired
session; a 400 names its problems; a 429 (forced) the bucket that ran out.

The engine's stages write the reason of their own refusals (the missing scope, the bucket used
up, no such operation: `stages.Pass.why`); what they leave unsaid is computed here after the
response, from the request and the response alone. Never includes a token, a secret or a
rejected value."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from judge.headers import parse_structured, rate_state

from .clock import iso
from .tokens import REVOKED, token_hash

if TYPE_CHECKING:
    from contract import Contract, Operation

    from .services import Services


def credential(spec: Contract, request: Request) -> tuple[str | None, str]:
    """The bearer token (or session cookie) the request carried, and where it was found (read
    once per request: the engine authenticates with it, the request log records it)."""
    known: tuple[str | None, str] | None = request.scope.get(_CREDENTIAL)
    if known is not None:
        return known
    found: tuple[str | None, str] = (None, "")
    auth = next((v for k, v in request.scope["headers"] if k == b"authorization"), b"")  # the first
    scheme, _, value = auth.decode("latin-1").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        found = value.strip(), "Authorization header"
    elif spec.auth_cookie and request.cookies.get(spec.auth_cookie):
        found = request.cookies[spec.auth_cookie], f"{spec.auth_cookie} cookie"
    request.scope[_CREDENTIAL] = found
    return found


_CREDENTIAL = "sandbox.credential"  # the scope key `credential` keeps its finding under


def log_mask(token: str) -> str:
    """A credential as the log shows it: for the sandbox's own tokens their `masked` form (the
    prefix and 4 characters, the last 4), for anything else (a real key pasted by mistake, a
    session JWT) never more than 16 characters and the last 4, and never most of a short one."""
    if len(token) >= 36:
        return f"{token[: min(len(token) - 28, 16)]}…{token[-4:]}"
    if len(token) >= 24:
        return f"{token[:4]}…{token[-4:]}"
    return f"{token[:4]}…"


def token_fields(spec: Contract, request: Request) -> tuple[str | None, str | None]:
    """`token` (masked) and `token_id` of the credential a request carried, for the log's filters."""
    token, _ = credential(spec, request)
    if token is None or len(token) > 4096:
        return None, None
    fields = _fields_of.get(token)
    if fields is None:
        if len(_fields_of) >= 4096:
            _fields_of.clear()
        fields = _fields_of[token] = (log_mask(token), f"tok_{token_hash(token)[:16]}")
    return fields


_fields_of: dict[str, tuple[str, str]] = {}  # token -> its fields (one SHA-256 per token)


def reason(
    sandbox: Services,
    spec: Contract,
    request: Request,
    op: Operation | None,
    response: Response,
    problems: list[dict[str, str]],
) -> str | None:
    status = response.status_code
    if status < 400:
        return None
    if status == 401:
        return _unauthorised(sandbox, spec, request, op, response)
    if status == 429:
        return _rate_limited(response)
    if problems:
        return "; ".join(f"{p['field']}: {p['reason']}" for p in problems)
    if status == 404 and op is None:
        return f"no operation of {spec.name} matches {request.method} {request.url.path}"
    return _message(response)


def _unauthorised(
    sandbox: Services, spec: Contract, request: Request, op: Operation | None, response: Response
) -> str:
    token, where = credential(spec, request)
    if op is not None and op.public:
        return f"{op.operation_id} refused the credentials in the request: {_message(response) or '401'}"
    if token is None:
        raw = request.headers.get("authorization")
        if raw:
            return "the Authorization header is not `Bearer <token>`"
        cookie = spec.auth_cookie
        return "no token: no `Authorization: Bearer` header" + (f" and no {cookie} cookie" if cookie else "")
    if len(token) > 4096:
        return f"the token in the {where} is longer than any token this sandbox issues"
    tid = f"tok_{token_hash(token)[:16]}"
    record = sandbox.store.get("_mock:tokens", tid)
    if record is not None:
        if record["api"] != spec.name:
            return f"{tid} is a token of {record['api']}, not of {spec.name}"
        return f"{tid} is valid for {spec.name}, but the operation refused it: {_message(response)}"
    revoked = sandbox.store.get(REVOKED, tid)
    if revoked is not None:
        how = revoked.get("how") or "revoked"
        return f"{tid} ({revoked.get('masked')}) was {how} at {revoked.get('revoked_at')}"
    if token.count(".") == 2:
        return _session(sandbox, spec, token)
    for name, other in sandbox.specs.items():
        for mode, prefix in sorted(other.token_prefixes.items(), key=lambda p: -len(p[1])):
            if token.startswith(prefix):
                if name != spec.name:
                    return f"unknown token: its prefix {prefix} is {name}'s ({mode}), and this is {spec.name}"
                return (
                    f"unknown token ({log_mask(token)}): never minted by this sandbox, or on another "
                    "data file, or forgotten by a reset with tokens"
                )
    return f"unknown token ({log_mask(token)}): it has none of {spec.name}'s prefixes"


def _session(sandbox: Services, spec: Contract, token: str) -> str:
    """A JWT that did not verify: expired, of another API, or signed by another key."""
    from .sessions import verify

    claims = _claims(token)
    if claims is None:
        return "the token looks like a JWT but cannot be decoded"
    if claims.get("api") not in (None, spec.name):
        return f"a session of {claims.get('api')}, not of {spec.name}"
    exp = claims.get("exp")
    if isinstance(exp, int) and exp <= sandbox.clock.now():
        return f"the session expired at {iso(exp)} (the sandbox clock is at {sandbox.clock.isoformat()})"
    if verify(sandbox, spec.name, token) is None:
        return "the session's signature does not verify (another key, or altered), or its user is gone"
    return "the session was refused"


def _claims(token: str) -> dict[str, Any] | None:
    try:
        part = token.split(".")[1]
        value = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, IndexError):
        return None
    return value if isinstance(value, dict) else None


def _rate_limited(response: Response) -> str:
    name, _, wait = rate_state(response.headers.get("ratelimit"))
    if name is None or wait is None:
        return "rate limited"
    policy = (parse_structured(response.headers.get("ratelimit-policy")) or {}).get(name, {})
    q, w = policy.get("q", ""), policy.get("w", "")
    limit = f" ({q} per {w} s)" if q.isdigit() and w.isdigit() else ""
    return f'bucket "{name}"{limit} is used up; a slot frees in {wait} s (Retry-After)'


def _message(response: Response) -> str | None:
    """The `message` of the API's error envelope, wherever its template puts it."""
    body = getattr(response, "body", b"")
    if not body or len(body) > 65536:
        return None
    try:
        value = json.loads(body)
    except ValueError:
        return None
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("message", "error_description") and isinstance(v, str):
                    return v
                stack.append(v)
        elif isinstance(node, list):
            stack.extend(node)
    return None
