"""A small client of the CloudNexus API with the retry code every real client needs: a 5xx, a
429 or a timeout is retried with exponential back-off (honouring `Retry-After` when the answer
gives one), at most `max_retries` times; then the error reaches the caller.

`sleep` is injected so its tests wait on nothing; `headers` lets a test add `Prefer` to every
request the app sends (the sandbox's per-request response choice)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

RETRIED = {429, 500, 502, 503, 504}


class Unavailable(Exception):
    """The API kept failing after every retry."""


class Inventory:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        sleep: Callable[[float], Any] = time.sleep,
        max_retries: int = 3,
        timeout: float = 5.0,
        backoff: float = 0.5,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}", **(headers or {})},
            timeout=timeout,
        )
        self.sleep, self.max_retries, self.backoff = sleep, max_retries, backoff

    def _get(self, path: str, **kw: Any) -> httpx.Response:
        problem = ""
        for attempt in range(self.max_retries + 1):
            wait = self.backoff * 2**attempt
            try:
                r = self.http.get(path, **kw)
            except httpx.TimeoutException:
                problem = "timed out"
            else:
                if r.status_code not in RETRIED:
                    r.raise_for_status()
                    return r
                problem = f"HTTP {r.status_code}"
                wait = float(r.headers.get("Retry-After", wait))
            if attempt < self.max_retries:
                self.sleep(wait)
        raise Unavailable(f"GET {path}: {problem} after {self.max_retries} retries")

    def servers(self) -> list[dict[str, Any]]:
        return list(self._get("/servers", params={"per_page": 100}).json()["data"])
