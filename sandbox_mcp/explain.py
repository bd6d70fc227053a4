"""What the contract says, in the shape an agent acts on: why one logged request was refused
(`explain`), which statuses and examples an operation documents for `Prefer` and fault rules
(`documented_responses`), and an API's page (`docs_page`). Pure functions of the compiled
contract and the sandbox's answers."""

from __future__ import annotations

import re
from typing import Any

from contract import Contract, Operation

_BUCKET = re.compile(r'bucket "(?P<name>[^"]+)".*?a slot frees in (?P<wait>\d+) s')


def find_operation(contract: Contract, name: str) -> Operation:
    """An operation by operationId, or by `METHOD /path` as the spec writes the path."""
    op = contract.by_id(name)
    if op is None and " " in name.strip():
        method, _, path = name.strip().partition(" ")
        op = contract.op(method, path.strip())
    if op is None:
        known = ", ".join(o.operation_id for o in contract.operations)
        raise ValueError(f"{contract.name} has no operation {name!r}; its operations: {known}")
    return op


def documented_responses(op: Operation) -> dict[str, Any]:
    """The statuses `op` documents, each with its description and named examples."""
    return {
        code: {
            "description": r.description,
            "examples": list(r.named_examples),
            "has_body": r.has_body,
            **({"inferred": r.provenance.reason} if r.provenance.inferred else {}),
        }
        for code, r in sorted(op.responses.items())
    }


def prefer_help(contract: Contract, op: Operation) -> dict[str, Any]:
    codes = sorted(c for c in op.responses if c != "default")
    examples = sorted({n for r in op.responses.values() for n in r.named_examples})
    return {
        "api": contract.name,
        "operation": op.operation_id,
        "method": op.method.upper(),
        "path": op.path,
        "responses": documented_responses(op),
        "prefer": [f"Prefer: code={c}" for c in codes if c.isdigit()]
        + [f"Prefer: example={n}" for n in examples],
        "how": "Send the header with a test-mode token's request (optionally `, delay=MS`): the sandbox "
        "answers with that documented status or example without running the operation (nothing stored "
        "changes); authentication, scopes and rate limits still come first. A status "
        "or example the operation does not document is refused with a 400 naming what it documents. "
        "Fault rules (add_fault with `status`) accept only statuses every operation they match documents.",
    }


def explain(contract: Contract | None, entry: dict[str, Any], token: dict[str, Any] | None) -> dict[str, Any]:
    """Why the sandbox answered `entry` (a row of its request log) as it did, and what to do.
    `token`: the masked record of the token it carried, if that token is still valid."""
    status = entry["status"]
    op = contract.by_id(entry["operation"]) if contract and entry.get("operation") else None
    out: dict[str, Any] = {
        "request": {k: entry.get(k) for k in ("request_id", "at", "api", "method", "path", "status")},
        "operation": entry.get("operation"),
        "token": entry.get("token"),
        "token_id": entry.get("token_id"),
        "refused": status >= 400,
        "reason": entry.get("reason"),
        "problems": entry.get("problems") or [],
    }
    if token is not None:
        out["token_scopes"] = token["scopes"]
        out["token_account"], out["token_mode"] = token["account"], token["mode"]
    forced = [p for p in out["problems"] if p.get("field") in ("fault", "Prefer")]
    if forced:
        out["forced_by"] = forced
        out["next_step"] = (
            "This answer was forced, not earned: a fault rule fired (list_faults / clear_faults) or the "
            "request's Prefer header chose it."
        )
    elif status == 403 and op is not None:
        out["required_scopes"] = list(op.scopes)
        if token is not None:
            missing = [s for s in op.scopes if s not in token["scopes"]]
            out["missing_scopes"] = missing
            if missing:
                out["next_step"] = (
                    f"Mint a token with {', '.join(missing)} as well "
                    f"(mint_token api={contract.name if contract else entry['api']!r}, scopes=[...])."
                )
    elif status == 401:
        out["next_step"] = (
            "The request's credentials were refused (see reason): mint a token of this API "
            "(mint_token) and send it as `Authorization: Bearer <token>`."
        )
    elif status == 429:
        m = _BUCKET.search(entry.get("reason") or "")
        if m:
            out["bucket"] = m.group("name")
            out["retry_after_seconds"] = int(m.group("wait"))
            bucket = contract.buckets.get(m.group("name")) if contract else None
            if bucket is not None:
                # the spec's; a sandbox serving with --rate-window says its own window in `reason`
                out["documented_limit"] = {"requests": bucket.limit, "window_seconds": bucket.window}
                if bucket.provenance.inferred:
                    out["documented_limit"]["inferred"] = bucket.provenance.reason
        out["next_step"] = (
            "Wait Retry-After seconds (or advance_clock that much) and retry; keep under the bucket's limit."
        )
    elif status in (400, 422) and out["problems"]:
        out["next_step"] = (
            "Fix the fields named in problems; the operation's schema is in the API's spec resource."
        )
    if op is not None and status >= 400:
        out["documented_statuses"] = sorted(c for c in op.responses if c != "default")
    return out


def docs_page(contract: Contract, sandbox_url: str) -> str:
    """An API's page for an agent (Markdown): where it is served, its tokens, limits, operations."""
    base = f"{sandbox_url}{contract.base_path}"
    prefixes = ", ".join(f"`{p}` ({mode})" for mode, p in contract.token_prefixes.items())
    lines = [
        f"# {contract.title} {contract.version} in the sandbox",
        "",
        f"- base URL: {base} (the vendor's: {contract.server_url})",
        f"- token prefixes: {prefixes}; send `Authorization: Bearer <token>` (mint_token makes one)",
        f"- scopes: {', '.join(contract.scopes) or 'none'}",
        f"- Swagger UI: {sandbox_url}/_mock/docs/{contract.name}; spec: resource sandbox://specs/{contract.name}",
    ]
    for b in contract.buckets.values():
        note = f" (the sandbox's choice: {b.provenance.reason})" if b.provenance.inferred else ""
        lines.append(f"- rate limit `{b.name}`: {b.describe()}{note}")
    lines += [
        "",
        "| operation | method and path | scopes | rate limits | documented statuses |",
        "|---|---|---|---|---|",
    ]
    for op in contract.operations:
        codes = ", ".join(sorted(c for c in op.responses if c != "default"))
        scopes = "public" if op.public else ", ".join(op.scopes) or "any token"
        lines.append(
            f"| {op.operation_id} | {op.method.upper()} {op.path} | {scopes} | "
            f"{', '.join(op.rate_buckets) or '-'} | {codes} |"
        )
    return "\n".join(lines) + "\n"
