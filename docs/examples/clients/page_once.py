"""page-once: walk a listing page after page, each page once."""

from __future__ import annotations

from typing import Any

from app import Api, server

RULE = "page-once"
SCOPES = ["servers:read"]


def world(sandbox: Any) -> None:
    """Five servers, made with another token: three pages of two."""
    other = Api(sandbox.base_url("nurosentrix"), sandbox.token("nurosentrix"), sandbox.clock.advance)
    for i in range(5):
        other.post("/servers", server(f"web-{i}"))


def bad(api: Api) -> None:
    page, seen = 1, 0
    while True:
        body = api.get("/servers", page=page, per_page=2).json()
        seen += len(body["data"])
        if seen >= body["meta"]["total"]:
            return
        page = seen // 2 if page > 1 else 2  # an off-by-one: page 2 is fetched twice


def good(api: Api) -> None:
    page, seen = 1, 0
    while True:
        body = api.get("/servers", page=page, per_page=2).json()
        seen += len(body["data"])
        if seen >= body["meta"]["total"] or not body["data"]:
            return
        page += 1
