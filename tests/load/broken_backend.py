"""A stand-in Nurosentrix backend whose rate limiter is broken on purpose, for the verifier's
tests: `python -m tests.load.broken_backend MODE --port P --window W` (127.0.0.1 only).

It serves the three operations the verifier uses (GET/POST /servers, DELETE /servers/{id})
under the sandbox's mount path, in Nurosentrix's envelope, with these limiters:

  ok                 a correct moving window (100 all / 20 write per W): the control case
  none               no limit at all, no rate-limit headers
  loose              a moving window with 1.5x the documented limits (150 / 30 per W)
  no-retry-after     correct, but a 429 carries no Retry-After
  lying-retry-after  correct, but Retry-After is always 1 s (the slot frees up to W later)
  fixed-window       fixed windows, the first ending W/2 after the first request: 2x the
                     limit is admitted across a boundary (honest: "N per window" read as a
                     fixed window; only the strict profile, a moving window, refuses it)
  vendor             as a vendor team writes it from the documents alone: fixed windows, a
                     429 with code RATE_LIMIT_EXCEEDED and Retry-After, no other rate-limit
                     header (issue 32: the documented profile must pass it)
"""

from __future__ import annotations

import argparse
import json
import math
import secrets
import threading
import time
from collections import deque
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

BASE = "/nurosentrix/api/v1"
LIMITS = {"all": 100, "write": 20}
MODES = ("ok", "none", "loose", "no-retry-after", "lying-retry-after", "fixed-window", "vendor")


class Limiter:
    def __init__(self, mode: str, window: float) -> None:
        self.mode, self.window = mode, window
        factor = 1.5 if mode == "loose" else 1
        self.limits = {k: int(v * factor) for k, v in LIMITS.items()}
        self.logs: dict[str, deque[float]] = {k: deque() for k in LIMITS}
        self.fixed: dict[str, int] = dict.fromkeys(LIMITS, 0)
        self.fixed_end: float | None = None
        self.lock = threading.Lock()

    def hit(self, buckets: list[str]) -> tuple[bool, dict[str, str]]:
        if self.mode == "none":
            return True, {}
        now = time.monotonic()
        with self.lock:
            if self.mode in ("fixed-window", "vendor"):
                return self._fixed(buckets, now)
            for b in buckets:
                log = self.logs[b]
                while log and log[0] <= now - self.window:
                    log.popleft()
            full = [b for b in buckets if len(self.logs[b]) >= self.limits[b]]
            if full:
                wait = max(self.logs[b][-self.limits[b]] + self.window - now for b in full)
                b = full[0]
                return False, self._headers(b, 0, math.ceil(wait), max(1, math.ceil(wait)))
            for b in buckets:
                self.logs[b].append(now)
            b = min(buckets, key=lambda x: self.limits[x] - len(self.logs[x]))
            reset = math.ceil(self.logs[b][0] + self.window - now)
            return True, self._headers(b, self.limits[b] - len(self.logs[b]), reset, None)

    def _fixed(self, buckets: list[str], now: float) -> tuple[bool, dict[str, str]]:
        if self.fixed_end is None:
            self.fixed_end = now + self.window / 2
        while now >= self.fixed_end:
            self.fixed_end += self.window
            self.fixed = dict.fromkeys(LIMITS, 0)
        reset = math.ceil(self.fixed_end - now)
        full = [b for b in buckets if self.fixed[b] >= self.limits[b]]
        if full:
            return False, self._headers(full[0], 0, reset, max(1, reset))
        for b in buckets:
            self.fixed[b] += 1
        b = min(buckets, key=lambda x: self.limits[x] - self.fixed[x])
        return True, self._headers(b, self.limits[b] - self.fixed[b], reset, None)

    def _headers(self, bucket: str, remaining: int, reset: int, retry: int | None) -> dict[str, str]:
        if self.mode == "vendor":
            return {} if retry is None else {"Retry-After": str(retry)}
        w = f"{self.window:g}"
        out = {
            "RateLimit-Policy": ", ".join(f'"{b}";q={q};w={w}' for b, q in self.limits.items()),
            "RateLimit": f'"{bucket}";r={remaining};t={reset}',
            "X-RateLimit-Limit": str(self.limits[bucket]),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(reset),
        }
        if retry is not None and self.mode != "no-retry-after":
            out["Retry-After"] = "1" if self.mode == "lying-retry-after" else str(retry)
        return out


def build_app(mode: str, window: float) -> Starlette:
    limiter = Limiter(mode, window)
    servers: dict[str, dict[str, Any]] = {}

    def limited(buckets: list[str]) -> tuple[Response | None, dict[str, str]]:
        ok, headers = limiter.hit(buckets)
        if ok:
            return None, headers
        code = "RATE_LIMIT_EXCEEDED" if limiter.mode == "vendor" else "RATE_LIMITED"
        body = {"success": False, "error": {"code": code, "message": "Rate limit exceeded"}}
        return JSONResponse(body, 429, headers=headers), headers

    def authorized(request: Request) -> Response | None:
        if not request.headers.get("authorization", "").startswith("Bearer "):
            body = {"success": False, "error": {"code": "UNAUTHORIZED", "message": "Missing token"}}
            return JSONResponse(body, 401)
        return None

    async def list_servers(request: Request) -> Response:
        denied = authorized(request)
        if denied:
            return denied
        refusal, headers = limited(["all"])
        if refusal:
            return refusal
        items = list(servers.values())[:20]
        body = {"success": True, "data": items, "meta": {"page": 1, "per_page": 20, "total": len(servers)}}
        return JSONResponse(body, headers=headers)

    async def create_server(request: Request) -> Response:
        denied = authorized(request)
        if denied:
            return denied
        refusal, headers = limited(["all", "write"])
        if refusal:
            return refusal
        data = json.loads(await request.body() or b"{}")
        sid = "srv_" + secrets.token_hex(6)
        servers[sid] = {"id": sid, "name": data.get("name", "x"), "status": "provisioning"}
        return JSONResponse({"success": True, "data": servers[sid]}, 201, headers=headers)

    async def delete_server(request: Request) -> Response:
        denied = authorized(request)
        if denied:
            return denied
        refusal, headers = limited(["all", "write"])
        if refusal:
            return refusal
        if servers.pop(request.path_params["id"], None) is None:
            body = {"success": False, "error": {"code": "NOT_FOUND", "message": "Server not found"}}
            return JSONResponse(body, 404, headers=headers)
        return Response(status_code=204, headers=headers)

    return Starlette(
        routes=[
            Route(f"{BASE}/servers", list_servers, methods=["GET"]),
            Route(f"{BASE}/servers", create_server, methods=["POST"]),
            Route(f"{BASE}/servers/{{id}}", delete_server, methods=["DELETE"]),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--window", type=float, default=60.0)
    args = parser.parse_args()
    print(f"broken backend ({args.mode}) on http://127.0.0.1:{args.port}{BASE}", flush=True)
    uvicorn.run(build_app(args.mode, args.window), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
