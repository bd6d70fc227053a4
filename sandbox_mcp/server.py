"""The MCP server: each tool one thing a developer does with the sandbox, described so an agent
can act on it; each answer the sandbox's own (through its control API), with what only the
contract knows added (why a request was refused, what an operation documents). No token or
secret leaves but a freshly minted token, to its minter."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from contract import Contract, load_all
from mock_server.tokens import TokenService

from . import suites
from .control import Control, SandboxError
from .explain import docs_page, documented_responses, explain, find_operation, prefer_help
from .redact import Redactor

INSTRUCTIONS = """\
A contract-first sandbox of four vendor APIs (Nurosentrix, CloudNexus .com and .io, Nexos): stateful,
with bearer tokens and scopes, accounts, rate limits, asynchronous lifecycles and each API's own error
envelope, all from the vendors' documents. Start with list_apis, mint_token, then call the API over
HTTP with `Authorization: Bearer <token>`. When a request is refused, explain_request says why (the
missing scope, the bucket and its wait, the invalid fields, an unknown or revoked token). The clock is
the sandbox's: advance_clock moves lifecycles (settling says what is still changing) and rate-limit
windows. add_fault and the `Prefer: code=NNN` header (prefer lists what an operation documents) force
errors for testing retries. run_conformance and verify_rate_limits check any backend against the
contract."""

READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)
SUITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True)

Api = Annotated[str, Field(description="nurosentrix, cloudnexus, cloudnexus-io or nexos (list_apis)")]
OptionalApi = Annotated[str | None, Field(description="only this API (default: all)")]
Profile = Annotated[
    Literal["documented", "strict"],
    Field(
        description="documented: fail a backend only on what the vendor documents say (the sandbox's own "
        "choices where they are silent are reported apart); strict: hold it to the sandbox's choices too"
    ),
]


def build(sandbox_url: str, admin_token: str | None, reports: Path) -> MCPServer:
    control = Control(sandbox_url, admin_token)
    contracts = {c.name: c for c in load_all()}
    hide = Redactor([admin_token])
    server: MCPServer = MCPServer("api-sandbox", instructions=INSTRUCTIONS, log_level="WARNING")
    tool = server.tool

    def contract_of(api: str) -> Contract:
        if api not in contracts:
            raise SandboxError(f"unknown api {api!r}: one of {', '.join(contracts)}")
        return contracts[api]

    # -- APIs and tokens --------------------------------------------------------------------
    @tool(annotations=READ)
    async def list_apis() -> dict[str, Any]:
        """The APIs this sandbox serves: each one's base URL, token prefixes (test/live), scopes,
        rate limits, and where its docs and spec are. Call the base URL + the spec's paths."""
        health = await control.get("health")
        if "apis" not in health:  # a guarded sandbox's public answer: its refusal says why
            await control.get("tokens")
        apis = []
        for name, base_path in health["apis"].items():
            c = contracts.get(name)
            apis.append(
                {
                    "api": name,
                    "title": f"{c.title} {c.version}" if c else name,
                    "base_url": f"{control.url}{base_path}",
                    "token_prefixes": c.token_prefixes if c else {},
                    "scopes": list(c.scopes) if c else [],
                    "rate_limits": {b.name: b.describe() for b in c.buckets.values()} if c else {},
                    "docs_url": f"{control.url}/_mock/docs/{name}",
                    "spec_url": f"{control.url}/_mock/specs/{name}",
                    "resources": [f"sandbox://docs/{name}", f"sandbox://specs/{name}"],
                }
            )
        return hide(
            {
                "sandbox": control.url,
                "now": health["now"],
                "dashboard": f"{control.url}/_mock/ui",
                "apis": apis,
            }
        )

    @tool(annotations=WRITE)
    async def mint_token(
        api: Api,
        scopes: Annotated[
            list[str] | None, Field(description="scopes to grant (default: every scope of the API)")
        ] = None,
        mode: Annotated[
            Literal["test", "live"], Field(description="data mode; test and live never mix")
        ] = "test",
        account: Annotated[str, Field(description="the account (tenant) it acts in")] = "default",
        name: Annotated[str | None, Field(description="a label shown in token lists")] = None,
    ) -> dict[str, Any]:
        """Mint a bearer token for an API: the only answer that carries a token's value (shown once;
        the sandbox keeps a hash). Send it as `Authorization: Bearer <token>`."""
        body: dict[str, Any] = {"api": api, "mode": mode, "account": account}
        if scopes is not None:
            body["scopes"] = scopes
        if name is not None:
            body["name"] = name
        record = await control.post("tokens", body)
        value = record.pop("token")
        shown = hide(record)
        return {"token": value, **shown, "header": "Authorization: Bearer <token>"}

    @tool(annotations=DESTRUCTIVE)
    async def revoke_token(
        token: Annotated[str, Field(description="the token's value or its tok_ id")],
    ) -> dict[str, Any]:
        """Revoke a token: its next use is a 401 whose reason (explain_request) says when it was revoked."""
        await control.delete(f"tokens/{quote(token, safe='')}")
        return {"revoked": TokenService.token_id(token)}

    @tool(annotations=READ)
    async def list_tokens(
        api: OptionalApi = None,
        limit: Annotated[int, Field(ge=1, le=1000, description="tokens per page")] = 100,
        offset: Annotated[int, Field(ge=0, description="tokens to skip (the last page's next_offset)")] = 0,
    ) -> dict[str, Any]:
        """Tokens the sandbox knows, masked (never their values), in minting order, a page at a time."""
        return hide(await control.get("tokens", api=api, limit=limit, offset=offset))

    # -- the request log --------------------------------------------------------------------
    @tool(annotations=READ)
    async def list_requests(
        api: OptionalApi = None,
        status: Annotated[int | str | None, Field(description="a status (403) or a class (4xx)")] = None,
        token: Annotated[str | None, Field(description="a token (its value, masked form or tok_ id)")] = None,
        method: Annotated[str | None, Field(description="GET, POST, ...")] = None,
        path: Annotated[
            str | None, Field(description="a path prefix, e.g. /nurosentrix/api/v1/servers")
        ] = None,
        limit: Annotated[int, Field(ge=1, le=500, description="the most recent N")] = 50,
    ) -> dict[str, Any]:
        """The sandbox's request log, oldest first (it keeps the last 500), filtered as the dashboard's:
        each with its status, operation, request_id and, for a refusal, `reason`. Tokens masked."""
        found = await control.get(
            "requests",
            api=api,
            status=None if status is None else str(status),
            token=token if token is None or "…" in token else TokenService.token_id(token),
            method=method,
            path=path,
            limit=limit,
        )
        return hide(found)

    @tool(annotations=READ)
    async def explain_request(
        request_id: Annotated[
            str | None,
            Field(description="the X-Request-ID of the response (default: the latest refused request)"),
        ] = None,
        api: OptionalApi = None,
    ) -> dict[str, Any]:
        """Why the sandbox answered a request as it did: for a 403 the required, held and missing
        scopes; for a 429 the bucket, its documented limit and the wait; for a 400 the invalid fields;
        for a 401 whether the token is unknown, revoked, another API's or an expired session; whether a
        fault rule or a Prefer header forced it. With `next_step`: what to change."""
        rows = (await control.get("requests", api=api, limit=500))["requests"]
        if request_id is None:
            entry = next((r for r in reversed(rows) if r["status"] >= 400), None)
            if entry is None:
                raise SandboxError("no refused request in the sandbox's log" + (f" of {api}" if api else ""))
        else:
            entry = next((r for r in reversed(rows) if r["request_id"] == request_id), None)
            if entry is None:
                raise SandboxError(
                    f"no request {request_id!r} in the sandbox's log (it keeps the last 500 requests)"
                )
        token = await _token_record(control, entry.get("token_id"))
        return hide(explain(contracts.get(entry["api"]), entry, token))

    # -- the clock ----------------------------------------------------------------------------
    @tool(annotations=READ)
    async def settling(api: OptionalApi = None) -> dict[str, Any]:
        """Records an asynchronous lifecycle will still move (provisioning → active, ...), soonest
        first: each with its status, the next one, and in how many seconds of the sandbox clock."""
        return hide(await control.get("settling", api=api))

    @tool(annotations=WRITE)
    async def advance_clock(
        seconds: Annotated[
            float | None, Field(ge=0, le=100_000_000, description="how far to move the sandbox clock")
        ] = None,
        until_settled: Annotated[
            bool, Field(description="instead: move it until nothing is settling (of `api`)")
        ] = False,
        api: OptionalApi = None,
    ) -> dict[str, Any]:
        """Move the sandbox's clock forward: lifecycles advance, sessions expire, rate-limit windows
        pass. Returns the new time, what moved and what is still settling."""
        if (seconds is None) == (not until_settled):
            raise SandboxError("give seconds, or until_settled=true (not both)")
        before = (await control.get("settling", api=api))["settling"]
        moved = 0.0
        if until_settled:
            pending = before
            for _ in range(20):  # a lifecycle may chain transitions; each pass moves to the last due
                if not pending:
                    break
                step = max(p["in_seconds"] for p in pending) + 0.001
                await control.post("clock/advance", {"seconds": step})
                moved += step
                pending = (await control.get("settling", api=api))["settling"]
        else:
            assert seconds is not None
            await control.post("clock/advance", {"seconds": seconds})
            moved = seconds
        after = await control.get("settling", api=api)
        still = {(p["api"], p["id"]) for p in after["settling"]}
        return hide(
            {
                "now": after["now"],
                "advanced_seconds": round(moved, 3),
                "moved": [
                    {k: p[k] for k in ("api", "collection", "id", "status", "next")}
                    for p in before
                    if (p["api"], p["id"]) not in still or p["in_seconds"] <= moved
                ],
                "settling": after["settling"],
            }
        )

    @tool(annotations=DESTRUCTIVE)
    async def reset(
        api: OptionalApi = None,
        tokens: Annotated[bool, Field(description="also forget tokens and users")] = False,
        requests: Annotated[bool, Field(description="also empty the request log")] = False,
    ) -> dict[str, Any]:
        """Forget every record and fault rule (of one API, or all); with tokens=true also the tokens."""
        body: dict[str, Any] = {"tokens": tokens, "requests": requests}
        if api is not None:
            body["api"] = api
        return hide(await control.post("reset", body))

    # -- faults and Prefer -------------------------------------------------------------------
    @tool(annotations=WRITE)
    async def add_fault(
        api: Annotated[str | None, Field(description="match this API's requests")] = None,
        operation: Annotated[str | None, Field(description="match this operationId")] = None,
        method: Annotated[str | None, Field(description="match this method")] = None,
        path: Annotated[
            str | None, Field(description="match a glob on the path below the base path: /servers/*")
        ] = None,
        token: Annotated[str | None, Field(description="match this token (value or tok_ id)")] = None,
        account: Annotated[str | None, Field(description="match this account")] = None,
        status: Annotated[
            int | None,
            Field(
                ge=400,
                le=599,
                description="answer with this error in the API's envelope (only a status every matched "
                "operation documents: see prefer)",
            ),
        ] = None,
        retry_after: Annotated[int | None, Field(ge=0, description="Retry-After of a 429 or 503")] = None,
        message: Annotated[str | None, Field(description="the error's message")] = None,
        latency_ms: Annotated[
            int | list[int] | None, Field(description="a delay, or [min, max] for a uniform draw")
        ] = None,
        drop: Annotated[bool, Field(description="close the connection before any response")] = False,
        truncate: Annotated[
            int | None, Field(ge=0, description="cut the real response's body after this many bytes")
        ] = None,
        probability: Annotated[float | None, Field(ge=0, le=1, description="default 1")] = None,
        count: Annotated[int | None, Field(ge=1, description="fire at most this many times")] = None,
        seed: Annotated[int | None, Field(ge=0, description="makes the firings reproducible")] = None,
        name: Annotated[str | None, Field(description="a label")] = None,
    ) -> dict[str, Any]:
        """Add a fault rule: requests that match (and pass authentication) get an error status, a
        delay, a dropped connection or a truncated body. The rule's `fired` counter (list_faults)
        counts what it changed; reset or clear_faults removes it."""
        rule = {
            k: v
            for k, v in {
                "api": api,
                "operation": operation,
                "method": method,
                "path": path,
                "token": token,
                "account": account,
                "status": status,
                "retry_after": retry_after,
                "message": message,
                "latency_ms": latency_ms,
                "drop": True if drop else None,
                "truncate": truncate,
                "probability": probability,
                "count": count,
                "seed": seed,
                "name": name,
            }.items()
            if v is not None
        }
        return hide(await control.post("faults", rule))

    @tool(annotations=READ)
    async def list_faults(api: OptionalApi = None) -> dict[str, Any]:
        """The fault rules, in creation order, each with `seen` (requests matched) and `fired`."""
        return hide(await control.get("faults", api=api))

    @tool(annotations=DESTRUCTIVE)
    async def clear_faults(
        api: Annotated[str | None, Field(description="only the rules naming this API")] = None,
        fault_id: Annotated[str | None, Field(description="only this rule")] = None,
    ) -> dict[str, Any]:
        """Remove fault rules: one by id, those naming an API, or all."""
        if fault_id is not None:
            await control.delete(f"faults/{quote(fault_id, safe='')}")
            return {"removed": 1}
        return hide(await control.delete("faults", api=api))

    @tool(annotations=READ)
    async def prefer(
        api: Api,
        operation: Annotated[
            str | None,
            Field(description="an operationId or `METHOD /path` as the spec writes it (default: all)"),
        ] = None,
    ) -> dict[str, Any]:
        """Which statuses and named examples an operation documents: what a request's
        `Prefer: code=NNN` / `Prefer: example=NAME` header, or a fault rule's status, may ask for."""
        c = contract_of(api)
        if operation is not None:
            try:
                return prefer_help(c, find_operation(c, operation))
            except ValueError as exc:
                raise SandboxError(str(exc)) from None
        return {
            "api": api,
            "operations": [
                {
                    "operation": op.operation_id,
                    "method": op.method.upper(),
                    "path": op.path,
                    "statuses": {code: r["examples"] for code, r in documented_responses(op).items()},
                }
                for op in c.operations
            ],
            "how": "Prefer: code=NNN or Prefer: example=NAME on a request; ask with `operation` for details.",
        }

    # -- the suites ---------------------------------------------------------------------------
    @tool(annotations=SUITE)
    async def run_conformance(
        api: Api,
        base_url: Annotated[
            str | None,
            Field(
                description="a backend's base URL for the API (what the spec's servers[0].url would be); "
                "default: this sandbox, with tokens it mints in fresh accounts"
            ),
        ] = None,
        profile: Profile = "documented",
        max_time: Annotated[
            str, Field(description="the budget: 90s, 5m, 1h; then cleanup and reports")
        ] = "5m",
        max_examples: Annotated[
            int, Field(ge=1, le=1000, description="Schemathesis examples per operation and phase")
        ] = 3,
        phases: Annotated[
            str | None, Field(description="Schemathesis phases, comma-separated, or none (default: all)")
        ] = None,
        checks: Annotated[
            str | None, Field(description="domain check families, comma-separated, or none (default: all)")
        ] = None,
        rate_limit: Annotated[str, Field(description="request budget: N/s, N/m, N/h, or auto")] = "auto",
        seed: Annotated[int | None, Field(description="data-generation seed (reproducible runs)")] = None,
        token: Annotated[
            str | None,
            Field(description="with base_url: a token holding every scope (else $CONFORMANCE_TOKEN)"),
        ] = None,
        limited_token: Annotated[
            str | None, Field(description="with base_url: one lacking a write scope")
        ] = None,
        other_token: Annotated[str | None, Field(description="with base_url: one of another account")] = None,
        ctx: Context | None = None,
    ) -> dict[str, Any]:
        """Check a backend (this sandbox by default, or a staging URL) against the API's contract:
        Schemathesis plus the domain checks (envelope, auth, scopes, tenancy, lifecycle, pagination,
        rate limits). Deletes what it creates. Returns the exit code (0 no violation, 1 violations,
        3 stopped by max_time), the summary and the report paths (Markdown, JUnit XML)."""
        contract_of(api)
        return hide(
            await suites.conformance(
                api=api,
                sandbox_url=control.url,
                base_url=base_url,
                profile=profile,
                max_time=max_time,
                max_examples=max_examples,
                phases=phases,
                checks=checks,
                rate_limit=rate_limit,
                seed=seed,
                tokens={
                    "CONFORMANCE_TOKEN": token,
                    "CONFORMANCE_LIMITED_TOKEN": limited_token,
                    "CONFORMANCE_OTHER_TOKEN": other_token,
                },
                admin_token=admin_token,
                reports=reports,
                tick=_progress(ctx, f"conformance of {api}"),
            )
        )

    @tool(annotations=SUITE)
    async def verify_rate_limits(
        api: Api,
        base_url: Annotated[
            str | None, Field(description="the API's base URL on a backend (default: this sandbox)")
        ] = None,
        token: Annotated[
            str | None,
            Field(
                description="a token to spend (default, against the sandbox: one minted in a fresh account)"
            ),
        ] = None,
        window: Annotated[
            float | None,
            Field(
                gt=0, description="the server's window if not the documented one (a sandbox's --rate-window)"
            ),
        ] = None,
        users: Annotated[int, Field(ge=1, le=200, description="concurrent users")] = 10,
        buckets: Annotated[list[str] | None, Field(description="only these buckets (default: all)")] = None,
        max_requests: Annotated[int | None, Field(ge=1, description="a cap on requests")] = None,
        max_time: Annotated[float | None, Field(gt=0, description="a cap on the run, in seconds")] = None,
        profile: Profile = "documented",
        ctx: Context | None = None,
    ) -> dict[str, Any]:
        """Verify the API's documented rate limits from the outside: never more accepted than
        documented in any window, each refusal a 429 in the API's envelope with an honest Retry-After,
        the full budget back after a window of silence. At a documented 60 s window a run takes about
        6 minutes; against a sandbox serving with --rate-window W, pass window=W."""
        contract_of(api)
        if token is None:
            if base_url is not None:
                raise SandboxError("give the token to spend on that backend")
            account = f"mcp-ratelimit-{secrets.token_hex(4)}"
            token = (await control.post("tokens", {"api": api, "account": account}))["token"]
        return hide(
            await suites.rate_limits(
                api=api,
                base_url=base_url or control.url,
                token=token,
                window=window,
                users=users,
                buckets=buckets,
                max_requests=max_requests,
                max_time=max_time,
                profile=profile,
                tick=_progress(ctx, f"rate limits of {api}"),
            )
        )

    # -- resources ----------------------------------------------------------------------------
    for name, c in contracts.items():
        server.resource(
            f"sandbox://specs/{name}",
            name=f"{name}-spec",
            description=f"{c.title}: the OpenAPI spec as the sandbox serves it (JSON)",
            mime_type="application/json",
        )(_spec_reader(control, name))
        server.resource(
            f"sandbox://docs/{name}",
            name=f"{name}-docs",
            description=f"{c.title}: base URL, tokens, scopes, limits and every operation",
            mime_type="text/markdown",
        )(_docs_reader(control, c))
    return server


def _spec_reader(control: Control, api: str) -> Any:
    async def read() -> str:
        return json.dumps(await control.get(f"specs/{api}"), indent=1)

    return read


def _docs_reader(control: Control, contract: Contract) -> Any:
    async def read() -> str:
        return docs_page(contract, control.url)

    return read


def _progress(ctx: Context | None, what: str) -> suites.Tick | None:
    """Progress notifications while a suite runs (a no-op unless the client asked for them)."""
    if ctx is None:
        return None
    context = ctx

    async def tick(elapsed: float, limit: float) -> None:
        await context.report_progress(elapsed, limit, f"{what}: {elapsed:.0f} s (stopped at {limit:.0f} s)")

    return tick


async def _token_record(control: Control, token_id: str | None) -> dict[str, Any] | None:
    """The masked record of a still-valid token, by its tok_ id (None: unknown or revoked)."""
    if not token_id:
        return None
    offset: int | None = 0
    while offset is not None:
        page = await control.get("tokens", limit=1000, offset=offset)
        for t in page["tokens"]:
            if t["id"] == token_id:
                return dict(t)
        offset = page.get("next_offset")
    return None
