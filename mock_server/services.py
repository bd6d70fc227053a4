"""What engines, handlers and sessions may use of the sandbox that holds them: a protocol, so
those lower modules never import `sandbox` (which imports them)."""

from __future__ import annotations

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


class Recorder(Protocol):
    def __call__(
        self,
        api: str,
        request: Request,
        op: Operation | None,
        response: Response,
        request_id: str,
        problems: list[dict[str, Any]],
        elapsed: float,
        why: str | None = None,
    ) -> None:
        """One request in the log; `why`: a refusal's reason, from the stage that refused."""


class Services(Protocol):
    specs: dict[str, Contract]
    store: Store
    clock: Clock
    ids: IdGenerator
    limiter: RateLimiter
    faults: FaultBook

    @property
    def record(self) -> Recorder:
        """The request log: (api, request, operation, response, request id, problems, seconds, why)."""

    def authenticate(self, spec: Contract, token: str) -> Principal | None: ...
