"""One exchange judged by the contract, in both directions.

* The request, by the sandbox's own validation (`mock_server.validation`): path, query, header
  and cookie parameters, the JSON body.
* The response, as the conformance suite's default profile judges one: its status documented,
  its content type, its body against the documented schema, its documented headers, the
  envelope and rate-limit headers (`conformance.checks.responses.judged_problems`), never a 5xx;
  and two checks only a proxy can make, since it sees the request too: a request the contract
  refuses answered with a 2xx (`negative_data_rejection`), an operation needing a token served
  without one (`ignored_auth`).

Everything is judged twice: by the spec's documented view (what fails) and by the full spec;
what only the full spec finds is a difference from the sandbox's choice, reported apart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conformance.checks.responses import INFERRED, judged_problems
from contract import Contract, Operation
from mock_server.errors import ApiError
from mock_server.validation import schema_problems, validate_body, validate_params, validator_for

ENDPOINT_INFERRED = "the endpoint is not in the documents"


@dataclass(frozen=True)
class Finding:
    check: str
    message: str
    key: str  # stable identity (repeats de-duplicate)
    inferred: str | None = None  # why it departs only from the sandbox's choice (never fails)
    side: str = "response"  # or "request": the client's, not the backend's

    @property
    def failing(self) -> bool:
        return self.inferred is None


@dataclass
class Exchange:
    """What the judge needs of one request (the response comes later)."""

    method: str
    path: str  # below the API's base path
    query: list[tuple[str, str]]
    headers: Mapping[str, str]
    cookies: Mapping[str, str]
    body: bytes
    op: Operation | None = None
    path_params: dict[str, str] | None = None
    request_refused: bool = False  # documented validation refuses it


class Judge:
    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self.documented = contract.documented

    # -- requests --------------------------------------------------------------------------
    def request(self, ex: Exchange) -> list[Finding]:
        op, path_params, _ = self.contract.match(ex.method.lower(), ex.path or "/")
        ex.op, ex.path_params = op, path_params
        if op is None:
            return []
        jop = self.documented.by_id(op.operation_id) or op
        documented = _request_problems(jop, path_params, ex)
        full = _request_problems(op, path_params, ex)
        ex.request_refused = bool(documented)
        why = ENDPOINT_INFERRED if op.provenance.inferred else None
        out = [Finding("request_validation", m, m, why, "request") for m in documented]
        out += [Finding("request_validation", m, m, INFERRED, "request") for m in full if m not in documented]
        return out

    # -- responses -------------------------------------------------------------------------
    def response(
        self, ex: Exchange, status: int, headers: Mapping[str, str], content: bytes | None
    ) -> list[Finding]:
        """`content` None: the body was streamed, not judged (too large, or not JSON)."""
        op = ex.op
        if op is None:
            if status >= 400:  # a refusal of what the spec does not show is no finding
                return []
            message = f"{ex.method} {ex.path} answered {status}: an endpoint the spec does not show"
            return [Finding("unknown_endpoint", message, "unknown", ENDPOINT_INFERRED)]
        jop = self.documented.by_id(op.operation_id) or op
        full = self._response_problems(op, self.contract, ex, status, headers, content)
        # the documented view only takes constraints out: a body the full schema accepts, it accepts
        valid = not any(check == "response_schema_conformance" for check, _, _ in full)
        documented = self._response_problems(jop, self.documented, ex, status, headers, content, valid)
        why = f"{ENDPOINT_INFERRED} ({op.provenance.reason})" if op.provenance.inferred else None
        out = [Finding(c, m, k, why) for c, m, k in documented]
        keys = {(c, k) for c, _, k in documented}
        out += [Finding(c, m, k, INFERRED) for c, m, k in full if (c, k) not in keys]
        if content is not None and self.documented is not self.contract:
            seen = {(f.check, f.key) for f in out}
            for p, why_apart in judged_problems(self.contract, self.documented, op, status, headers, content):
                if (p.check, p.key) not in seen:
                    out.append(Finding(p.check, p.message, p.key, why_apart or why))
        return out

    def _response_problems(
        self,
        op: Operation,
        contract: Contract,
        ex: Exchange,
        status: int,
        headers: Mapping[str, str],
        content: bytes | None,
        known_valid: bool = False,
    ) -> list[tuple[str, str, str]]:
        out: list[tuple[str, str, str]] = []
        if status >= 500:
            out.append(("not_a_server_error", f"HTTP {status} from the backend", f"5xx:{status}"))
        if 200 <= status < 300 and ex.request_refused:
            out.append(
                (
                    "negative_data_rejection",
                    f"HTTP {status} to a request the contract refuses",
                    "accepted-invalid",
                )
            )
        if 200 <= status < 300 and not op.public and not _credentials(contract, ex):
            out.append(("ignored_auth", f"HTTP {status} without any credentials", "no-credentials"))
        doc = op.response(status)
        if doc is None:
            documented = ", ".join(sorted(op.responses))
            out.append(
                (
                    "status_code_conformance",
                    f"HTTP {status} is not documented for {op.label} (documented: {documented})",
                    f"status:{status}",
                )
            )
            return out
        for name, h in doc.headers.items():
            if h.required and _header(headers, name) is None:
                out.append(("response_headers_conformance", f"missing required header {h.name}", f"h:{name}"))
        ctype = (_header(headers, "content-type") or "").split(";")[0].strip().lower()
        if content and doc.media_types and ctype not in doc.media_types:
            out.append(
                (
                    "content_type_conformance",
                    f"Content-Type {ctype or '(none)'} is not documented ({', '.join(doc.media_types)})",
                    f"ctype:{ctype}",
                )
            )
            return out
        if content is None or doc.schema is None or ctype != "application/json" or known_valid:
            return out
        if not content.strip():
            return out  # an empty body is the envelope checks' finding
        try:
            value = json.loads(content)
        except ValueError:
            return out  # reported by the envelope checks ("not JSON")
        if validator_for(doc.schema).is_valid(value):
            return out
        for p in schema_problems(value, doc.schema)[:5]:
            out.append(
                (
                    "response_schema_conformance",
                    f"HTTP {status} body: {p.field}: {p.reason}",
                    f"{p.field}:{p.reason}",
                )
            )
        return out


def _request_problems(op: Operation, path_params: dict[str, str], ex: Exchange) -> list[str]:
    found: list[str] = []
    try:
        validate_params(op, path_params, ex.query, ex.headers, ex.cookies)
    except ApiError as err:
        found += [f"{p.field}: {p.reason}" for p in err.details] or [err.message]
    if op.body_schema is not None:
        try:
            validate_body(op, ex.body, ex.headers.get("content-type"))
        except ApiError as err:
            found += [f"body {p.field}: {p.reason}" for p in err.details] or [f"body: {err.message}"]
    return found


def _credentials(contract: Contract, ex: Exchange) -> bool:
    if ex.headers.get("authorization"):
        return True
    return bool(contract.auth_cookie and ex.cookies.get(contract.auth_cookie))


def _header(headers: Mapping[str, Any], name: str) -> Any:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    return value


def summary(findings: list[Finding], limit: int = 512) -> str:
    """The `X-Sandbox-Violations` value: how many, then each (request ones marked), ASCII only."""
    failing = [f for f in findings if f.failing]
    parts = [f"{'request ' if f.side == 'request' else ''}{f.check}: {f.message}" for f in failing]
    text = f"{len(failing)}; " + "; ".join(parts)
    text = "".join(c if 32 <= ord(c) < 127 else "?" for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."
