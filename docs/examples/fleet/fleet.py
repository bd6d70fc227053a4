"""A small client app of the Nurosentrix API: the kind of code the sandbox is for.

It pages through every server, creates one, waits for it to become active, and honours 429s
by waiting `Retry-After` seconds. `sleep` is injected so its tests wait on the sandbox's clock
(`sandbox.clock.advance`) instead of the wall clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx


class PermissionDenied(Exception):
    """The token lacks a scope the call needs (403)."""


class FleetClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        sleep: Callable[[float], Any] = time.sleep,
        max_retries: int = 5,
    ) -> None:
        self.http = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        self.sleep = sleep
        self.max_retries = max_retries

    def _call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        for _ in range(self.max_retries + 1):
            r = self.http.request(method, path, **kw)
            if r.status_code != 429:
                break
            self.sleep(int(r.headers["Retry-After"]))  # a retry after it succeeds
        if r.status_code == 403:
            raise PermissionDenied(r.json()["error"]["message"])
        r.raise_for_status()
        return r

    def all_servers(self, per_page: int = 100, status: str | None = None) -> list[dict[str, Any]]:
        """Every server of the account, page after page until `meta.total` are read."""
        servers: list[dict[str, Any]] = []
        page = 1
        while True:
            params: dict[str, Any] = {"page": page, "per_page": per_page}
            if status:
                params["status"] = status
            body = self._call("GET", "/servers", params=params).json()
            servers += body["data"]
            if len(servers) >= body["meta"]["total"] or not body["data"]:
                return servers
            page += 1

    def create_server(self, name: str, size: str = "s-1vcpu-1gb") -> dict[str, Any]:
        body = {"name": name, "provider": "digitalocean", "region": "nyc1", "size": size}
        return dict(self._call("POST", "/servers", json=body).json()["data"])

    def wait_until_active(self, server_id: str, poll: float = 1.0, attempts: int = 60) -> dict[str, Any]:
        for _ in range(attempts):
            server = dict(self._call("GET", f"/servers/{server_id}").json()["data"])
            if server["status"] == "active":
                return server
            self.sleep(poll)
        raise TimeoutError(f"{server_id} is still {server['status']}")
