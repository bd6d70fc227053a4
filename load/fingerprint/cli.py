"""The `fingerprint` subcommand's arguments (registered by `load.cli`)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any


def add_parser(
    sub: Any, apis: list[str], positive: Callable[[Callable[[str], float]], Callable[[str], float]]
) -> None:
    fp = sub.add_parser(
        "fingerprint",
        help="learn a backend's rate limiter from outside and judge it by the documents",
        description="For each operation (default: the cheapest read of each bucket) infer the limiter: "
        "algorithm (fixed-window, sliding-window, token-bucket, none), limit, window, burst, key, and "
        "how honest its headers are; then judge it by the documents. Exit 0: keeps (or undocumented); "
        "1: breaks; 2: usage error.",
    )
    fp.add_argument("--api", required=True, choices=apis)
    fp.add_argument("--base-url", required=True, metavar="URL", help="as for `ratelimit`")
    fp.add_argument("--token", metavar="T", help="bearer token (default: $<API>_TOKEN, then $LOAD_TOKEN)")
    fp.add_argument(
        "--other-token",
        metavar="T",
        default=os.environ.get("LOAD_OTHER_TOKEN"),
        help="a token of another account: tells a global limit from a per-account one",
    )
    fp.add_argument(
        "--same-account-token",
        metavar="T",
        default=os.environ.get("LOAD_SAME_ACCOUNT_TOKEN"),
        help="a second token of the same account: tells per token from per account",
    )
    fp.add_argument(
        "--operation", action="append", metavar="ID", help="probe only this operation (repeatable)"
    )
    fp.add_argument(
        "--window",
        type=positive(float),
        metavar="SECONDS",
        help="the server's window instead of the documented one (a sandbox's --rate-window)",
    )
    fp.add_argument("--profile", choices=("documented", "strict"), default="documented")
    fp.add_argument("--max-requests", type=positive(int), metavar="N", help="per operation")
    fp.add_argument("--max-time", type=positive(float), metavar="SECONDS", help="per operation")
    fp.add_argument("--json", metavar="FILE", help="write the fingerprint as JSON")
    fp.add_argument(
        "--write-overlay", metavar="FILE", help="write what was observed for `serve --rate-limits FILE`"
    )


def main(args: argparse.Namespace, token: str) -> int:
    from .run import fingerprint

    return fingerprint(
        args.api,
        args.base_url,
        token,
        other_token=args.other_token,
        same_account_token=args.same_account_token,
        operations=args.operation,
        window=args.window,
        profile=args.profile,
        max_requests=args.max_requests,
        max_time=args.max_time,
        json_path=args.json,
        overlay_path=args.write_overlay,
    )
