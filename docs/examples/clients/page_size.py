"""page-size: ask for at most the documented maximum per page (Nurosentrix: per_page ≤ 100)."""

from __future__ import annotations

from app import Api

RULE = "page-size"
SCOPES = ["servers:read"]


def bad(api: Api) -> None:
    api.get("/servers", per_page=1000)  # "give me everything"


def good(api: Api) -> None:
    api.get("/servers", per_page=100)
