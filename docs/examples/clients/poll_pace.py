"""poll-pace: poll a provisioning server no faster than it can change (one poll a second or less
often: it takes 5 s)."""

from __future__ import annotations

from app import Api, server

RULE = "poll-pace"
SCOPES = ["servers:read", "servers:write"]


def _wait_active(api: Api, pause: float) -> None:
    sid = api.post("/servers", server("web-1")).json()["data"]["id"]
    for _ in range(100):
        if api.get(f"/servers/{sid}").json()["data"]["status"] == "active":
            return
        api.sleep(pause)


def bad(api: Api) -> None:
    _wait_active(api, 0.1)


def good(api: Api) -> None:
    _wait_active(api, 2)
