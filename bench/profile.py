"""Where one request's time goes: the sandbox built exactly as `mock_server serve` builds it
(TinyDB file store, seed token, rate limiter on), driven in-process through its ASGI app (no
sockets, no uvicorn) under cProfile.

    python -m bench.profile [--size 1000] [--op list|get|create|all] [-n 300] [--top 25]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any

from . import datafile


def build_app(data: Path, rate_window: float | None = 0.001):
    from mock_server.app import SandboxApp
    from mock_server.sandbox import Sandbox, load_all
    from mock_server.seed import apply_seed, load_seed
    from mock_server.store_tinydb import TinyDBStore

    store = TinyDBStore(data, group_commit=True, background_compaction=True)  # as `serve` opens it
    sandbox = Sandbox(load_all([datafile.API]), store, rate_window=rate_window)
    seed = data.parent / "token-seed.json"
    datafile.write_token_seed(seed)
    apply_seed(sandbox, load_seed(seed))
    return SandboxApp(sandbox)


async def call(app: Any, method: str, path: str, body: bytes = b"") -> int:
    path, _, query = path.partition("?")
    headers = [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {datafile.TOKEN}".encode())]
    if body:
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8080),
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def profile(size: int, op: str, n: int, top: int, sort: str) -> str:
    tmp = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    data = tmp / "db.json"
    ids = datafile.write_tinydb_file(data, size)
    app = build_app(data)
    base = datafile.BASE_PATH
    body = json.dumps(datafile.CREATE_BODY).encode()
    reqs = {
        "list": lambda i: ("GET", f"{base}/servers", b""),
        "get": lambda i: ("GET", f"{base}/servers/{ids[i * 7919 % len(ids)]}", b""),
        "create": lambda i: ("POST", f"{base}/servers", body),
    }[op]

    async def loop(count: int) -> float:
        t = time.perf_counter()
        for i in range(count):
            status = await call(app, *reqs(i))
            assert status < 300, status
        return time.perf_counter() - t

    asyncio.run(loop(min(20, n)))  # warm caches (validators, imports)
    prof = cProfile.Profile()
    prof.enable()
    elapsed = asyncio.run(loop(n))
    prof.disable()
    out = io.StringIO()
    out.write(
        f"== {op} with {size:,} stored: {n} requests in-process, {elapsed / n * 1000:.3f} ms each "
        f"under cProfile ==\n"
    )
    pstats.Stats(prof, stream=out).strip_dirs().sort_stats(sort).print_stats(top)
    return out.getvalue()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    p.add_argument("--size", type=int, default=1000)
    p.add_argument("--op", choices=["list", "get", "create", "all"], default="all")
    p.add_argument("-n", type=int, default=300)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--sort", default="tottime", choices=["tottime", "cumulative"])
    a = p.parse_args()
    for op in ("list", "get", "create") if a.op == "all" else (a.op,):
        print(profile(a.size, op, a.n, a.top, a.sort))


if __name__ == "__main__":
    main()
