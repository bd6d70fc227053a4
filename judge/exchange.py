"""One exchange judged by the contract, in both directions.

* The request, by the sandbox's own validation (`judge.request`): path, query, header
  and cookie parameters, the JSON body.
* The response, as the conformance suite's default profile judges one (`judge.response`): its
  status documented, its content type, its body against the documented schema, its documented
  headers, the envelope and rate-limit headers, never a 5xx;
  and two checks only a proxy can make, since it sees the request too: a request the contract
  refuses answered with a 2xx (`negative_data_rejection`), an operation needing a token served
  without one (`ignored_auth`).

Everything is judged twice: by the spec's documented view (what fails) and by the full spec;
what only the full spec finds is a difference from the sandbox's choice, reported apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from contract import Contract, Operation

from .profile import ENDPOINT_INFERRED, classify, endpoint_reason
from .refusal import Refusal
from .request import validate_body, validate_params
from .response import Problem, contract_problems, judged_problems


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
        return [
            Finding("request_validation", m, m, reason, "request")
            for m, reason in classify(documented, full, lambda m: m, why)
        ]

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
        valid = not any(p.check == "response_schema_conformance" for p in full)
        documented = self._response_problems(jop, self.documented, ex, status, headers, content, valid)
        why = endpoint_reason(op)
        found = classify(documented, full, lambda p: (p.check, p.key), why)
        out = [Finding(p.check, p.message, p.key, reason) for p, reason in found]
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
    ) -> list[Problem]:
        out: list[Problem] = []
        if status >= 500:
            out.append(Problem("not_a_server_error", f"5xx:{status}", f"HTTP {status} from the backend"))
        if 200 <= status < 300 and ex.request_refused:
            message = f"HTTP {status} to a request the contract refuses"
            out.append(Problem("negative_data_rejection", "accepted-invalid", message))
        if 200 <= status < 300 and not op.public and not _credentials(contract, ex):
            message = f"HTTP {status} without any credentials"
            out.append(Problem("ignored_auth", "no-credentials", message))
        return out + contract_problems(op, status, headers, content, known_valid)


def _request_problems(op: Operation, path_params: dict[str, str], ex: Exchange) -> list[str]:
    found: list[str] = []
    try:
        validate_params(op, path_params, ex.query, ex.headers, ex.cookies)
    except Refusal as err:
        found += [f"{p.field}: {p.reason}" for p in err.details] or [err.message]
    if op.body_schema is not None:
        try:
            validate_body(op, ex.body, ex.headers.get("content-type"))
        except Refusal as err:
            found += [f"body {p.field}: {p.reason}" for p in err.details] or [f"body: {err.message}"]
    return found


def _credentials(contract: Contract, ex: Exchange) -> bool:
    if ex.headers.get("authorization"):
        return True
    return bool(contract.auth_cookie and ex.cookies.get(contract.auth_cookie))


def summary(findings: list[Finding], limit: int = 512) -> str:
    """The `X-Sandbox-Violations` value: how many, then each (request ones marked), ASCII only."""
    failing = [f for f in findings if f.failing]
    parts = [f"{'request ' if f.side == 'request' else ''}{f.check}: {f.message}" for f in failing]
    text = f"{len(failing)}; " + "; ".join(parts)
    text = "".join(c if 32 <= ord(c) < 127 else "?" for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."
