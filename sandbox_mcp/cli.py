"""`mock-server mcp [--url URL | --serve-args ARGS] [--http PORT]` (also `python -m sandbox_mcp`):
the MCP server on stdio (default) or Streamable HTTP, against a running sandbox (`--url`,
`$SANDBOX_URL`; its admin token from `$SANDBOX_ADMIN_TOKEN`) or one it starts itself."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

INSTALL_HINT = (
    "mock-server mcp: the MCP SDK is not installed: pip install 'api-sandbox[mcp]' (or pip install mcp)"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mock-server mcp",
        description="An MCP server for coding agents: tools to mint tokens, read and explain the request "
        "log, move the clock, add faults, and run the conformance suite and the rate-limit verifier "
        "against the sandbox. On stdio unless --http. The sandbox's admin token, if it has one, is read "
        "from $SANDBOX_ADMIN_TOKEN only.",
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("SANDBOX_URL") or None,
        help="a running sandbox (default: $SANDBOX_URL; without either, start one with --serve-args)",
    )
    parser.add_argument(
        "--serve-args",
        default="--memory",
        metavar="ARGS",
        help="without --url: the options of the sandbox to start (`mock_server serve ARGS` on a free "
        "port; default: --memory)",
    )
    parser.add_argument("--http", type=int, metavar="PORT", help="serve Streamable HTTP on PORT (path /mcp)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="with --http: address to bind (default: 127.0.0.1)"
    )
    parser.add_argument(
        "--reports",
        type=Path,
        default=Path("reports") / "mcp",
        metavar="DIR",
        help="where run_conformance writes its reports (default: reports/mcp)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        import mcp  # noqa: F401  (the optional extra `mcp`)
    except ImportError:
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    admin_token = os.environ.get("SANDBOX_ADMIN_TOKEN") or None
    # SIGTERM (a client ending its stdio server, uvicorn re-raising it once stopped) ends here through
    # the `finally`s: a sandbox started for this server stops with it
    previous = signal.signal(signal.SIGTERM, _stopped)
    try:
        with _sandbox(args.url, args.serve_args) as url:
            return _serve(args, url, admin_token)
    except SandboxNotStarted as exc:
        print(f"mock-server mcp: {exc}", file=sys.stderr)
        return 2
    except _Stopped:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Stopped(BaseException):
    pass


def _stopped(signum: int, frame: object) -> None:
    raise _Stopped


def _serve(args: argparse.Namespace, url: str, admin_token: str | None) -> int:
    from .server import build

    server = build(url, admin_token, args.reports)
    if args.http is None:
        server.run("stdio")
        return 0
    print(
        f"MCP server (Streamable HTTP): http://{args.host}:{args.http}/mcp -> sandbox {url}", file=sys.stderr
    )
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"WARNING: anyone who can reach {args.host}:{args.http} can mint tokens and reset the sandbox "
            "through this MCP server (it has no authentication of its own)",
            file=sys.stderr,
        )
    with suppress(KeyboardInterrupt):
        server.run("streamable-http", host=args.host, port=args.http)
    return 0


class SandboxNotStarted(Exception):
    pass


@contextmanager
def _sandbox(url: str | None, serve_args: str) -> Iterator[str]:
    """`url`, or a sandbox of our own (`python -m mock_server serve ARGS` on a free port), stopped
    at the end. Its output goes to a file, never to stdout (the stdio transport's channel)."""
    if url:
        yield url.rstrip("/")
        return
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed below
    cmd = [sys.executable, "-m", "mock_server", "serve", "--port", str(port), *shlex.split(serve_args)]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise SandboxNotStarted(f"the sandbox did not start: {log.read().strip()[-500:]}")
            try:
                httpx.get(f"{base}/_mock/health", timeout=1)  # any answer: up (a 401 with --admin-token)
                break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SandboxNotStarted("the sandbox did not answer within 30 s")
            time.sleep(0.1)
        print(f"mock-server mcp: started a sandbox at {base}", file=sys.stderr)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
