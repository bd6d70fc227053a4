"""The sandbox's control API (`/_mock`, `mock_server/control_api.yaml`) over HTTP, as the
dashboard and the token CLI use it: the admin token from the environment, JSON bodies sent as
`application/json`, and every refusal raised with the sandbox's own message."""

from __future__ import annotations

from typing import Any

import httpx
from mcp.server.mcpserver.exceptions import ToolError


class SandboxError(ToolError):
    """The sandbox refused a call (its own message), or could not be reached: an MCP tool error."""


class Control:
    def __init__(self, url: str, admin_token: str | None = None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {admin_token}"} if admin_token else {}
        self.http = httpx.AsyncClient(base_url=f"{self.url}/_mock/", headers=headers, timeout=timeout)

    async def close(self) -> None:
        await self.http.aclose()

    async def call(
        self, method: str, endpoint: str, body: dict[str, Any] | None = None, /, **query: Any
    ) -> Any:
        """One control call; its JSON answer (None for a 204)."""
        params = {k: v for k, v in query.items() if v is not None}
        # writes always say what they carry (a control API may refuse a write that does not)
        headers = {"Content-Type": "application/json"} if method != "GET" else {}
        try:
            r = await self.http.request(
                method, endpoint, params=params, json=body if method != "GET" else None, headers=headers
            )
        except httpx.HTTPError as exc:
            raise SandboxError(f"cannot reach the sandbox at {self.url}: {exc}") from None
        if r.status_code >= 400:
            raise SandboxError(_refusal(r))
        if r.status_code == 204 or not r.content:
            return None
        try:
            return r.json()
        except ValueError:
            raise SandboxError(f"the sandbox answered {r.status_code} with a body that is not JSON") from None

    async def get(self, endpoint: str, /, **query: Any) -> Any:
        return await self.call("GET", endpoint, None, **query)

    async def post(self, endpoint: str, body: dict[str, Any], /) -> Any:
        return await self.call("POST", endpoint, body)

    async def delete(self, endpoint: str, /, **query: Any) -> Any:
        return await self.call("DELETE", endpoint, None, **query)


def _refusal(r: httpx.Response) -> str:
    """`the sandbox refused (400 VALIDATION_ERROR): <its message>`."""
    try:
        error = r.json()["error"]
        code, message = error.get("code", ""), error["message"]
    except (ValueError, KeyError, TypeError, AttributeError):
        code, message = "", r.text[:500] or r.reason_phrase
    return f"the sandbox refused ({r.status_code}{' ' + code if code else ''}): {message}"
