"""test-token: point the app at the sandbox with a test key (nsx_test_), never a live one."""

from __future__ import annotations

from app import Api

RULE = "test-token"
SCOPES = ["servers:read"]
MODE = {"bad": "live", "good": "test"}


def bad(api: Api) -> None:
    api.get("/servers")


good = bad  # the same app: only its token differs
