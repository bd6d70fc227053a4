"""least-privilege: hold only the scopes the app's calls need."""

from __future__ import annotations

from app import Api

RULE = "least-privilege"
SCOPES = {"bad": None, "good": ["servers:read"]}  # None: every scope of the API


def bad(api: Api) -> None:
    api.get("/servers")


good = bad  # the same app: only its token differs
