"""The sandbox: every API's engine over one store, clock, id source, token book and limiter."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from contract import Contract, Operation, SpecError, load_all

from . import actions, diagnose
from .bodies import clip
from .calls import Handler
from .clock import Clock
from .engine import ApiEngine
from .faults import FaultBook
from .grading import fields
from .ids import IdGenerator
from .ratelimit import RateLimiter
from .resources import Resources
from .selfcheck import response_problems
from .shared import RequestLog, SharedClock, SharedRateLimiter, SharedRequestLog
from .shared_redis import RedisClock, RedisRateLimiter, RedisRequestLog
from .store import MemoryStore, Store
from .store_redis import RedisStore
from .tokens import Principal, TokenService

REQUEST_LOG_SIZE = 500
STARTUP = "_mock:secrets"  # beside the JWT key: the start-up tokens' values, to print them again
Authenticator = Callable[["Sandbox", Contract, str], "Principal | None"]


def api_module(spec: Contract) -> ModuleType | None:
    """`mock_server.apis.<name>`: the per-API behaviour, when the API has any."""
    try:
        return importlib.import_module(f"mock_server.apis.{spec.name.replace('-', '_')}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("mock_server.apis."):
            return None
        raise


def resolve_handlers(spec: Contract) -> dict[str, Handler]:
    handlers: dict[str, Handler] = {}
    for op in spec.operations:
        if not op.handler:
            continue
        module_name, _, func = op.handler.rpartition(".")
        try:
            module = importlib.import_module(f"mock_server.apis.{module_name}")
            handlers[op.handler] = getattr(module, func)
        except (ModuleNotFoundError, AttributeError) as exc:
            raise SpecError(f"{spec.name}: {op.operation_id}: x-handler {op.handler} not found") from exc
    actions.check_effects(spec)
    return handlers


class Sandbox:
    """Holds all mutable state; engines and handlers reach it only through a `Call`."""

    def __init__(
        self,
        specs: list[Contract] | None = None,
        store: Store | None = None,
        clock: Clock | None = None,
        ids: IdGenerator | None = None,
        rate_window: float | None = None,
        rate_limit: bool = True,
        async_delay: float | None = None,
        self_check: bool = False,
        run_dir: Path | None = None,
    ) -> None:
        """`run_dir`: the directory where worker processes share their clock, rate-limit logs
        and request log (`serve --workers N`; the store is shared by `TinyDBStore(shared=True)`).
        A `RedisStore` brings its own (`shared_redis.py`): replicas on many machines share them."""
        self.specs = {s.name: s for s in (specs if specs is not None else load_all())}
        self.store = store if store is not None else MemoryStore()
        self.ids = ids or IdGenerator()
        self.self_check = self_check
        self.self_check_failures: list[str] = []
        self.clock: Clock
        self.limiter: RateLimiter
        self.requests: RequestLog
        if isinstance(self.store, RedisStore):  # replicas on Redis share these through it too
            self.clock = clock or RedisClock(self.store)
            self.limiter = RedisRateLimiter(self.store, self.clock, rate_window, rate_limit)
            self.requests = RedisRequestLog(self.store, REQUEST_LOG_SIZE)
        elif run_dir is None:
            self.clock = clock or Clock()
            self.limiter = RateLimiter(self.clock, window_override=rate_window, enabled=rate_limit)
            self.requests = RequestLog(REQUEST_LOG_SIZE)
        else:
            self.clock = clock or SharedClock(run_dir / "clock")
            self.limiter = SharedRateLimiter(run_dir / "state.sqlite", self.clock, rate_window, rate_limit)
            self.requests = SharedRequestLog(run_dir / "state.sqlite", REQUEST_LOG_SIZE)
        self.tokens = TokenService(self.store, self.ids, self.clock)
        self.faults = FaultBook(self.store, self.specs, self.ids, self.clock)
        self.modules = {name: api_module(spec) for name, spec in self.specs.items()}
        self.resources = {
            name: Resources(spec, self.store, self.ids, self.clock, async_delay)
            for name, spec in self.specs.items()
        }
        self.engines = {
            name: ApiEngine(spec, self, resolve_handlers(spec), self.resources[name])
            for name, spec in self.specs.items()
        }

    # -- tokens ---------------------------------------------------------------------------
    def mint(
        self,
        api: str,
        scopes: list[str] | None = None,
        mode: str = "test",
        account: str = "default",
        name: str | None = None,
        value: str | None = None,
    ) -> tuple[str, dict[str, Any]]:
        spec = self.specs[api]
        chosen = list(spec.scopes) if scopes is None else scopes
        unknown = set(chosen) - set(spec.scopes)
        if unknown:
            raise ValueError(f"unknown scopes for {api}: {', '.join(sorted(unknown))}")
        prefix = spec.token_prefixes[mode]
        if value is not None and not value.startswith(prefix):
            raise ValueError(f"a {mode} token of {api} starts with {prefix}")
        return self.tokens.mint(api, prefix, chosen, mode, account, name, value)

    def startup_tokens(self, rotate: bool = False) -> list[tuple[str, str, bool]]:
        """One full-scope test token per API for the start banner: `(api, token, kept)`.

        Kept across restarts on the same data file, so a token pasted into an app's `.env` still
        works after a restart; `rotate` revokes them and mints new ones. To be printed again,
        their values are kept in clear in the data file (as the JWT signing key is): they are
        local test tokens, and `--rotate-tokens` replaces them."""
        out = []
        with self.store.transaction():
            for name in self.specs:
                key = f"startup:{name}"
                saved = self.store.get(STARTUP, key)
                token = saved["value"] if saved else None
                if token is not None and rotate:
                    self.tokens.revoke(token, how="rotated at a start with --rotate-tokens")
                if token is not None and not rotate and self.tokens.authenticate(name, token) is not None:
                    out.append((name, token, True))
                    continue
                for old in self.tokens.list(name):  # a start-up token of a start that kept none
                    if old.get("name") == "startup":
                        self.tokens.revoke(old["id"], how="replaced at a start")
                token, _ = self.mint(name, name="startup")
                self.store.replace(STARTUP, {"id": key, "value": token})
                out.append((name, token, False))
        return out

    def authenticate(self, spec: Contract, token: str) -> Principal | None:
        principal = self.tokens.authenticate(spec.name, token)
        if principal is not None:
            return principal
        hook = getattr(self.modules.get(spec.name), "authenticate", None)
        return hook(self, spec, token) if hook else None

    # -- state ----------------------------------------------------------------------------
    def reset(self, api: str | None = None, tokens: bool = False) -> None:
        """Forget resources, fault rules and rate-limit history (of one API, or all); with
        `tokens`, also tokens and users. Seeded credentials survive a plain reset, as API keys
        survive Stripe's "delete all test data"."""
        self.faults.clear(api)
        with self.store.transaction():
            for table in self.store.tables():
                owner = table.split(":", 1)[0]
                if owner != "_mock" and (api is None or owner == api):
                    self.store.drop(table)
            if tokens:
                for t in self.tokens.list(api):
                    self.tokens.revoke(t["id"], how="revoked by a reset")
                for u in self.store.find("_mock:users", **({"api": api} if api else {})):
                    self.store.delete("_mock:users", u["id"])
        self.limiter.reset()

    def record(
        self,
        api: str,
        request: Request,
        op: Operation | None,
        response: Response,
        request_id: str,
        problems: list[dict[str, str]],
        elapsed: float,
        why: str | None = None,
    ) -> None:
        spec = self.specs[api]
        status = response.status_code
        token, token_id = diagnose.token_fields(spec, request)
        wait, bucket = fields.told(response)
        entry = {
            "at": self.clock.now(),  # formatted when the log is read
            "api": api,
            "method": request.scope["method"],
            "path": request.scope["path"],
            "status": status,
            "operation": op.operation_id if op else None,
            "request_id": request_id,
            "problems": problems,
            "reason": (why or diagnose.reason(self, spec, request, op, response, problems))
            if status >= 400
            else None,
            "token": token,
            "token_id": token_id,
            "ms": round(elapsed * 1000, 3),
            "wait": wait,  # what the client was told (grading's retry rules)
            "bucket": bucket,
            "body": fields.body_digest(request),
            "page": fields.page(request, op, spec.pagination.size_param),
            "bodies": (clip(getattr(request, "_body", None)), clip(getattr(response, "body", None))),
        }
        self.requests.append(entry)
        if self.self_check and op is not None:
            for p in response_problems(self.specs[api], op, response):
                self.self_check_failures.append(f"{request.method} {request.url.path}: {p}")
