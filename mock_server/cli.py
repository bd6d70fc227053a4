"""`python -m mock_server serve | token create | token list | token revoke`."""

from __future__ import annotations

import argparse
import gc
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .sandbox import Sandbox

DEFAULT_DATA = Path(".sandbox") / "sandbox.json"


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
    for p in (create, lst, revoke):
        p.add_argument(
            "--url",
            default="http://127.0.0.1:8080",
            help="base URL of the running sandbox (default: http://127.0.0.1:8080)",
        )
        p.add_argument("--admin-token", metavar="TOKEN", help="the sandbox's --admin-token, if it has one")
    return parser


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import SandboxApp
    from .logs import quiet_access_log
    from .sandbox import Sandbox, load_all
    from .seed import SeedError, apply_seed, load_seed
    from .spec import SpecError
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
    base = f"http://{args.host}:{args.port}"
    if args.admin_token is None and args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"WARNING: the control API at {base}/_mock is open to anyone who can reach {args.host}; "
            "pass --admin-token to protect it",
            file=sys.stderr,
        )
    print(f"Sandbox state: {'memory' if args.memory else args.data}")
    for name, spec in sandbox.specs.items():
        for old in sandbox.tokens.list(name):
            if old.get("name") == "startup":
                sandbox.tokens.revoke(old["id"])
        token, _ = sandbox.mint(name, name="startup")
        print(f"  {name:<14} {base}{spec.base_path}\n  {'':<14} Authorization: Bearer {token}")
    sandbox.store.commit()  # the seed and the tokens just printed are on disk
    print(f"Control API: {base}/_mock (health, tokens, reset, requests, clock)", flush=True)
    if args.workers > 1:
        return _serve_workers(args, sandbox)
    config = uvicorn.Config(
        SandboxApp(sandbox, args.admin_token), host=args.host, port=args.port, log_level=args.log_level
    )
    quiet_access_log()  # after uvicorn configured logging
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
    elif r.content:
        print(json.dumps(r.json(), indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    return token_command(args)
