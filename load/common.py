"""The shared base of the Locust files `load/<api>.py`: spec-driven requests, token handling,
pacing under the documented limits, and answer checking.

Options added to Locust's command line (`events.init_command_line_parser`):
  --token T          bearer token shared by every user. Default: $<API>_TOKEN, then $LOAD_TOKEN;
                     without any, each user mints its own from the sandbox's control API
                     (`POST <origin>/_mock/tokens`), so limits then apply per user.
  --respect-limits   pace the users of a token to stay under the documented limits (moving
                     window per token and bucket, shared by the users of this process; a
                     shared token's budget is split between `--expect-workers` workers).
                     A 429 is then a failure. Without it the users exceed the limits
                     deliberately: a 429 in the API's envelope with a Retry-After is a success
                     reported as `<name> (429)`; a malformed one is a failure.
  --window SECONDS   the server's window when it is not the documented one (sandbox --rate-window).

The host (-H) is the API's base URL, or a bare sandbox origin (the API's mount path is added).
"""

from __future__ import annotations

import json
import math
import os
import random
import secrets
import sys
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

import gevent
from locust import FastHttpUser, events
from locust.runners import WorkerRunner
from locust.stats import CSV_STATS_INTERVAL_SEC

from judge.headers import delay_seconds
from load import token_env_vars
from load.roles import ApiContract, origin

_CONTRACTS: dict[tuple[str, float | None], ApiContract] = {}
_SENT = {"requests": 0}


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    parser.add_argument(
        "--token",
        default=None,
        is_secret=True,
        help="Bearer token for every user (default: $<API>_TOKEN, $LOAD_TOKEN; else each user mints "
        "its own from the sandbox's /_mock/tokens)",
    )
    parser.add_argument(
        "--respect-limits",
        action="store_true",
        default=False,
        help="Pace users to stay under the documented rate limits per token (default: exceed them)",
    )
    parser.add_argument(
        "--window",
        type=float,
        default=None,
        help="The server's rate-limit window in seconds when not the documented one (sandbox --rate-window)",
    )


@events.init.add_listener
def _fresh_clock(**_: Any) -> None:
    """Locust arms --run-time with gevent's cached loop time, which is still that of the
    moment gevent was imported when nothing has yielded since: a slow start (this file
    imports the spec loader) then eats into the run. Refresh it first."""
    gevent.get_hub().loop.update_now()


@events.quitting.add_listener
def _final_csv(environment: Any, **_: Any) -> None:
    """Locust rewrites <prefix>_stats.csv once a second but not at exit, so the file can miss
    the last second: wait for one more rewrite, made after the users stopped."""
    opts = environment.parsed_options
    if (
        opts is not None
        and getattr(opts, "csv_prefix", None)
        and not isinstance(environment.runner, WorkerRunner)
    ):
        gevent.sleep(CSV_STATS_INTERVAL_SEC + 0.25)


@events.request.add_listener
def _count(**_: Any) -> None:
    _SENT["requests"] += 1


@events.test_stop.add_listener
def _report_worker(environment: Any, **_: Any) -> None:
    """In distributed mode each worker says what it sent (the master's stats are the sum)."""
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        print(
            f"load: worker {runner.client_id} sent {_SENT['requests']} requests", file=sys.stderr, flush=True
        )


def contract(api: str, window: float | None) -> ApiContract:
    key = (api, window)
    if key not in _CONTRACTS:
        _CONTRACTS[key] = ApiContract.load(api, window)
    return _CONTRACTS[key]


class Pacer:
    """Moving-window pacing per (token, bucket), shared by the users (greenlets) of a process.

    A request holds a slot from the moment it is sent; its slot's time is set when the answer
    arrives (never earlier than the server admitted it), so waiting one window after that time
    cannot run ahead of the server's window. A refusal frees the slot and, with its
    Retry-After, blocks the bucket."""

    def __init__(self) -> None:
        self.slots: dict[tuple[str, str], list[list[float]]] = {}
        self.blocked: dict[tuple[str, str], float] = {}

    def acquire(self, token: str, c: ApiContract, op: Any, share: float) -> list[list[float]]:
        while True:
            now = time.monotonic()
            wait = 0.0
            for b in c.buckets_of(op):
                key = (token, b.name)
                slots = self.slots.setdefault(key, [])
                slots[:] = [s for s in slots if s[0] > now - b.window]
                budget = max(1, math.floor(b.limit * share))
                if len(slots) >= budget:
                    times = sorted(s[0] for s in slots)
                    oldest = times[len(slots) - budget]
                    wait = max(wait, (oldest + b.window - now) if oldest != math.inf else 0.05)
                wait = max(wait, self.blocked.get(key, 0.0) - now)
            if wait <= 0:
                held = []
                for b in c.buckets_of(op):
                    slot = [math.inf]
                    self.slots[(token, b.name)].append(slot)
                    held.append(slot)
                return held
            gevent.sleep(wait + 0.01)

    def done(self, token: str, c: ApiContract, op: Any, held: list[list[float]], refused: int | None) -> None:
        now = time.monotonic()
        for b, slot in zip(c.buckets_of(op), held, strict=True):
            if refused is None:
                slot[0] = now
            else:  # not counted by the server: free the slot, honour Retry-After
                slots = self.slots.get((token, b.name), [])
                if slot in slots:
                    slots.remove(slot)
                self.blocked[(token, b.name)] = max(self.blocked.get((token, b.name), 0.0), now + refused)


PACER = Pacer()


def mint_token(base_origin: str, api: str) -> str:
    """A fresh full-scope test token of a fresh account from the sandbox's control API."""
    body = json.dumps({"api": api, "account": f"load-{secrets.token_hex(4)}", "name": "load"}).encode()
    headers = {"Content-Type": "application/json"}
    admin = os.environ.get("SANDBOX_ADMIN_TOKEN")  # a sandbox started with --admin-token
    if admin:
        headers["Authorization"] = f"Bearer {admin}"
    req = urllib.request.Request(f"{base_origin}/_mock/tokens", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return str(json.loads(r.read())["token"])
    except (urllib.error.URLError, KeyError, ValueError) as exc:
        raise RuntimeError(
            f"no token given (--token, ${token_env_vars(api)[0]}, $LOAD_TOKEN) and none could be minted "
            f"from {base_origin}/_mock/tokens: {exc}"
            + (
                " (401: give the sandbox's --admin-token or $SANDBOX_ADMIN_TOKEN)"
                if "401" in str(exc)
                else ""
            )
        ) from exc


class ApiUser(FastHttpUser):
    """One API client. Subclasses set `api` and define tasks with `self.call(...)`."""

    abstract = True
    api = ""
    think_time = (0.05, 0.5)  # seconds between tasks when respecting the limits
    stress_think_time = (0.0, 0.01)  # ... and when exceeding them deliberately
    network_timeout = 15.0
    connection_timeout = 10.0
    respect = False
    page_size = 5  # small pages, so pagination walks take several requests
    max_pages = 5

    def wait_time(self) -> float:
        low, high = self.think_time if self.respect else self.stress_think_time
        return random.uniform(low, high)

    def on_start(self) -> None:
        opts = self.environment.parsed_options
        window = getattr(opts, "window", None) if opts else None
        self.respect = bool(getattr(opts, "respect_limits", False)) if opts else False
        self.c = contract(self.api, window)
        host = (self.host or "").rstrip("/")
        self.prefix = self.c.base_url(host)[len(host) :]
        token = (getattr(opts, "token", None) if opts else None) or next(
            (os.environ[v] for v in token_env_vars(self.api) if os.environ.get(v)), None
        )
        self.share = 1.0
        if token is None:
            token = mint_token(origin(host), self.api)
        elif isinstance(self.environment.runner, WorkerRunner):
            workers = getattr(opts, "expect_workers", None) or 1
            self.share = 1.0 / max(1, int(workers))
        self.token = token
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self.seq = 0

    # -- requests ---------------------------------------------------------------------------
    def label(self, text: str = "") -> str:
        self.seq += 1
        return f"load-{secrets.token_hex(3)}-{self.seq}{'-' + text if text else ''}"

    def call(
        self,
        operation_id: str,
        *,
        body: Any = None,
        query: dict[str, Any] | None = None,
        expect: tuple[int, ...] = (),
        name: str | None = None,
        **path: str,
    ) -> Any:
        """One request of the operation (path parameters as keywords). Returns the parsed body
        of a success (True when it has none), or None for anything else (which is reported as
        the mode says)."""
        return self.request(operation_id, path, body, query, expect, name)

    def request(
        self,
        operation_id: str,
        path: dict[str, str],
        body: Any = None,
        query: dict[str, Any] | None = None,
        expect: tuple[int, ...] = (),
        name: str | None = None,
    ) -> Any:
        op = self.c.op(operation_id)
        held = PACER.acquire(self.token, self.c, op, self.share) if self.respect else []
        url = self.prefix + self.c.path(op, **path)
        if query:
            url += "?" + urlencode(query)
        label = name or op.path
        refused: int | None = None
        with self.client.request(
            op.method.upper(), url, name=label, json=body, headers=self.headers, catch_response=True
        ) as resp:
            result = self._judge(op, resp, label, expect)
            if resp.status_code == 429:
                refused = _retry_after(resp.headers) or 1
        if self.respect:
            PACER.done(self.token, self.c, op, held, refused)
        return result

    def _judge(self, op: Any, resp: Any, label: str, expect: tuple[int, ...]) -> Any:
        status = resp.status_code
        if status == 0:
            resp.failure(f"no answer: {resp.error}")
            return None
        try:
            body = json.loads(resp.content) if resp.content else None
        except ValueError:
            body = None
        if 200 <= status < 300:
            if str(status) not in op.responses:
                resp.failure(f"{status} is not a documented answer of {op.operation_id}")
                return None
            resp.success()
            return body if body is not None else True
        if status == 429:
            problem = self._refusal_problem(resp, body)
            if self.respect:
                resp.failure(
                    f"429 despite pacing under the documented limits{'; ' + problem if problem else ''}"
                )
            elif problem:
                resp.failure(problem)
            else:
                resp.request_meta["name"] = f"{label} (429)"
                resp.success()
            return None
        code = self.c.error_code(body)
        if status in expect and str(status) in op.responses:
            resp.request_meta["name"] = f"{label} ({status})"
            resp.success()
            return None
        resp.failure(f"{status} {code or ''} from {op.operation_id}".replace("  ", " "))
        return None

    def _refusal_problem(self, resp: Any, body: Any) -> str | None:
        if self.c.error_code(body) != "RATE_LIMITED":
            return f"429 without RATE_LIMITED at {'.'.join(self.c.error_code_path or ())}"
        if _retry_after(resp.headers) is None:
            return "429 without a usable Retry-After"
        return None

    # -- helpers for workloads -----------------------------------------------------------------
    def walk(self, operation_id: str, **path: str) -> list[Any]:
        """A pagination walk: pages of `page_size` until the last one (at most `max_pages`)."""
        op = self.c.op(operation_id)
        if self.c.pagination.style == "none":
            body = self.request(operation_id, path, name=f"{op.path} [walk]")
            return self.c.items(body) if body is not None else []
        seen: list[Any] = []
        for i in range(self.max_pages):
            query = self.c.pagination.params(i, self.page_size)
            body = self.request(operation_id, path, query=query, name=f"{op.path} [walk]")
            if body is None:
                break
            items = self.c.items(body)
            seen += items
            total = self.c.total(body)
            if len(items) < self.page_size or (total is not None and len(seen) >= total):
                break
        return seen

    def create(
        self, operation_id: str, body: dict[str, Any], expect: tuple[int, ...] = (), **path: str
    ) -> str | None:
        """Create; the new resource's id, or None."""
        data = self.c.data(self.request(operation_id, path, body=body, expect=expect))
        return str(data["id"]) if isinstance(data, dict) and "id" in data else None

    def body(self, operation_id: str, **fields: Any) -> dict[str, Any]:
        """The spec's example body of the operation, a unique `name`, then `fields`."""
        out = self.c.new_body(self.c.op(operation_id), self.label())
        out.update(fields)
        return out

    @staticmethod
    def pick(pool: list[str]) -> str | None:
        return random.choice(pool) if pool else None


def _retry_after(headers: Any) -> int | None:
    return delay_seconds(headers.get("Retry-After")) if headers else None
