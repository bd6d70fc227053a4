"""Responses a test asks for instead of the real one: `Prefer: code=503, example=NAME,
delay=MS` (Prism-compatible) and the fault rules' error statuses (`faults.py`).

Only what the spec documents can be asked for: a status the operation documents (an exact code,
or one in a documented range such as `4XX`), an example the spec names. A forced response never
reaches a handler, so it never changes stored state. Errors are rendered in the API's own
envelope with a code the spec shows for that status."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from contract import Contract, Operation

from .calls import Reply
from .errors import ApiError, Problem
from .ratelimit import Decision

MAX_DELAY_MS = 60_000
# the code an error gets when the spec shows none for its status
DEFAULT_CODES = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "UNPROCESSABLE_ENTITY",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}
_PREF = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^,;\s]*))?\s*')


@dataclass(frozen=True)
class Preference:
    """What a `Prefer` header asks for; unknown preferences are ignored (RFC 7240)."""

    code: int | None = None
    example: str | None = None
    delay_ms: int | None = None

    @property
    def forces(self) -> bool:
        return self.code is not None or self.example is not None


def _bad_prefer(reason: str) -> ApiError:
    return ApiError(400, "VALIDATION_ERROR", f"Prefer header: {reason}", [Problem("Prefer", reason)])


def parse_prefer(header: str) -> Preference:
    """`code=503, example=busy; delay=200` (`,` or `;` between preferences, values may be quoted)."""
    found: dict[str, str] = {}
    for part in re.split(r"[,;]", header):
        if not part.strip():
            continue
        m = _PREF.fullmatch(part)
        if m is None:
            raise _bad_prefer(f"cannot read {part.strip()[:40]!r}")
        value = m.group(2) or ""
        if value.startswith('"'):
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        found.setdefault(m.group(1).lower(), value)
    code = delay = None
    if "code" in found:
        raw = found["code"]
        if not (raw.isascii() and raw.isdigit() and len(raw) == 3 and 100 <= int(raw) <= 599):
            raise _bad_prefer("code must be an HTTP status from 100 to 599")
        code = int(raw)
    if "delay" in found:
        raw = found["delay"]
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 6 and int(raw) <= MAX_DELAY_MS):
            raise _bad_prefer(f"delay must be milliseconds from 0 to {MAX_DELAY_MS}")
        delay = int(raw)
    example = found.get("example") or None
    return Preference(code, example, delay)


def allowed_statuses(op: Operation) -> str:
    """The statuses `op` documents, for an error message: `200, 401, 404, 429`."""
    return ", ".join(sorted(c for c in op.responses if c != "default"))


def not_documented(op: Operation, status: int, asked: str) -> ApiError:
    reason = f"{status} is not documented for {op.operation_id}; documented: {allowed_statuses(op)}"
    return ApiError(400, "VALIDATION_ERROR", f"{asked}: {reason}", [Problem(asked, reason)])


def error(spec: Contract, op: Operation, status: int, message: str, retry_after: int = 1) -> ApiError:
    """An error of `status` as `op` documents it: a code the spec shows for that status, and
    the headers the status calls for (`Retry-After` on a 429 or 503, `WWW-Authenticate` on a 401)."""
    codes = sorted(spec.codes_for(op, status) or spec.status_codes.get(status, frozenset()))
    code = codes[0] if codes else DEFAULT_CODES.get(status, "ERROR" if status < 500 else "INTERNAL_ERROR")
    headers: dict[str, str] = {}
    if status in (429, 503):
        headers["Retry-After"] = str(retry_after)
    if status == 401:
        headers["WWW-Authenticate"] = f'Bearer realm="{spec.name}"'
    return ApiError(status, code, message, headers=headers)


def rate_limited(decision: Decision | None, retry_after: int) -> dict[str, str]:
    """Rate-limit headers coherent with a forced 429: nothing remains, a slot frees in
    `retry_after` seconds, `Retry-After` says the same."""
    if decision is None:
        return {"Retry-After": str(retry_after)}
    forced = replace(decision, allowed=False, remaining=0, reset=retry_after, retry_after=retry_after)
    return forced.headers()


def preferred(spec: Contract, op: Operation, pref: Preference, decision: Decision | None) -> Reply | ApiError:
    """The reply a `Prefer: code=…, example=…` asks for (an `ApiError` to render for errors
    without a chosen example), or a 400 naming what the operation documents."""
    if pref.code is not None:
        status = pref.code
        if not op.documents(status):
            raise not_documented(op, status, "Prefer code")
    else:
        status = _status_of_example(op, str(pref.example))
    doc = op.response(status)
    assert doc is not None  # op.documents(status) said so
    headers = rate_limited(decision, 1) if status == 429 else {}
    if pref.example is not None:
        if pref.example not in doc.named_examples:
            names = ", ".join(doc.named_examples) or "none"
            reason = f"{op.operation_id} {status} has no example {pref.example!r}; its examples: {names}"
            raise ApiError(400, "VALIDATION_ERROR", f"Prefer example: {reason}", [Problem("Prefer", reason)])
        return Reply(status, doc.named_examples[pref.example], kind="raw", headers=headers)
    if status >= 400:
        err = error(spec, op, status, f"Forced by Prefer: code={status}")
        err.headers.update(headers)
        return err
    if not doc.has_body:
        return Reply(status, kind="empty", headers=headers)
    if not doc.examples:
        reason = f"{op.operation_id} documents no example for {status} to answer with"
        raise ApiError(400, "VALIDATION_ERROR", f"Prefer code: {reason}", [Problem("Prefer", reason)])
    return Reply(status, doc.examples[0], kind="raw", headers=headers)


def _status_of_example(op: Operation, name: str) -> int:
    """The documented status holding example `name` (successes first)."""
    ordered = sorted(op.responses.items(), key=lambda kv: (not kv[0].startswith("2"), kv[0]))
    for code, resp in ordered:
        if code.isdigit() and name in resp.named_examples:
            return int(code)
    names = sorted({n for c, r in op.responses.items() if c.isdigit() for n in r.named_examples})
    reason = f"{op.operation_id} has no example {name!r}; its examples: {', '.join(names) or 'none'}"
    raise ApiError(400, "VALIDATION_ERROR", f"Prefer example: {reason}", [Problem("Prefer", reason)])


def example_names(op: Operation) -> dict[str, list[str]]:
    """Each documented status's example names (for docs and messages)."""
    return {c: list(r.named_examples) for c, r in op.responses.items() if r.named_examples}
