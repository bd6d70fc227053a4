"""valid-requests: send bodies the schema accepts (createServer needs name, provider, region, size)."""

from __future__ import annotations

from app import Api, server

RULE = "valid-requests"
SCOPES = ["servers:write"]


def bad(api: Api) -> None:
    api.post("/servers", {"name": "web-1"})


def good(api: Api) -> None:
    api.post("/servers", server("web-1"))
