"""`mock-server grade --api NAME [--token T] [--since TIME]`: a running sandbox's verdicts on a
client, for scripts and CI. Exit 0 when no rule failed, 1 when one did, 2 when the sandbox
cannot be asked (not running, an unknown API)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

MARK = {"pass": "PASS", "fail": "FAIL", "not exercised": "----"}


def add_parser(sub: Any, default_url: str) -> None:
    p = sub.add_parser("grade", help="grade a client by the requests it sent to a running sandbox")
    p.add_argument("--api", required=True, help="the API whose requests are graded")
    p.add_argument("--token", help="only this token's requests (its value, masked form or tok_ id)")
    p.add_argument("--since", help="only requests from this time on (RFC 3339 or epoch seconds)")
    p.add_argument("--json", action="store_true", help="print the grade as JSON")
    p.add_argument(
        "--url",
        default=os.environ.get("SANDBOX_URL") or default_url,
        help=f"base URL of the running sandbox (default: $SANDBOX_URL, else {default_url})",
    )
    p.add_argument(
        "--admin-token",
        metavar="TOKEN",
        default=os.environ.get("SANDBOX_ADMIN_TOKEN") or None,
        help="the sandbox's --admin-token, if it has one (default: $SANDBOX_ADMIN_TOKEN)",
    )


def run(args: argparse.Namespace) -> int:
    import httpx

    from . import explain

    auth = {"Authorization": f"Bearer {args.admin_token}"} if args.admin_token else {}
    params = {k: v for k, v in (("api", args.api), ("token", args.token), ("since", args.since)) if v}
    base = args.url.rstrip("/")
    try:
        r = httpx.get(f"{base}/_mock/grade", params=params, headers=auth, timeout=30)
        rows = httpx.get(
            f"{base}/_mock/requests", params={"api": args.api, "limit": 500}, headers=auth
        ).json()
    except (httpx.HTTPError, ValueError) as exc:
        print(f"mock_server: cannot reach the sandbox at {args.url}: {exc}", file=sys.stderr)
        return 2
    if r.status_code >= 400:
        print(f"mock_server: {r.status_code} {_message(r)}", file=sys.stderr)
        return 2
    report = r.json()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(
            f"{report['api']}: {report['requests']} request(s)"
            + (f" of {report['token']}" if report["token"] else "")
        )
        for rule in report["rules"]:
            print(f"{MARK.get(rule['verdict'], '?')}  {rule['id']:<22} {rule['message']}")
        broken = explain(report, rows.get("requests"))
        if broken:
            print("\n" + broken)
    return 1 if report["failed"] else 0


def _message(r: Any) -> str:
    try:
        return str(r.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return str(r.text)
