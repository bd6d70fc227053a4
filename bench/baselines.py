"""The baselines the sandbox is measured against, served on the sandbox's own uvicorn settings
(`httpguard.server_config`: the same protocol class, access log, keep-alive, `gc.freeze`):

- `ceiling`: a bare Starlette app answering each request with precomputed bytes — the
  sandbox's own answers, captured from it. What Starlette + uvicorn cost on this machine.
- `handler`: a minimal real handler: a dict lookup for the bearer token (401 otherwise), the
  request body read and parsed for a create, and the same document encoded per request with
  the sandbox's own encoder (`mock_server.jsonio.dumps`).

Both serve `GET <base>/servers`, `GET <base>/servers/{id}` and `POST <base>/servers`.

    python -m bench.baselines --mode ceiling --port 8001 --bodies DIR --base /nurosentrix/api/v1

`DIR` holds `list.json`, `get.json` and `create.json`; `$BENCH_TOKEN` is the accepted token.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
from pathlib import Path

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mock_server.httpguard import server_config
from mock_server.jsonio import dumps
from mock_server.logs import quiet_access_log

KINDS = ("list", "get", "create")
JSON = "application/json"


def capture(api_url: str, first_id: str, token: str) -> tuple[dict[str, bytes], dict[str, str]]:
    """A running sandbox's own answers, which the baselines then serve: its first page, one
    server and one create (which adds a server); and the list's headers."""
    from .datafile import CREATE_BODY
    from .servers import http

    auth = {"Authorization": f"Bearer {token}"}
    status, headers, listed = http(api_url + "/servers", headers=auth)
    if status != 200:
        raise RuntimeError(f"sandbox list answered {status}: {listed[:300]!r}")
    _, _, one = http(api_url + f"/servers/{first_id}", headers=auth)
    body = json.dumps(CREATE_BODY).encode()
    status, _, created = http(api_url + "/servers", "POST", {**auth, "Content-Type": JSON}, body)
    if status != 201:
        raise RuntimeError(f"sandbox create answered {status}: {created[:300]!r}")
    return {"list": listed, "get": one, "create": created}, headers


def ceiling(base: str, bodies: dict[str, bytes]) -> Starlette:
    async def listing(request: Request) -> Response:
        return Response(bodies["list"], media_type=JSON)

    async def one(request: Request) -> Response:
        return Response(bodies["get"], media_type=JSON)

    async def create(request: Request) -> Response:
        await request.body()
        return Response(bodies["create"], 201, media_type=JSON)

    return _app(base, listing, one, create)


def handler(base: str, bodies: dict[str, bytes], token: str) -> Starlette:
    docs = {k: orjson.loads(v) for k, v in bodies.items()}
    tokens = {token: {"account": "default", "mode": "test"}}
    refused = b'{"success":false,"error":{"code":"UNAUTHORIZED"}}'

    def principal(request: Request) -> dict[str, str] | None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        return tokens.get(value) if scheme.lower() == "bearer" else None

    async def listing(request: Request) -> Response:
        if principal(request) is None:
            return Response(refused, 401, media_type=JSON)
        return Response(dumps(docs["list"]), media_type=JSON)

    async def one(request: Request) -> Response:
        if principal(request) is None:
            return Response(refused, 401, media_type=JSON)
        return Response(dumps(docs["get"]), media_type=JSON)

    async def create(request: Request) -> Response:
        if principal(request) is None:
            return Response(refused, 401, media_type=JSON)
        try:
            orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return Response(b'{"success":false}', 400, media_type=JSON)
        return Response(dumps(docs["create"]), 201, media_type=JSON)

    return _app(base, listing, one, create)


def _app(base: str, listing, one, create) -> Starlette:  # type: ignore[no-untyped-def]
    return Starlette(
        routes=[
            Route(f"{base}/servers", listing, methods=["GET"]),
            Route(f"{base}/servers", create, methods=["POST"]),
            Route(f"{base}/servers/{{id}}", one, methods=["GET"]),
        ]
    )


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.baselines", description=__doc__)
    p.add_argument("--mode", choices=["ceiling", "handler"], required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--bodies", type=Path, required=True)
    p.add_argument("--base", default="/nurosentrix/api/v1")
    a = p.parse_args()
    bodies = {k: (a.bodies / f"{k}.json").read_bytes() for k in KINDS}
    if a.mode == "ceiling":
        app = ceiling(a.base, bodies)
    else:
        app = handler(a.base, bodies, os.environ["BENCH_TOKEN"])
    import uvicorn

    config = server_config(app, host=a.host, port=a.port)
    quiet_access_log()
    gc.freeze()
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
