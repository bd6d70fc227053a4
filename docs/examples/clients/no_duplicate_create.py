"""no-duplicate-create: a create that seems to fail is checked before it is sent again."""

from __future__ import annotations

from typing import Any

import httpx
from app import Api, server

RULE = "no-duplicate-create"
SCOPES = {"bad": ["servers:write"], "good": ["servers:read", "servers:write"]}


def world(sandbox: Any) -> None:
    """The first create's answer is lost: the server is created, the connection drops."""
    sandbox.fault(api="nurosentrix", operation="createServer", truncate=10, count=1)


def _create(api: Api) -> Any:
    try:
        return api.post("/servers", server("web-1")).json()
    except (ValueError, httpx.HTTPError):  # a truncated answer
        return None


def bad(api: Api) -> None:
    if _create(api) is None:
        _create(api)  # blind retry


def good(api: Api) -> None:
    if _create(api) is None and not api.get("/servers").json()["data"]:
        _create(api)  # only when the first did not land
