"""One response judged by the contract: its status, content type, documented headers and body
schema (`contract_problems`), its envelope and its rate-limit headers (`response_problems`).

The sandbox's self-check, the proxy and the conformance suite (on every response it receives:
Schemathesis' phases and the domain probes) all judge here. Each returns `Problem`s; the caller
turns them into failures, `Violation`s or findings; `judged_problems` sorts them by a profile.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contract import Contract, Operation

from .headers import RATE_HEADERS, delay_seconds, header, parse_policy, reset_seconds
from .profile import classify, view_op
from .schema import is_valid, schema_problems


@dataclass(frozen=True)
class Problem:
    check: str  # "envelope", "ratelimit", or a conformance check of `contract_problems`
    key: str  # stable identity, for de-duplication
    message: str


def envelope_problems(
    contract: Contract, op: Operation | None, status: int, headers: Mapping[str, Any], content: bytes
) -> list[Problem]:
    """The body against `x-sandbox.envelope`; a 429's body is reported under `ratelimit`."""
    family = "ratelimit" if status == 429 else "envelope"
    if status < 200 or status in (204, 304) or 300 <= status < 400:
        return []
    if status >= 400 and contract.template_for(op, status) is None:
        return []  # the documents promise no body for this status (its shape is the vendor's)
    if not content.strip():
        if status >= 400:
            return [
                Problem(
                    family, "empty-error", f"HTTP {status} has no body; errors must use the error envelope"
                )
            ]
        if op is not None and op.response_schema(status) is not None:
            return [Problem(family, "empty-body", f"HTTP {status} has no body; the spec documents one")]
        return []
    try:
        body = json.loads(content)
    except ValueError:
        ctype = header(headers, "content-type") or "no Content-Type"
        return [Problem(family, "not-json", f"HTTP {status} body is not JSON ({ctype}): {content[:80]!r}")]
    template = contract.template_for(op, status)
    if template is None:
        return []
    kind = "error" if status >= 400 else ("list" if template is contract.listing else "single")
    vocabulary = contract.vocabulary if kind == "error" else frozenset()
    found = template.problems(body, vocabulary)
    out = []
    if found:  # one finding per response shape, every departure listed
        key = f"{kind}:" + "|".join(sorted(_stable(p) for p in found))
        out.append(Problem(family, key, f"HTTP {status} {kind} envelope: " + "; ".join(found)))
    if kind == "error":
        code = contract.error_code(body)
        documented = contract.codes_for(op, status)
        if isinstance(code, str) and documented and code not in documented:
            out.append(
                Problem(
                    family,
                    f"code:{status}:{code}",
                    f"HTTP {status} carries error code {code!r}; the spec documents "
                    f"{', '.join(sorted(documented))} for {status}",
                )
            )
    rid = template.extract(body, "request_id")
    sent = header(headers, "X-Request-ID")
    if isinstance(rid, str) and sent is not None and rid != sent:
        out.append(
            Problem(family, "request-id", f"body request_id {rid!r} differs from X-Request-ID {sent!r}")
        )
    return out


def _stable(problem: str) -> str:
    """A problem's text without the values it quotes (so repeats de-duplicate)."""
    return re.sub(r"got .*$", "got …", problem)


def rate_limit_problems(
    contract: Contract, op: Operation | None, status: int, headers: Mapping[str, Any]
) -> list[Problem]:
    """Rate-limit headers: present on successes and 429s where documented, and coherent."""
    if op is None:
        return []
    documented = [h for h in RATE_HEADERS if h in op.response_headers(status)]
    out: list[Problem] = []

    def bad(key: str, message: str) -> None:
        out.append(Problem("ratelimit", key, message))

    values = {h: header(headers, h) for h in RATE_HEADERS}
    if documented and (200 <= status < 300 or status == 429):
        missing = [h for h in documented if values[h] is None]
        if missing:
            bad("missing", f"HTTP {status} lacks documented rate-limit header(s): {', '.join(missing)}")
    limits = {b.limit for b in op.buckets}
    windows = [b.window for b in op.buckets]
    limit = delay_seconds(values["x-ratelimit-limit"])
    remaining = delay_seconds(values["x-ratelimit-remaining"])
    seconds = reset_seconds(values["x-ratelimit-reset"], headers)
    reset = None if seconds is None else math.ceil(seconds)
    for name in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"):
        if values[name] is not None and delay_seconds(values[name]) is None:
            bad(f"int:{name}", f"{name} is not a non-negative integer: {values[name]!r}")
    if limit is not None and limits and limit not in limits:
        bad(
            "limit",
            f"X-RateLimit-Limit {limit} is not a limit of this operation's buckets ({sorted(limits)})",
        )
    if limit is not None and remaining is not None and remaining > limit:
        bad("remaining", f"X-RateLimit-Remaining {remaining} exceeds X-RateLimit-Limit {limit}")
    # an epoch reset is read against `Date`, which has whole seconds only: 1 s of slack
    epoch_slack = 0 if delay_seconds(values["x-ratelimit-reset"]) == reset else 1
    if reset is not None and windows and reset > max(windows) + epoch_slack:
        bad("reset", f"X-RateLimit-Reset {reset}s is longer than the documented window ({max(windows):g}s)")
    names: set[str] = set()
    if values["ratelimit-policy"] is not None:
        parsed = parse_policy(values["ratelimit-policy"])
        if parsed is None:
            bad(
                "policy-syntax", f"RateLimit-Policy is not a list of policies: {values['ratelimit-policy']!r}"
            )
        else:
            for name, params in parsed:
                names.add(name)
                q = delay_seconds(params.get("q"))
                if q is None:
                    bad("policy-q", f"RateLimit-Policy item {name!r} has no quota q=")
                elif limits and q not in limits:
                    bad(
                        "policy-q",
                        f"RateLimit-Policy quota q={q} is not a documented limit ({sorted(limits)})",
                    )
    if values["ratelimit"] is not None:
        parsed = parse_policy(values["ratelimit"])
        if parsed is None or len(parsed) != 1:
            bad("ratelimit-syntax", f"RateLimit is not one policy state: {values['ratelimit']!r}")
        else:
            name, params = parsed[0]
            r, t = delay_seconds(params.get("r")), delay_seconds(params.get("t"))
            if names and name not in names:
                bad("ratelimit-name", f"RateLimit names policy {name!r}, absent from RateLimit-Policy")
            if r is None or t is None:
                bad("ratelimit-rt", f"RateLimit lacks r= or t=: {values['ratelimit']!r}")
            else:
                if remaining is not None and r != remaining:
                    bad("ratelimit-r", f"RateLimit r={r} but X-RateLimit-Remaining {remaining}")
                if reset is not None and abs(t - reset) > epoch_slack:
                    bad("ratelimit-t", f"RateLimit t={t} but X-RateLimit-Reset {reset}")
    if status == 429:
        retry = header(headers, "Retry-After")
        if retry is None:
            bad("retry-after", "HTTP 429 without Retry-After")
        elif delay_seconds(retry) is None:
            bad("retry-after", f"Retry-After is not a number of seconds: {retry!r}")
        elif windows and int(retry) > max(windows):
            bad("retry-after-long", f"Retry-After {retry}s is longer than the documented window")
    return out


def response_problems(
    contract: Contract, op: Operation | None, status: int, headers: Mapping[str, Any], content: bytes
) -> list[Problem]:
    return [
        *envelope_problems(contract, op, status, headers, content),
        *rate_limit_problems(contract, op, status, headers),
    ]


def judged_problems(
    contract: Contract,
    judge: Contract,
    op: Operation | None,
    status: int,
    headers: Mapping[str, Any],
    content: bytes,
) -> list[tuple[Problem, str | None]]:
    """The problems the judge (the documented view, or the contract itself) finds, and, tagged
    with why they are not failures, those only the full contract finds."""
    full = response_problems(contract, op, status, headers, content)
    if judge is contract:
        return [(p, None) for p in full]
    documented = response_problems(judge, view_op(judge, op), status, headers, content)
    return classify(documented, full, lambda p: (p.check, p.key))


def contract_problems(
    op: Operation, status: int, headers: Mapping[str, Any], content: bytes | None, known_valid: bool = False
) -> list[Problem]:
    """The status documented for `op`, then its required headers, its content type and (JSON,
    not `known_valid`) its body schema. `content` None: the body was not seen."""
    doc = op.response(status)
    if doc is None:
        documented = ", ".join(sorted(op.responses))
        return [
            Problem(
                "status_code_conformance",
                f"status:{status}",
                f"HTTP {status} is not documented for {op.label} (documented: {documented})",
            )
        ]
    out = [
        Problem("response_headers_conformance", f"h:{name}", f"missing required header {h.name}")
        for name, h in doc.headers.items()
        if h.required and header(headers, name) is None
    ]
    ctype = (header(headers, "content-type") or "").split(";")[0].strip().lower()
    if content and doc.media_types and ctype not in doc.media_types:
        message = f"Content-Type {ctype or '(none)'} is not documented ({', '.join(doc.media_types)})"
        return [*out, Problem("content_type_conformance", f"ctype:{ctype}", message)]
    if content is None or doc.schema is None or ctype != "application/json" or known_valid:
        return out
    if not content.strip():
        return out  # an empty body is the envelope checks' finding
    try:
        value = json.loads(content)
    except ValueError:
        return out  # reported by the envelope checks ("not JSON")
    if is_valid(value, doc.schema):
        return out
    return out + [
        Problem(
            "response_schema_conformance",
            f"{p.field}:{p.reason}",
            f"HTTP {status} body: {p.field}: {p.reason}",
        )
        for p in schema_problems(value, doc.schema)[:5]
    ]


def own_problems(op: Operation, status: int, body: bytes) -> list[str]:
    """The sandbox's self-check of its own answer: the status documented, no body where none is
    documented, a JSON body valid against the documented schema."""
    doc = op.response(str(status))
    if doc is None:
        return [f"status {status} is not documented for {op.operation_id}"]
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
