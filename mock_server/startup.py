"""`serve`'s operator input, checked before anything is touched: every value in range (a port,
a Redis URL's port and database, windows, delays, timeouts), secrets taken from the
environment or a file rather than argv (`$SANDBOX_ADMIN_TOKEN`, `--admin-token-file`,
`$SANDBOX_STORE`: argv is visible to every local user in `ps`), and the seed and fault files
rehearsed on an empty in-memory sandbox over the same specs before the store is opened. Each
problem is one line (`cli._refuse`, exit 2)."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ADMIN_TOKEN_ENV = "SANDBOX_ADMIN_TOKEN"
STORE_ENV = "SANDBOX_STORE"


def _number(value: float | None, flag: str, *, positive: bool) -> str | None:
    if value is None:
        return None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        need = "a positive number of seconds" if positive else "a number of seconds, 0 or more"
        return f"{flag} {value:g}: {need}"
    return None


def redis_url_problem(url: str) -> str | None:
    """Why a `--store` URL cannot be used, or None (the password is never repeated)."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return "a Redis URL is redis://HOST:PORT/DB (or rediss://, unix://)"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "its port is not a number from 1 to 65535"
    if parts.scheme == "unix":
        return None if parts.path else "unix:// needs the socket's path"
    if not parts.hostname:
        return "it names no host"
    if port is not None and not 1 <= port <= 65535:
        return "its port is not a number from 1 to 65535"
    db = parts.path.strip("/")
    if db and not db.isdigit():
        return f"its database {db!r} is not a number (redis://HOST:PORT/0)"
    return None


def _masked(url: str) -> str:
    try:
        parts = urlsplit(url)
        if parts.password:
            return url.replace(f":{parts.password}@", ":***@", 1)
    except ValueError:
        pass
    return url


def resolve_secrets(args: argparse.Namespace, default_data: Path) -> str | None:
    """Fill `args.admin_token` and `args.store` from `--admin-token-file`, `$SANDBOX_ADMIN_TOKEN`
    and `$SANDBOX_STORE` (a flag wins over the environment); the problem, or None."""
    if getattr(args, "admin_token_file", None) is not None:
        if args.admin_token is not None:
            return "--admin-token and --admin-token-file: give one"
        path = Path(args.admin_token_file)
        try:
            token = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            return f"--admin-token-file {path}: cannot read it ({getattr(exc, 'strerror', None) or exc})"
        if not token or "\n" in token:
            return f"--admin-token-file {path}: the file holds one token on one line"
        args.admin_token = token
    elif args.admin_token is None and os.environ.get(ADMIN_TOKEN_ENV):
        args.admin_token = os.environ[ADMIN_TOKEN_ENV].strip()
    if args.admin_token is not None and (not args.admin_token.strip() or len(args.admin_token) < 8):
        return "the admin token is empty or shorter than 8 characters"
    if args.store is None and not args.memory and os.environ.get(STORE_ENV):
        if args.data != default_data:
            return f"--data and ${STORE_ENV}: give one"
        args.store = os.environ[STORE_ENV]
    return None


def argument_problem(args: argparse.Namespace) -> str | None:
    """The first bad value on `serve`'s command line, as one line, or None."""
    if not 0 <= args.port <= 65535:
        return f"--port {args.port}: a port is a number from 0 to 65535"
    if args.store is not None:
        problem = redis_url_problem(args.store)
        if problem:
            return f"--store {_masked(args.store)}: {problem}"
    checks: list[tuple[Any, str, bool]] = [
        (args.rate_window, "--rate-window", True),
        (args.async_delay, "--async-delay", False),
        (args.header_timeout, "--header-timeout", True),
        (getattr(args, "body_timeout", None), "--body-timeout", True),
        (args.keep_alive_timeout, "--keep-alive-timeout", False),
    ]
    for value, flag, positive in checks:
        problem = _number(value, flag, positive=positive)
        if problem:
            return problem
    for origin in args.cors or []:
        try:
            parts = urlsplit(origin)
            fine = origin == "*" or (parts.scheme in ("http", "https") and bool(parts.hostname))
            parts.port  # noqa: B018 - raises on a port out of range
        except ValueError:
            fine = False
        if not fine:
            return f"--cors {origin!r}: an origin is scheme://host[:port] (e.g. http://localhost:3000) or '*'"
    if args.data is not None and not args.memory and not args.store and args.data.is_dir():
        return f"--data {args.data}: a folder, not a file (e.g. {args.data / 'sandbox.json'})"
    return None


def rehearse(specs: list[Any], seed: dict[str, Any] | None, faults: Path | None) -> None:
    """Apply the seed and the fault rules to an empty in-memory sandbox over `specs`: what
    would fail half-way raises here (`SeedError`, `FaultError`), before the store is opened."""
    from .faults import load_faults
    from .sandbox import Sandbox
    from .seed import rehearse as rehearse_seed
    from .store import MemoryStore

    scratch = Sandbox(specs, MemoryStore(), async_delay=0)
    if seed is not None:
        rehearse_seed(scratch, seed)
    if faults is not None:
        load_faults(scratch.faults, faults)
