"""The APIs under test (every spec present) and one plain collection per API, so engine tests
run the same on all of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contract import available_specs

APIS: tuple[str, ...] = tuple(available_specs())  # a fifth spec is tested everywhere, never skipped


@dataclass(frozen=True)
class Collection:
    api: str
    path: str
    body: dict[str, Any]
    write_scope: str | None
    read_scope: str | None
    wrapped: bool  # data under "data" (envelope) or bare
    paged: bool = True
    filter_param: tuple[str, str] | None = None  # a filter and a value of it
    extra: dict[str, Any] = field(default_factory=dict)

    def data(self, body: Any) -> Any:
        return body["data"] if self.wrapped else body

    def items(self, body: Any) -> list[dict[str, Any]]:
        if self.wrapped or self.api == "cloudnexus-io":
            return list(body["data"])
        return list(body)

    def new(self, i: int = 0) -> dict[str, Any]:
        body = dict(self.body)
        body["name"] = f"{body['name']}-{i}"
        return body


COLLECTIONS = [
    Collection(
        "nurosentrix",
        "/servers",
        {"name": "web", "provider": "digitalocean", "region": "nyc1", "size": "s-4vcpu-8gb"},
        "servers:write",
        "servers:read",
        wrapped=True,
        filter_param=("status", "active"),
    ),
    Collection(
        "cloudnexus",
        "/servers",
        {"name": "web", "plan": "pro", "region": "us-east-1"},
        "servers:write",
        "servers:read",
        wrapped=True,
        filter_param=("status", "active"),
    ),
    Collection(
        "cloudnexus-io",
        "/instances",
        {"name": "web", "plan": "pro", "region": "us-east-1"},
        "instances:write",
        "instances:read",
        wrapped=False,
        filter_param=("region", "us-east-1"),
    ),
    Collection(
        "nexos",
        "/projects",
        {"name": "web", "github_repo": "octocat/web"},
        None,
        None,
        wrapped=False,
        paged=False,
    ),
]
BY_API = {c.api: c for c in COLLECTIONS}
IDS = [c.api for c in COLLECTIONS]


def error_code(body: Any) -> str:
    """Every API puts its error code at error.code; the rest of the envelope differs."""
    return str(body["error"]["code"])
