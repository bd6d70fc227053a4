"""The benchmark's baselines do what their names say (they are what every ratio divides by)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson

from bench.baselines import ceiling, handler

BASE = "/nurosentrix/api/v1"
BODIES = {
    "list": b'{"success":true,"data":[{"id":"srv_1","name":"a"}],"meta":{"page":1,"per_page":20,"total":1}}',
    "get": b'{"success":true,"data":{"id":"srv_1","name":"a"}}',
    "create": b'{"success":true,"data":{"id":"srv_2","name":"b"}}',
}
AUTH = {"Authorization": "Bearer nsx_test_bench"}


class Client:
    """httpx over the ASGI app, called synchronously."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def _do(self, method: str, url: str, **kw: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                return await c.request(method, url, **kw)

        return asyncio.run(go())

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self._do("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self._do("POST", url, **kw)


def test_the_ceiling_answers_the_captured_bytes() -> None:
    client = Client(ceiling(BASE, BODIES))
    assert client.get(f"{BASE}/servers").content == BODIES["list"]
    assert client.get(f"{BASE}/servers/srv_9").content == BODIES["get"]
    created = client.post(f"{BASE}/servers", json={"name": "b"})
    assert (created.status_code, created.content) == (201, BODIES["create"])


def test_the_minimal_handler_checks_the_token_and_encodes_the_same_bytes() -> None:
    client = Client(handler(BASE, BODIES, "nsx_test_bench"))
    assert client.get(f"{BASE}/servers").status_code == 401
    assert client.get(f"{BASE}/servers", headers={"Authorization": "Bearer other"}).status_code == 401
    assert client.get(f"{BASE}/servers", headers=AUTH).content == BODIES["list"]
    assert client.get(f"{BASE}/servers/srv_1", headers=AUTH).content == BODIES["get"]
    created = client.post(f"{BASE}/servers", headers=AUTH, json={"name": "b"})
    assert (created.status_code, orjson.loads(created.content)) == (201, orjson.loads(BODIES["create"]))
    bad = client.post(f"{BASE}/servers", headers={**AUTH, "Content-Type": "application/json"}, content=b"{")
    assert bad.status_code == 400
