"""rate-limit-headers: when an answer says no request is left (`X-RateLimit-Remaining: 0`), wait
`X-RateLimit-Reset` seconds instead of running into the 429. Creates count 20 per minute."""

from __future__ import annotations

from app import Api, server

RULE = "rate-limit-headers"
SCOPES = ["servers:write"]


def bad(api: Api) -> None:
    for i in range(21):
        r = api.post("/servers", server(f"web-{i}"))
        if r.status_code == 429:  # it does honour the 429, once it has run into it
            api.sleep(int(r.headers["Retry-After"]))
            api.post("/servers", server(f"web-{i}"))


def good(api: Api) -> None:
    for i in range(21):
        r = api.post("/servers", server(f"web-{i}"))
        if r.headers.get("X-RateLimit-Remaining") == "0":
            api.sleep(int(r.headers["X-RateLimit-Reset"]))
