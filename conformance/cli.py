"""`python -m conformance run ...`: check a backend against its contract in one run."""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sys
from dataclasses import fields

from judge.profile import PROFILES

from . import usage
from .checks import ORDER
from .schemathesis_phase import PHASES

DESCRIPTION = """\
Check a backend (a real one, a staging URL or the sandbox) against one API's OpenAPI spec and
its x- extensions, and learn in one run every way it breaks the contract:

  * Schemathesis, all of its checks, in its examples, coverage, fuzzing and stateful phases;
  * domain checks read from the spec: envelope, auth, scopes, tenancy, lifecycle, pagination,
    rate-limit headers and 429s.

The default profile (documented) fails a backend only on what the vendor documents say; what
the sandbox inferred where they are silent is checked too, but reported apart.

Tokens may come from the environment instead of the command line (where `ps` and CI logs would
show them): CONFORMANCE_TOKEN, CONFORMANCE_LIMITED_TOKEN, CONFORMANCE_OTHER_TOKEN,
CONFORMANCE_REVOKED_TOKEN, CONFORMANCE_LIVE_TOKEN and, for --sandbox, SANDBOX_ADMIN_TOKEN.
No token is ever written to a report or a log line.

Every record the run creates is deleted at the end, children first (--keep-resources: kept).

Exit status: 0 no violation, 1 violations found, 2 usage error or backend unreachable,
3 incomplete (SIGINT, SIGTERM or --max-time stopped it: cleanup done, reports written, marked
incomplete)."""

EPILOG = """\
examples:
  python -m conformance run --api nurosentrix --sandbox http://127.0.0.1:8080
  export CONFORMANCE_TOKEN=... CONFORMANCE_LIMITED_TOKEN=... CONFORMANCE_OTHER_TOKEN=...
  python -m conformance run --api cloudnexus --base-url https://staging.example/v1 \\
      --rate-limit 100/m --max-time 25m --junit-xml reports/junit.xml --report reports/cloudnexus.html"""


def build_parser() -> argparse.ArgumentParser:
    """Each flag's destination is the `Options` field of its name; the defaults are Options'."""
    from .runner import Options

    d = Options(api="")
    parser = argparse.ArgumentParser(
        prog="python -m conformance",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        help="run the conformance suite against a backend",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    run.add_argument(
        "--api",
        required=True,
        metavar="NAME",
        help="the API to check: its spec is specs/NAME.yaml (nurosentrix, cloudnexus, "
        "cloudnexus-io, nexos) unless --spec is given",
    )
    run.add_argument(
        "--base-url",
        metavar="URL",
        help="the API's base URL, i.e. what the spec's servers[0].url would be "
        "(e.g. http://127.0.0.1:8080/nurosentrix/api/v1); derived from --sandbox if omitted",
    )
    env = os.environ.get
    run.add_argument(
        "--token",
        metavar="FULL",
        default=env("CONFORMANCE_TOKEN") or None,
        help="a token holding every scope (required unless --sandbox); default: $CONFORMANCE_TOKEN",
    )
    run.add_argument(
        "--limited-token",
        metavar="T",
        default=env("CONFORMANCE_LIMITED_TOKEN") or None,
        help="a token lacking at least one write scope: drives the 403 (scopes) checks; "
        "without it they are reported as skipped; default: $CONFORMANCE_LIMITED_TOKEN",
    )
    run.add_argument(
        "--other-token",
        metavar="T",
        default=env("CONFORMANCE_OTHER_TOKEN") or None,
        help="a token of a *different account*: drives the cross-account (tenancy) checks; "
        "without it they are reported as skipped; default: $CONFORMANCE_OTHER_TOKEN",
    )
    run.add_argument(
        "--revoked-token",
        metavar="T",
        default=env("CONFORMANCE_REVOKED_TOKEN") or None,
        help="a token the backend has revoked: every operation must refuse it with 401 (the auth "
        "checks); without it they try a made-up token of the right prefix; "
        "default: $CONFORMANCE_REVOKED_TOKEN",
    )
    run.add_argument(
        "--live-token",
        metavar="T",
        default=env("CONFORMANCE_LIVE_TOKEN") or None,
        help="a live-mode token of --token's account (--token being a test-mode one): drives the "
        "modes checks (records made in one mode are invisible in the other; the run creates "
        "and deletes one with it); without it they are reported as skipped; "
        "default: $CONFORMANCE_LIVE_TOKEN",
    )
    run.add_argument(
        "--admin-token",
        metavar="T",
        default=env("SANDBOX_ADMIN_TOKEN") or None,
        help="with --sandbox: the sandbox control API's admin token (serve --admin-token); "
        "default: $SANDBOX_ADMIN_TOKEN",
    )
    run.add_argument(
        "--sandbox",
        metavar="URL",
        help="instead of tokens, mint them from a running sandbox's control API "
        "(URL/_mock/tokens), in fresh accounts; the limited token gets every scope "
        "but the :write ones (also a revoked one, a live-mode one and a login user)",
    )
    run.add_argument("--spec", metavar="PATH|URL", help="read the spec from here instead of specs/NAME.yaml")
    run.add_argument("--junit-xml", metavar="PATH", help="write a JUnit XML report (one testsuite per check)")
    run.add_argument(
        "--report", metavar="PATH", help="write a Markdown report, or HTML when PATH ends in .html"
    )
    run.add_argument(
        "--max-examples",
        type=int,
        default=d.max_examples,
        metavar="N",
        help=f"Schemathesis examples per operation and phase (default: {d.max_examples})",
    )
    run.add_argument(
        "--rate-limit",
        default=d.rate_limit,
        metavar="N/m|auto",
        help="request budget shared by every phase: N/s, N/m or N/h paces requests so no "
        "window of that length holds more than N (plus the spec's x-rate-limit "
        "buckets); auto (default) follows the backend's RateLimit headers. "
        "Retry-After is always honoured",
    )
    run.add_argument(
        "--seed", type=int, metavar="N", help="seed for Schemathesis' data generation (reproducible runs)"
    )
    run.add_argument(
        "--phases",
        default=",".join(d.phases),
        metavar="LIST",
        help=f"Schemathesis phases to run, comma-separated, or 'none' (default: {','.join(PHASES)})",
    )
    run.add_argument(
        "--checks",
        default=",".join(d.checks),
        metavar="LIST",
        help=f"domain check families, comma-separated, or 'none' (default: {','.join(ORDER)}); "
        "envelope and ratelimit also gate the per-response checks",
    )
    run.add_argument(
        "--timeout",
        type=float,
        default=d.timeout,
        metavar="SECONDS",
        help=f"per-request timeout (default: {d.timeout:g})",
    )
    run.add_argument(
        "--profile",
        choices=PROFILES,
        default=d.profile,
        help="documented (default): fail a backend only on what the vendor documents say; where "
        "the sandbox inferred something (x-inferred), a different choice is reported apart and never "
        "fails the run. strict: hold the backend to every choice of the spec, as the sandbox is",
    )
    run.add_argument(
        "--baseline",
        metavar="FILE",
        help="violations listed in FILE (from --write-baseline) are reported as known and do not "
        "fail the run; only new ones do",
    )
    run.add_argument(
        "--write-baseline", metavar="FILE", help="write this run's violations to FILE (JSON), for --baseline"
    )
    run.add_argument(
        "--login-email",
        metavar="EMAIL",
        default=env("CONFORMANCE_LOGIN_EMAIL") or None,
        help="a user of the backend, for its login operation (a public operation taking email and "
        "password): a login with a wrong password must be refused (auth); the password from "
        "$CONFORMANCE_LOGIN_PASSWORD only, for the success path (--sandbox makes its own user)",
    )
    run.add_argument(
        "--webhook-secret",
        metavar="S",
        default=env("CONFORMANCE_WEBHOOK_SECRET") or None,
        help="the secret that signs webhook deliveries (an operation with x-signature, e.g. Nexos' "
        "GitHub webhook) when the record they name carries none; against the sandbox each project's "
        "own webhook_secret is used; default: $CONFORMANCE_WEBHOOK_SECRET",
    )
    run.add_argument(
        "--fill-to-max",
        action="store_true",
        help="where no documented list meta echoes the page size, create records until a list "
        "holds its documented maximum + 1, so the pagination check sees the cap (e.g. 101 servers "
        "on CloudNexus .com: costly against a real backend, so off by default; deleted afterwards)",
    )
    run.add_argument(
        "--no-success-paths",
        dest="success_paths",
        action="store_false",
        help="skip the last stage that sends each operation never answered 2xx one request built "
        "to succeed (a narrowed run: --checks one family, --phases none)",
    )
    run.add_argument(
        "--keep-resources",
        action="store_true",
        help="do not delete the records the run created (by default all are deleted at the end, "
        "children first, and the summary says created N, deleted N, left M)",
    )
    run.add_argument(
        "--max-time",
        metavar="DURATION",
        type=_duration,
        help="stop the checks after DURATION (90s, 25m, 1h), then clean up and write every report "
        "marked incomplete (exit 3); leave the cleanup a few minutes of the CI job's limit",
    )
    run.add_argument(
        "--settle-timeout",
        metavar="DURATION",
        type=_duration,
        default=None,
        help="how long a created record may take to reach its lifecycle's end (a server still "
        "provisioning, a backup running) before the settles and actions checks fail it (default "
        "30s; with --sandbox, at least the sandbox's own declared lifecycle times)",
    )
    run.add_argument(
        "--progress",
        choices=("auto", "live", "plain"),
        default="auto",
        help="auto (default): a live display on a terminal, plain lines otherwise (CI logs)",
    )
    run.add_argument(
        "--progress-interval",
        type=float,
        default=d.progress_interval,
        metavar="SECONDS",
        help=f"plain progress: a status line this often (default: {d.progress_interval:g})",
    )
    run.add_argument("-q", "--quiet", action="store_true", help="no progress display or lines on stderr")
    return parser


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")


def _duration(value: str) -> float:
    """`90`, `90s`, `25m`, `1h` → seconds."""
    m = _DURATION.match(value)
    if m is None or float(m.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"not a duration: {value!r} (e.g. 90s, 25m, 1h)")
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2) or "s"]


def _list(value: str, allowed: tuple[str, ...], flag: str) -> list[str]:
    items = [x.strip() for x in value.split(",") if x.strip()]
    if items == ["none"]:
        return []
    unknown = [x for x in items if x not in allowed]
    if unknown:
        raise ValueError(f"{flag}: unknown {', '.join(unknown)} (choose from {', '.join(allowed)} or none)")
    return items


def main(argv: list[str] | None = None) -> int:
    from .runner import EXIT_USAGE, Options, Runner, UsageError

    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    source = usage.sources(argv)

    def refuse(message: str, blame: bool = False) -> int:  # exit 2, and the reports CI uploads say why
        message = usage.named(message, source) if blame else message
        print(f"conformance: {message}", file=sys.stderr)
        for problem in usage.write(args.api, message, args.junit_xml, args.report):
            print(f"conformance: {problem}", file=sys.stderr)
        return EXIT_USAGE

    if not args.sandbox and not (args.token and args.base_url):
        return refuse("give --base-url and --token (or $CONFORMANCE_TOKEN), or --sandbox URL")
    if args.max_examples < 1:
        return refuse("--max-examples must be at least 1")
    try:
        phases = _list(args.phases, PHASES, "--phases")
        checks = _list(args.checks, ORDER, "--checks")
    except ValueError as exc:
        return refuse(str(exc))
    given = {f.name: getattr(args, f.name) for f in fields(Options) if hasattr(args, f.name)}
    options = Options(
        **{
            **given,
            # the seed used is reported: rerun with it
            "seed": args.seed if args.seed is not None else secrets.randbelow(2**31),
            "phases": phases,
            "checks": checks,
            "progress": {"live": "rich"}.get(args.progress, args.progress),
            "login_password": os.environ.get("CONFORMANCE_LOGIN_PASSWORD") or None,
        }
    )
    try:
        code, _ = Runner(options).run()
    except UsageError as exc:
        return refuse(str(exc), blame=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
