"""retry-after: after a 429, wait the `Retry-After` the answer gives before asking again."""

from __future__ import annotations

from typing import Any

from app import Api

RULE = "retry-after"
SCOPES = ["servers:read"]


def world(sandbox: Any) -> None:
    """The first listing is refused: 429, Retry-After: 7."""
    sandbox.fault(api="nurosentrix", operation="listServers", status=429, retry_after=7, count=1)


def bad(api: Api) -> None:
    while api.get("/servers").status_code == 429:
        api.sleep(1)  # a fixed second, whatever the answer said


def good(api: Api) -> None:
    while (r := api.get("/servers")).status_code == 429:
        api.sleep(int(r.headers["Retry-After"]))
