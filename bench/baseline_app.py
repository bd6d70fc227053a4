"""Baseline A: a bare Starlette app answering `GET <base>/servers` with the same JSON document the
sandbox returns for its first page (captured from the sandbox by the benchmark and passed in
`BENCH_BASELINE_BODY`, a file path). No auth, no validation, no store: the ceiling of
Starlette + uvicorn on this machine. The body is serialised per request (JSONResponse), as any
real handler would, with the same separators the sandbox uses.

    BENCH_BASELINE_BODY=body.json python -m uvicorn bench.baseline_app:app --port 8001
"""

from __future__ import annotations

import json
import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

BASE_PATH = os.environ.get("BENCH_BASELINE_PATH", "/nurosentrix/api/v1")
_path = os.environ.get("BENCH_BASELINE_BODY")
if _path:
    with open(_path, encoding="utf-8") as fh:
        BODY = json.load(fh)
else:
    BODY = {"success": True, "data": [], "meta": {"page": 1, "per_page": 20, "total": 0}}


async def list_servers(request: Request) -> JSONResponse:
    return JSONResponse(BODY)


app = Starlette(routes=[Route(f"{BASE_PATH}/servers", list_servers, methods=["GET"])])
