"""`python -m load ratelimit ...` (the rate-limit verifier) and `python -m load run ...` (a
headless Locust run of one API's workload, with its HTML report and CSV)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from . import LOCUSTFILES, token_env_vars

LOAD_DIR = Path(__file__).resolve().parent


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = kind(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {raw!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive: {raw!r}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m load",
        description="Load tests of the sandbox APIs, driven by their specs (specs/*.yaml).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    apis = sorted(LOCUSTFILES)

    rl = sub.add_parser(
        "ratelimit",
        help="verify an API's documented rate limits against a running server",
        description="Drive one token past the documented limits with concurrent users and check what "
        "was observed: never more accepted than documented in any window, every refusal a 429 in the "
        "API's envelope with an honest Retry-After, coherent limit/remaining headers, and the full "
        "budget back after a window of silence. Exit 0: the contract holds; 1: it does not; "
        "2: usage error (bad arguments, unreachable URL, token refused).",
    )
    rl.add_argument("--api", required=True, choices=apis, help="the spec to read the limits from")
    rl.add_argument(
        "--base-url",
        required=True,
        metavar="URL",
        help="the API's base URL (e.g. http://127.0.0.1:8080/nurosentrix/api/v1); a bare origin is "
        "taken as a sandbox and gets the API's mount path appended",
    )
    rl.add_argument(
        "--token",
        metavar="T",
        help="bearer token to spend (default: $<API>_TOKEN, then $LOAD_TOKEN); use a fresh one: the test "
        "creates and deletes resources with it",
    )
    rl.add_argument(
        "--window",
        type=_positive(float),
        metavar="SECONDS",
        help="the window the server uses instead of the documented one (a sandbox run with "
        "--rate-window SECONDS); default: documented (60 s: a full run then takes about 6 minutes)",
    )
    rl.add_argument(
        "--users", type=_positive(int), default=10, metavar="N", help="concurrent users (default 10)"
    )
    rl.add_argument(
        "--bucket",
        action="append",
        metavar="NAME",
        help="verify only this bucket of x-sandbox.rate-limits (repeatable; default: all)",
    )
    rl.add_argument(
        "--max-requests",
        type=_positive(int),
        metavar="N",
        help="hard cap on requests (default: 6x the limits)",
    )
    rl.add_argument(
        "--max-time", type=_positive(float), metavar="SECONDS", help="hard cap on the run's duration"
    )
    rl.add_argument(
        "--profile",
        choices=("documented", "strict"),
        default="documented",
        help="documented (default): verify only the limits the vendor documents state; strict: also "
        "the sandbox's own choices where they state none (x-sandbox.rate-limits `inferred`)",
    )

    from .fingerprint.cli import add_parser as add_fingerprint

    add_fingerprint(sub, apis, _positive)

    run = sub.add_parser(
        "run",
        help="run one API's mixed Locust workload headless (HTML report, CSV)",
        description="Headless Locust run of load/<api>.py. Extra Locust options may follow `--`.",
    )
    run.add_argument("--api", required=True, choices=apis)
    run.add_argument("--base-url", required=True, metavar="URL", help="as for `ratelimit`")
    run.add_argument(
        "--token",
        metavar="T",
        help="bearer token shared by every user (default: $<API>_TOKEN, $LOAD_TOKEN; else each user "
        "mints its own from the sandbox's control API /_mock/tokens)",
    )
    run.add_argument(
        "--admin-token",
        metavar="T",
        default=os.environ.get("SANDBOX_ADMIN_TOKEN") or None,
        help="when users mint their own tokens: the sandbox control API's admin token "
        "(serve --admin-token; default: $SANDBOX_ADMIN_TOKEN), passed to them in the environment",
    )
    run.add_argument("--users", "-u", type=_positive(int), required=True, metavar="N")
    run.add_argument("--spawn-rate", "-r", type=_positive(float), required=True, metavar="R")
    run.add_argument("--run-time", "-t", required=True, metavar="T", help="e.g. 30s, 5m")
    run.add_argument("--html", metavar="PATH", help="write Locust's HTML report (charts) here")
    run.add_argument("--csv", metavar="PREFIX", help="write Locust's CSV files with this prefix")
    run.add_argument(
        "--respect-limits",
        action="store_true",
        help="pace the users to stay under the documented limits per token (default: exceed them "
        "deliberately; well-formed 429s are then reported as '<name> (429)')",
    )
    run.add_argument(
        "--window", type=_positive(float), metavar="SECONDS", help="the server's window, as for `ratelimit`"
    )
    run.add_argument("locust_args", nargs=argparse.REMAINDER, help="after --: more Locust options")
    return parser


def _token(args: argparse.Namespace) -> str | None:
    if args.token:
        return str(args.token)
    for name in token_env_vars(args.api):
        if os.environ.get(name):
            return os.environ[name]
    return None


def locust_command(args: argparse.Namespace, token: str | None) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOAD_DIR / f"{LOCUSTFILES[args.api]}.py"),
        "--headless",
        "--host",
        args.base_url,
        "--users",
        str(args.users),
        "--spawn-rate",
        str(args.spawn_rate),
        "--run-time",
        args.run_time,
        "--only-summary",
    ]
    if args.html:
        cmd += ["--html", args.html]
    if args.csv:
        cmd += ["--csv", args.csv]
    if args.respect_limits:
        cmd.append("--respect-limits")
    if args.window:
        cmd += ["--window", str(args.window)]
    extra = list(args.locust_args)
    if extra and extra[0] == "--":
        extra = extra[1:]
    return cmd + extra


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    token = _token(args)
    if args.command == "fingerprint":
        if not token:
            parser.error(f"--token is required (or set ${token_env_vars(args.api)[0]} or $LOAD_TOKEN)")
        from .fingerprint.cli import main as fingerprint_main

        return fingerprint_main(args, token)
    if args.command == "ratelimit":
        if not token:
            parser.error(f"--token is required (or set ${token_env_vars(args.api)[0]} or $LOAD_TOKEN)")
        from .ratelimit import verify

        return verify(
            args.api,
            args.base_url,
            token,
            window=args.window,
            users=args.users,
            buckets=args.bucket,
            max_requests=args.max_requests,
            max_time=args.max_time,
            profile=args.profile,
        )
    env = dict(os.environ)
    if token:  # in the environment, not on the command line: `ps` shows arguments to everyone
        env[token_env_vars(args.api)[0]] = token
    if args.admin_token:
        env["SANDBOX_ADMIN_TOKEN"] = args.admin_token
    root = str(LOAD_DIR.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    try:
        return subprocess.call(locust_command(args, None), env=env)
    except KeyboardInterrupt:
        return 130
