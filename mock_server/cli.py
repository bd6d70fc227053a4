"""`mock-server` / `python -m mock_server`: serve | token create | token list | token revoke, and the
commands of the higher layers (proxy, mcp, conformance, load: `commands.py`)."""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .commands import COMMANDS
from .commands import run as run_command
from .grading import cli as grading_cli
from .httpguard import BODY_TIMEOUT, HEAD_TIMEOUT, KEEP_ALIVE_TIMEOUT
from .listeners import Listening, PortUnavailable, listen

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
    store.add_argument(
        "--store",
        metavar="URL",
        help="keep all state in Redis (redis://HOST:PORT/DB): replicas on many machines given the "
        "same URL serve one sandbox, rate limits exact across them (docs/redis.md); a URL with a "
        "password is better given as $SANDBOX_STORE (argv is visible in `ps`)",
    )
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
        "--faults",
        type=Path,
        metavar="FILE",
        help="YAML/JSON list of fault rules to start with (as POST /_mock/faults takes them); "
        "rules never outlive a restart",
    )
    serve.add_argument(
        "--admin-token",
        metavar="TOKEN",
        help="require `Authorization: Bearer TOKEN` on the /_mock control API "
        "(set one when --host is not a loopback address; default: $SANDBOX_ADMIN_TOKEN, "
        "read after parsing with --admin-token-file, startup.resolve_secrets)",
    )
    serve.add_argument(
        "--admin-token-file",
        type=Path,
        metavar="FILE",
        help="read the admin token from FILE (or set $SANDBOX_ADMIN_TOKEN): unlike --admin-token, "
        "not shown to other local users by `ps`",
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
        "--rate-limits",
        metavar="FILE",
        help="a rate-limit overlay (e.g. from `python -m load fingerprint --write-overlay FILE`): "
        "its buckets and algorithms replace the spec's",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="serve from N processes sharing one state (the TinyDB file, rate limits, clock); default 1",
    )
    serve.add_argument(
        "--header-timeout",
        type=float,
        default=HEAD_TIMEOUT,
        metavar="SECONDS",
        help="close a connection whose request line and headers have not arrived in this time "
        f"(default: {HEAD_TIMEOUT:g})",
    )
    serve.add_argument(
        "--body-timeout",
        type=float,
        default=BODY_TIMEOUT,
        metavar="SECONDS",
        help="close a connection whose request body has not all arrived in this time (each read "
        f"within --header-timeout of the last; default: {BODY_TIMEOUT:g})",
    )
    serve.add_argument(
        "--keep-alive-timeout",
        type=int,
        default=KEEP_ALIVE_TIMEOUT,
        metavar="SECONDS",
        help=f"close a kept-alive connection idle this long (default: {KEEP_ALIVE_TIMEOUT})",
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
    grading_cli.add_parser(sub, DEFAULT_URL)
    for name, (_, summary, _) in COMMANDS.items():  # run by commands.run, before parsing
        sub.add_parser(name, help=summary, add_help=False)
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
    """Refuse what would lose data before anything is touched, in this order: the data file's
    lifetime lock (`lockfile.py`: one server per file), the data folder's writability, the
    port (bound and listening); only then open the store, revoke the last start's tokens,
    mint new ones and empty the `--workers` run directory."""
    from .lockfile import DataLock
    from .startup import argument_problem, resolve_secrets

    problem = resolve_secrets(args, DEFAULT_DATA) or argument_problem(args)
    if problem:
        return _refuse(problem)
    if args.workers < 1 or (args.workers > 1 and args.memory):
        return _refuse("--workers N needs N >= 1 and, above 1, the file store or Redis (not --memory)")
    lock = None if args.memory or args.store else DataLock(args.data)
    try:
        return _serve_locked(args, lock)
    finally:
        if lock is not None:
            lock.release()  # held for the server's whole life; a refused start lets it go at once


def _serve_locked(args: argparse.Namespace, lock: Any) -> int:
    import uvicorn

    from contract import SpecError

    from .app import SandboxApp, with_cors
    from .errors import StorageError
    from .faults import FaultError, load_faults
    from .lockfile import DataFileBusy, DataFolderUnusable, check_writable
    from .logs import quiet_access_log
    from .sandbox import Sandbox, load_all
    from .seed import SeedError, apply_seed, load_seed
    from .startup import rehearse
    from .store import MemoryStore, Store
    from .store_tinydb import StoreFileError, TinyDBStore

    try:
        if lock is not None:
            lock.acquire()
            check_writable(args.data)
        listening = listen(args.host, args.port, args.workers)  # see listeners.py
    except (DataFileBusy, DataFolderUnusable, PortUnavailable) as exc:
        return _refuse(str(exc))
    _raise_open_files_limit()
    try:
        specs = load_all(args.api)
        if args.rate_limits:
            from contract import overlay

            for spec in specs:
                overlay.apply(spec, overlay.read(Path(args.rate_limits)))
        seed = load_seed(args.seed) if args.seed else None
        rehearse(specs, seed, args.faults)  # before the store opens: nothing half-applied
        store: Store
        if args.store:
            from .store_redis import RedisStore

            store = RedisStore(args.store)
        elif args.memory:
            store = MemoryStore()
        else:
            store = TinyDBStore(args.data, group_commit=True, background_compaction=True)
        sandbox = Sandbox(
            specs,
            store,
            rate_window=args.rate_window,
            rate_limit=not args.no_rate_limit,
            async_delay=args.async_delay,
        )
        if seed is not None:
            apply_seed(sandbox, seed)
        if args.faults or not args.store:  # on Redis the rules are the sandbox's, not a replica's
            sandbox.faults.clear()  # rules are a run's: never kept from the last start
        if args.faults:
            load_faults(sandbox.faults, args.faults)
    except (SpecError, StoreFileError, SeedError, StorageError, FaultError) as exc:
        return _refuse(str(exc))
    if not sandbox.specs:
        return _refuse("no API to serve: no OpenAPI spec was found")
    base = f"http://{args.host}:{args.port}"
    if args.admin_token is None and args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"WARNING: the control API at {base}/_mock is open to anyone who can reach {args.host}; "
            "pass --admin-token to protect it",
            file=sys.stderr,
        )
    state = _masked(args.store) if args.store else "memory" if args.memory else args.data
    print(f"Sandbox state: {state}")
    try:
        for name, token, kept in sandbox.startup_tokens(rotate=args.rotate_tokens):
            how = f"kept from the last start on {'this store' if args.store else 'this data file'}"
            how = how if kept else "new"
            print(f"  {name:<14} {base}{sandbox.specs[name].base_path}")
            print(f"  {'':<14} Authorization: Bearer {token}   ({how})")
        sandbox.store.commit()  # the seed and the tokens just printed are on disk
    except (StorageError, OSError) as exc:
        return _refuse(f"cannot write the start-up tokens to {state}: {exc}")
    print(f"Control API: {base}/_mock (health, tokens, reset, requests, clock)")
    print(f"             {admin_banner(args.admin_token)}")
    print(f"API docs:    {base}/   Dashboard: {base}/_mock/ui")
    print(f"For the token CLI: export SANDBOX_URL={base}", flush=True)
    if args.workers > 1:
        return _serve_workers(args, sandbox, listening)
    app = with_cors(SandboxApp(sandbox, args.admin_token), args.cors)
    config = _config(args, app)
    quiet_access_log()  # after uvicorn configured logging
    gc.freeze()  # the loaded state is long-lived: collections scan only what requests create
    uvicorn.Server(config).run(sockets=listening.sockets)
    return 0


def admin_banner(admin_token: str | None) -> str:
    if admin_token is None:
        return "open: no admin token (serve --admin-token TOKEN or $SANDBOX_ADMIN_TOKEN would guard it)"
    return (
        "guarded: send Authorization: Bearer <the --admin-token / $SANDBOX_ADMIN_TOKEN value>; "
        "the token CLI and the dashboard ask for the same (/_mock/health is public)"
    )


def _masked(url: str) -> str:
    """A Redis URL to print: its password hidden."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _refuse(message: str) -> int:
    print(f"mock_server: {message}", file=sys.stderr)
    return 2


def _raise_open_files_limit() -> None:
    """Each connection is a file: lift the soft limit (often 1,024) to the hard one."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or hard > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 1 << 20), hard))
    except (ImportError, ValueError, OSError):
        pass


def _config(args: argparse.Namespace, app: Any, **extra: Any) -> Any:
    from .httpguard import server_config

    return server_config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        keep_alive=args.keep_alive_timeout,
        head_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        **extra,
    )


def _serve_workers(args: argparse.Namespace, sandbox: Sandbox, listening: Listening) -> int:
    """Hand the prepared state to N uvicorn worker processes (`workers.create_app`), each its
    own listening socket where there is one each (`supervisor.py`); this process keeps the data
    file's lock, the port's and every socket for them."""
    from .shared import prepare_run_dir
    from .supervisor import supervise
    from .workers import export_settings

    sandbox.store.close()  # compacted: the workers start from the file alone
    run_dir = None if args.store else prepare_run_dir(args.data.with_name(f".{args.data.name}.run"))
    export_settings(
        {
            "apis": list(sandbox.specs),
            "data": str(args.data),
            "store": args.store,
            "rate_window": args.rate_window,
            "rate_limits": args.rate_limits,
            "rate_limit": not args.no_rate_limit,
            "async_delay": args.async_delay,
            "admin_token": args.admin_token,
            "cors": args.cors,
            "run_dir": str(run_dir) if run_dir else None,
        }
    )
    print(f"Workers: {args.workers} processes, one shared state", flush=True)
    config = _config(args, "mock_server.workers:create_app", factory=True, workers=args.workers)
    supervise(config, listening)
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
            return _list_tokens(url, args.api, auth, table=not args.json and sys.stdout.isatty())
        else:
            r = httpx.delete(f"{url}/{args.token}", headers=auth)
    except httpx.HTTPError as exc:
        print(f"mock_server: cannot reach the sandbox at {args.url}: {exc}", file=sys.stderr)
        return 2
    if r.status_code >= 400:
        print(f"mock_server: {r.status_code} {r.text}{_hint(r.status_code)}", file=sys.stderr)
        return 1
    if args.token_command == "create" and not args.json:
        print(r.json()["token"])
    elif r.content:
        print(json.dumps(r.json(), indent=2))
    return 0


def _hint(status: int) -> str:
    if status != 401:
        return ""
    return (
        "\nhint: this sandbox has an admin token: pass --admin-token TOKEN or export "
        "SANDBOX_ADMIN_TOKEN (the value it was started with: serve --admin-token / $SANDBOX_ADMIN_TOKEN)"
    )


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


def _list_tokens(url: str, api: str | None, auth: dict[str, str], table: bool = False) -> int:
    """Every token, a page (1,000) at a time, printed as one JSON document (a table on a terminal)."""
    import httpx

    tokens: list[Any] = []
    offset: int | None = 0
    while offset is not None:
        params: dict[str, str | int] = {"limit": 1000, "offset": offset, **({"api": api} if api else {})}
        r = httpx.get(url, params=params, headers=auth)
        if r.status_code >= 400:
            print(f"mock_server: {r.status_code} {r.text}{_hint(r.status_code)}", file=sys.stderr)
            return 1
        page = r.json()
        tokens += page["tokens"]
        offset = page.get("next_offset")
    print(token_table(tokens) if table else json.dumps({"tokens": tokens}, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] and argv[0] in COMMANDS:
        return run_command(argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command == "grade":
        return grading_cli.run(args)
    return token_command(args)
