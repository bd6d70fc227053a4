"""no-futile-repeat: a 404 (or any final 4xx) will come again for the same request: don't resend it."""

from __future__ import annotations

from app import Api

RULE = "no-futile-repeat"
SCOPES = ["servers:read"]
GONE = "/servers/srv_000000000000"


def bad(api: Api) -> None:
    for _ in range(3):  # "maybe it was a glitch"
        if api.get(GONE).status_code == 200:
            return
        api.sleep(1)


def good(api: Api) -> None:
    if api.get(GONE).status_code == 404:
        return  # the server is gone: tell the user, do not ask again
