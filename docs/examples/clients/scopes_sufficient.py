"""scopes-sufficient: ask for the scopes the app's calls need (a 403 in production is a bug)."""

from __future__ import annotations

from app import Api, server

RULE = "scopes-sufficient"
SCOPES = {"bad": ["servers:read"], "good": ["servers:read", "servers:write"]}


def bad(api: Api) -> None:
    api.get("/servers")
    api.post("/servers", server("web-1"))


good = bad  # the same app: only its token differs
