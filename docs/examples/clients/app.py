"""What every reference client shares: an HTTP client of the Nurosentrix API holding one token,
and a `sleep` (in tests, `sandbox.clock.advance`: waiting costs no wall time)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx


class Api:
    def __init__(self, base_url: str, token: str, sleep: Callable[[float], Any]) -> None:
        self.http = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        self.sleep = sleep

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(path, params=params)

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return self.http.post(path, json=body)


def server(name: str) -> dict[str, str]:
    """A valid `createServer` body."""
    return {"name": name, "provider": "digitalocean", "region": "nyc1", "size": "s-1vcpu-1gb"}
