"""What engines, handlers and sessions may use of the sandbox that holds them: a protocol, so
those lower modules never import `sandbox` (which imports them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response

from contract import Contract, Operation

from .clock import Clock
from .faults import FaultBook
from .ids import IdGenerator
from .ratelimit import RateLimiter
from .store import Store
from .tokens import Principal

# (api, request, operation, response, request id, problems, seconds taken)
Recorder = Callable[[str, Request, Operation | None, Response, str, list[dict[str, Any]], float], None]


class Services(Protocol):
    specs: dict[str, Contract]
    store: Store
    clock: Clock
    ids: IdGenerator
    limiter: RateLimiter
    faults: FaultBook

    @property
    def record(self) -> Recorder:
        """The request log: (api, request, operation, response, request id, problems, seconds)."""

    def authenticate(self, spec: Contract, token: str) -> Principal | None: ...
