"""The domain probes' HTTP client: every request is paced by the shared budget, every response
goes through the response-level checks, and every exchange can be replayed as a curl line
(tokens shown as `$CONFORMANCE_*` variables, never in clear)."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from contract import MISSING, Contract, Operation

from .budget import Budget

# Identity → environment variable the curl lines use instead of the secret.
TOKEN_VARS = {
    "token": "CONFORMANCE_TOKEN",
    "limited": "CONFORMANCE_LIMITED_TOKEN",
    "other": "CONFORMANCE_OTHER_TOKEN",
    "live": "CONFORMANCE_LIVE_TOKEN",
}
MAX_429_RETRIES = 4


@dataclass
class Exchange:
    op: Operation | None
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    status: int
    response_headers: httpx.Headers
    content: bytes
    identity: str | None  # which token was sent ("token", "limited", "other", "live") or None
    secret_headers: dict[str, str] = field(default_factory=dict)  # header → variable shown instead

    @property
    def label(self) -> str:
        return self.op.label if self.op else f"{self.method} {self.url}"

    def json(self) -> Any:
        if not self.content:
            return MISSING
        try:
            return json.loads(self.content)
        except ValueError:
            return MISSING

    def curl(self) -> str:
        parts = ["curl", "-sS", "-i", "-X", self.method, shlex.quote(self.url)]
        for name, value in self.headers.items():
            if name in self.secret_headers:
                parts += ["-H", f'"{name}: Bearer ${self.secret_headers[name]}"']
            else:
                parts += ["-H", shlex.quote(f"{name}: {value}")]
        if self.body is not None:
            parts += ["--data-raw", shlex.quote(self.body.decode("utf-8", "replace"))]
        return " ".join(parts)

    def summary(self, limit: int = 2000) -> str:
        text = self.content.decode("utf-8", "replace")
        if len(text) > limit:
            text = text[:limit] + "…"
        return f"HTTP {self.status}" + (f" {text}" if text else "")


Observer = Callable[[Exchange], None]


class Client:
    def __init__(
        self,
        base_url: str,
        contract: Contract,
        budget: Budget,
        tokens: dict[str, str | None],
        observers: list[Observer] | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.contract, self.budget, self.tokens = contract, budget, tokens
        self.observers = observers or []
        self.http = httpx.Client(timeout=timeout, follow_redirects=False, transport=transport)
        self.exchanges = 0
        self.unpaced = 0  # requests sent outside the budget (the rate-limit probe)

    def close(self) -> None:
        self.http.close()

    def url(self, op: Operation, path_params: dict[str, Any] | None = None) -> str:
        path = op.path
        for name, value in (path_params or {}).items():
            path = path.replace("{" + name + "}", quote(str(value), safe=""))
        return self.base_url + path

    def call(
        self,
        op: Operation,
        *,
        as_: str | None = "token",
        path: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
        body: Any = MISSING,
        headers: dict[str, str] | None = None,
        paced: bool = True,
    ) -> Exchange:
        """Send one request for `op`. `as_`: which token to send (None: no credentials).
        `paced=False` bypasses the budget and the 429 retry (the rate-limit probe)."""
        url = self.url(op, path)
        if query:
            url += "?" + urlencode(query, doseq=True)
        sent: dict[str, str] = {}
        secret: dict[str, str] = {}
        if as_ is not None:
            token = self.tokens.get(as_)
            if token is None:
                raise LookupError(f"no {as_} token")
            sent["Authorization"] = f"Bearer {token}"
            if as_ in TOKEN_VARS:
                secret["Authorization"] = TOKEN_VARS[as_]
        raw: bytes | None = None
        if body is not MISSING:
            raw = json.dumps(body, ensure_ascii=False).encode()
            sent["Content-Type"] = "application/json"
        for name in headers or {}:
            secret.pop(name, None)  # a header we override (e.g. a malformed token) is no secret
        sent.update(headers or {})
        attempt = 0
        while True:
            if paced:
                self.budget.current = op.label
                self.budget.acquire(op.rate_buckets)
            self.http.cookies.clear()  # never carry a session cookie from one probe to the next
            response = self.http.request(op.method.upper(), url, headers=sent, content=raw)
            self.exchanges += 1
            self.unpaced += 0 if paced else 1
            ex = Exchange(
                op,
                op.method.upper(),
                url,
                sent,
                raw,
                response.status_code,
                response.headers,
                response.content,
                as_,
                secret,
            )
            self.budget.observe(response.status_code, response.headers)
            for observe in self.observers:
                observe(ex)
            if paced and response.status_code == 429 and attempt < MAX_429_RETRIES:
                attempt += 1  # the budget now holds every caller until Retry-After has passed
                continue
            return ex
