"""`python -m mock_server serve | token create | token list | token revoke`."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .sandbox import Sandbox

DEFAULT_DATA = Path(".sandbox") / "sandbox.json"
DEFAULT_URL = "http://127.0.0.1:8080"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mock_server",
        description="Stateful sandbox of the Nurosentrix, CloudNexus (.com and .io) and Nexos APIs, "
        "served from the OpenAPI specs in specs/.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser(
        "serve",
        help="start the sandbox HTTP server",
        description="Serve every API (or those named) on one port, each under "
        "/<api> + the path of its spec's server URL.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port to bind (default: 8080)")
    serve.add_argument(
        "--api",
        action="append",
        metavar="NAME",
        help="serve only this API; repeat for several (default: all in specs/)",
    )
    store = serve.add_mutually_exclusive_group()
    store.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help=f"TinyDB JSON file holding all state (default: {DEFAULT_DATA})",
    )
    store.add_argument("--memory", action="store_true", help="keep state in memory only")
    serve.add_argument(
        "--rate-window",
        type=float,
        metavar="SECONDS",
        help="use this window instead of each limit's documented one (fast tests)",
    )
    serve.add_argument("--no-rate-limit", action="store_true", help="switch rate limiting off")
    serve.add_argument(
        "--async-delay",
        type=float,
        metavar="SECONDS",
        help="override every asynchronous transition's delay (0: immediate)",
    )
    serve.add_argument(
        "--seed",
        type=Path,
        metavar="FILE",
        help="YAML/JSON file of accounts, tokens, users and resources to pre-create",
    )
    serve.add_argument(
        "--admin-token",
        metavar="TOKEN",
        help="require `Authorization: Bearer TOKEN` on the /_mock control API "
        "(set one when --host is not a loopback address)",
    )
    serve.add_argument(
        "--rotate-tokens",
        action="store_true",
        help="revoke the start-up tokens kept from the last start on this data file and print new ones",
    )
    serve.add_argument(
        "--cors",
        action="append",
        metavar="ORIGIN",
        help="allow browser apps served from ORIGIN (e.g. http://localhost:3000) to call the APIs; "
        "repeat for several, or '*' for any (default: off)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="serve from N processes sharing one state (the TinyDB file, rate limits, clock); default 1",
    )
    serve.add_argument(
        "--log-level",
        default="warning",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn log level (default: warning)",
    )

    token = sub.add_parser("token", help="manage tokens of a running sandbox (its control API)")
    tsub = token.add_subparsers(dest="token_command", required=True)
    create = tsub.add_parser("create", help="mint a token and print it")
    create.add_argument("--api", required=True, help="the API the token is for")
    create.add_argument("--scopes", help="comma-separated scopes (default: every scope)")
    create.add_argument("--mode", choices=["test", "live"], default="test", help="data mode (default: test)")
    create.add_argument("--account", default="default", help="account (tenant) id (default: default)")
    create.add_argument("--name", help="a label for the token")
    create.add_argument("--json", action="store_true", help="print the whole record as JSON")
    lst = tsub.add_parser("list", help="list tokens (masked)")
    lst.add_argument("--api", help="only this API's tokens")
    revoke = tsub.add_parser("revoke", help="revoke a token (by value or tok_ id)")
    revoke.add_argument("token")
    lst.add_argument("--json", action="store_true", help="print JSON even on a terminal")
    for p in (create, lst, revoke):
        p.add_argument(
            "--url",
            default=os.environ.get("SANDBOX_URL") or DEFAULT_URL,
            help=f"base URL of the running sandbox (default: $SANDBOX_URL, else {DEFAULT_URL})",
        )
        p.add_argument(
            "--admin-token",
            metavar="TOKEN",
            default=os.environ.get("SANDBOX_ADMIN_TOKEN") or None,
            help="the sandbox's --admin-token, if it has one (default: $SANDBOX_ADMIN_TOKEN)",
        )
    return parser


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from contract import SpecError

    from .app import SandboxApp, with_cors
    from .logs import NoQueryStrings
    from .sandbox import Sandbox, load_all
    from .seed import SeedError, apply_seed, load_seed
    from .store import MemoryStore, Store
    from .store_tinydb import StoreFileError, TinyDBStore

    if args.workers < 1 or (args.workers > 1 and args.memory):
        print(
            "mock_server: --workers N needs N >= 1 and, above 1, the file store (not --memory)",
            file=sys.stderr,
        )
        return 2
    try:
        specs = load_all(args.api)
        store: Store = (
            MemoryStore()
            if args.memory
            else TinyDBStore(args.data, group_commit=True, background_compaction=True)
        )
        sandbox = Sandbox(
            specs,
            store,
            rate_window=args.rate_window,
            rate_limit=not args.no_rate_limit,
            async_delay=args.async_delay,
        )
        if args.seed:
            apply_seed(sandbox, load_seed(args.seed))
    except (SpecError, StoreFileError, SeedError) as exc:
        print(f"mock_server: {exc}", file=sys.stderr)
        return 2
    if not sandbox.specs:
        print("mock_server: no API to serve: no OpenAPI spec was found", file=sys.stderr)
        return 2
    base = f"http://{args.host}:{args.port}"
    if args.admin_token is None and args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"WARNING: the control API at {base}/_mock is open to anyone who can reach {args.host}; "
            "pass --admin-token to protect it",
            file=sys.stderr,
        )
    print(f"Sandbox state: {'memory' if args.memory else args.data}")
    for name, token, kept in sandbox.startup_tokens(rotate=args.rotate_tokens):
        how = "kept from the last start on this data file" if kept else "new"
        print(f"  {name:<14} {base}{sandbox.specs[name].base_path}")
        print(f"  {'':<14} Authorization: Bearer {token}   ({how})")
    sandbox.store.commit()  # the seed and the tokens just printed are on disk
    print(f"Control API: {base}/_mock (health, tokens, reset, requests, clock)")
    print(f"API docs:    {base}/   Dashboard: {base}/_mock/ui")
    print(f"For the token CLI: export SANDBOX_URL={base}", flush=True)
    if args.workers > 1:
        return _serve_workers(args, sandbox)
    config = uvicorn.Config(
        with_cors(SandboxApp(sandbox, args.admin_token), args.cors),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
    )
    logging.getLogger("uvicorn.access").addFilter(NoQueryStrings())  # after uvicorn configured logging
    gc.freeze()  # the loaded state is long-lived: collections scan only what requests create
    uvicorn.Server(config).run()
    return 0


def _serve_workers(args: argparse.Namespace, sandbox: Sandbox) -> int:
    """Hand the prepared state to N uvicorn worker processes (`workers.create_app`)."""
    import uvicorn

    from .shared import prepare_run_dir
    from .workers import export_settings

    sandbox.store.close()  # compacted: the workers start from the file alone
    run_dir = prepare_run_dir(args.data.with_name(f".{args.data.name}.run"))
    export_settings(
        {
            "apis": list(sandbox.specs),
            "data": str(args.data),
            "rate_window": args.rate_window,
            "rate_limit": not args.no_rate_limit,
            "async_delay": args.async_delay,
            "admin_token": args.admin_token,
            "cors": args.cors,
            "run_dir": str(run_dir),
        }
    )
    print(f"Workers: {args.workers} processes, one shared state", flush=True)
    uvicorn.run(
        "mock_server.workers:create_app",
        factory=True,
        workers=args.workers,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
    )
    return 0


def token_command(args: argparse.Namespace) -> int:
    import httpx

    url = args.url.rstrip("/") + "/_mock/tokens"
    auth = {"Authorization": f"Bearer {args.admin_token}"} if args.admin_token else {}
    try:
        if args.token_command == "create":
            body = {"api": args.api, "mode": args.mode, "account": args.account, "name": args.name}
            if args.scopes is not None:
                body["scopes"] = [s for s in args.scopes.split(",") if s]
            r = httpx.post(url, json=body, headers=auth)
        elif args.token_command == "list":
            r = httpx.get(url, params={"api": args.api} if args.api else None, headers=auth)
        else:
            r = httpx.delete(f"{url}/{args.token}", headers=auth)
    except httpx.HTTPError as exc:
        print(f"mock_server: cannot reach the sandbox at {args.url}: {exc}", file=sys.stderr)
        return 2
    if r.status_code >= 400:
        print(f"mock_server: {r.status_code} {r.text}", file=sys.stderr)
        return 1
    if args.token_command == "create" and not args.json:
        print(r.json()["token"])
    elif args.token_command == "list" and not args.json and sys.stdout.isatty():
        print(token_table(r.json()["tokens"]))
    elif r.content:
        print(json.dumps(r.json(), indent=2))
    return 0


def token_table(tokens: list[dict[str, Any]]) -> str:
    """`token list` on a terminal: one line per token, columns aligned."""
    head = ("ID", "API", "TOKEN", "MODE", "ACCOUNT", "NAME", "CREATED", "SCOPES")
    rows = [
        (
            t["id"],
            t["api"],
            t["masked"],
            t["mode"],
            t["account"],
            t.get("name") or "",
            t["created_at"],
            " ".join(t["scopes"]),
        )
        for t in tokens
    ]
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head) - 1)]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1]
        for r in [head, *rows]
    ]
    return "\n".join(lines) if rows else "no tokens"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    return token_command(args)
