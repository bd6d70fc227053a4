"""What a handler gets (`Call`) and gives back (`Reply`): the only contract between the
engine and per-API code. Handlers hold no state; everything arrives in the `Call`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from contract import Contract, Operation

from .resources import Resources
from .services import Services
from .tokens import Principal


@dataclass
class Call:
    spec: Contract
    op: Operation
    principal: Principal | None
    params: dict[str, Any]
    body: Any
    resources: Resources
    sandbox: Services
    raw_body: bytes
    request: Request
    client: str

    @property
    def headers(self) -> Mapping[str, str]:
        return self.request.headers

    @property
    def cookies(self) -> Mapping[str, str]:
        """Parsed when a handler first asks (most never do)."""
        return self.request.cookies

    @property
    def base_url(self) -> str:
        """This API's base URL as the client reached it (for redirects and links)."""
        return f"{str(self.request.base_url).rstrip('/')}{self.spec.base_path}"

    @property
    def owner(self) -> dict[str, str]:
        if self.principal is None:
            raise RuntimeError(f"{self.op.operation_id} needs a principal")
        return self.principal.owner


@dataclass
class Reply:
    """`kind` picks the envelope: single | list | raw (body as is) | empty (no body)."""

    status: int
    body: Any = None
    kind: str = "single"
    meta: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str = "application/json"


Handler = Callable[[Call], Reply]
