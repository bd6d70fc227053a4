"""back-off: retry a 5xx after a pause that grows at each attempt."""

from __future__ import annotations

from typing import Any

from app import Api

RULE = "back-off"
API = "cloudnexus"  # its listServers documents a 500 ("Back off and retry." for its 429)
SCOPES = ["servers:read"]


def world(sandbox: Any) -> None:
    """Three listings fail with a 500 (no Retry-After), then the API recovers."""
    sandbox.fault(api=API, operation="listServers", status=500, count=3)


def bad(api: Api) -> None:
    for _ in range(5):  # hammers: retries at once
        if api.get("/servers").status_code < 500:
            return


def good(api: Api) -> None:
    for attempt in range(5):
        if api.get("/servers").status_code < 500:
            return
        api.sleep(0.5 * 2**attempt)
