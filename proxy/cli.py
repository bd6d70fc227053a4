"""`mock-server proxy --api NAME --upstream URL [--port P] [--record FILE] [--report FILE]
[--fail-on-violation]` (also `python -m proxy ...`). The `mock-server` command is this module's
`main`: `proxy` is handled here, `mcp` by `sandbox_mcp.cli`, every other command by
`mock_server.cli` (which, lower in the layers, cannot import either)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mock-server proxy",
        description="A validating proxy in front of a real backend: every request and response passes "
        "through unchanged and is judged by the API's contract (its documented view; what departs only "
        "from the sandbox's inferred choices is reported apart).",
    )
    parser.add_argument("--api", required=True, help="nurosentrix, cloudnexus, cloudnexus-io or nexos")
    parser.add_argument(
        "--upstream",
        required=True,
        metavar="URL",
        help="the backend's base URL for the API (what servers[0].url would be), e.g. "
        "https://staging.example.com/v1; clients call the proxy with the same path",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8081, help="port to bind (default: 8081)")
    parser.add_argument(
        "--report",
        action="append",
        metavar="FILE",
        help="on exit, write every violation with its reproduction: JUnit XML if FILE ends in .xml, "
        "HTML if .html, Markdown otherwise; repeat for several",
    )
    parser.add_argument(
        "--record",
        type=Path,
        metavar="FILE",
        help="on exit, write the records seen in responses as a seed file (serve --seed FILE)",
    )
    parser.add_argument(
        "--fail-on-violation",
        action="store_true",
        help="answer an exchange that breaks the documented contract with a 502 in the API's envelope "
        "naming the problem (for test suites that must stop)",
    )
    parser.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS", help="upstream timeout")
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn log level (default: warning)",
    )
    return parser


def run(argv: list[str]) -> int:
    import uvicorn

    from contract import SpecError, load
    from mock_server.httpguard import server_config

    from .app import MAX_REQUEST, ProxyApp
    from .record import Recorder
    from .report import write_reports

    args = build_parser().parse_args(argv)
    problem = operator_problem(args)
    if problem:
        print(f"mock-server proxy: {problem}", file=sys.stderr)
        return 2
    try:
        contract = load(args.api)
    except (SpecError, KeyError, FileNotFoundError) as exc:
        print(f"mock-server proxy: {exc}", file=sys.stderr)
        return 2
    recorder = Recorder(contract) if args.record else None
    app = ProxyApp(
        contract,
        args.upstream,
        fail_on_violation=args.fail_on_violation,
        observer=recorder.observe if recorder else None,
        timeout=args.timeout,
    )
    # the sandbox's protocol: a head size limit and timeout, a body deadline and size limit
    config = server_config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        max_body=MAX_REQUEST,
        server_header=False,  # the upstream's Server and Date headers pass through, not ours
        date_header=False,
    )
    base = f"http://{args.host}:{args.port}{app.base_path}"
    print(f"Proxy for {contract.name}: {base} -> {app.upstream}", flush=True)
    # uvicorn re-raises the signal that stopped it once it is done: end here either way, then report
    previous = signal.signal(signal.SIGTERM, _stopped)
    try:
        uvicorn.Server(config).run()
    except (KeyboardInterrupt, _Stopped):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    for path in args.report or []:
        write_reports(app, path)
    if recorder is not None:
        recorder.write(args.record)
    s = app.status()
    print(
        f"{s['exchanges']} exchanges: {s['violations']} violations, {s['differences']} differences from "
        f"the sandbox's choices, {s['refused_requests']} requests the contract refuses",
        file=sys.stderr,
    )
    return 1 if s["violations"] or s["refused_requests"] else 0


def operator_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the command line, in one line (checked before anything starts)."""
    from urllib.parse import urlsplit

    try:
        up = urlsplit(args.upstream)
        up.port  # noqa: B018 - raises on a port out of range
    except ValueError as exc:
        return f"--upstream {args.upstream!r}: not a URL ({exc})"
    if up.scheme not in ("http", "https") or not up.hostname:
        return f"--upstream {args.upstream!r}: an http:// or https:// URL with a host is needed"
    if not 0 <= args.port <= 65535:
        return f"--port {args.port}: a port is 0 to 65535"
    if not args.timeout > 0:
        return f"--timeout {args.timeout:g}: a timeout is a positive number of seconds"
    return None


class _Stopped(Exception):
    pass


def _stopped(signum: int, frame: Any) -> None:
    raise _Stopped


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["proxy"]:
        return run(args[1:])
    if args[:1] == ["mcp"]:  # the MCP server, on the top layer beside the proxy
        from sandbox_mcp.cli import main as mcp_main

        return mcp_main(args[1:])
    from mock_server.cli import main as sandbox_main

    return sandbox_main(args)
