"""documented-operations: call only what the contract documents."""

from __future__ import annotations

from app import Api

RULE = "documented-operations"
SCOPES = ["servers:read"]


def bad(api: Api) -> None:
    api.get("/servers")
    api.get("/stats")  # looks plausible; no such operation


def good(api: Api) -> None:
    api.get("/servers", per_page=1).json()["meta"]["total"]
