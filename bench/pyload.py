"""Fallback load generator (used when wrk is not installed): N keep-alive HTTP/1.1 connections
from one asyncio process, each sending its next request as soon as the previous response is read
(the same closed loop wrk runs). Prints one `BENCH_JSON {...}` line in wrk's units (µs).

    python -m bench.pyload scenario.json
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from urllib.parse import urlsplit


def _request_bytes(method: str, host: str, path: str, headers: dict[str, str], body: str | None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    data = body.encode() if body is not None else b""
    if body is not None:
        lines.append(f"Content-Length: {len(data)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length, chunked = 0, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def _worker(
    cfg: dict, reqs: list[bytes], offset: int, deadline: float, lat: list[float], stats: dict
) -> None:
    u = urlsplit(cfg["base_url"])
    try:
        reader, writer = await asyncio.open_connection(u.hostname, u.port or 80)
    except OSError:
        stats["connect"] += 1
        return
    i = offset
    try:
        while True:
            t0 = time.perf_counter()
            if t0 >= deadline:
                break
            writer.write(reqs[i % len(reqs)])
            i += 1
            status = await _read_response(reader)
            lat.append(time.perf_counter() - t0)
            if not 200 <= status < 400:
                stats["non2xx"] += 1
    except (OSError, asyncio.IncompleteReadError, ValueError):
        stats["read"] += 1
    finally:
        writer.close()


async def _main(cfg: dict) -> dict:
    u = urlsplit(cfg["base_url"])
    host = u.netloc
    reqs = [_request_bytes(cfg["method"], host, p, cfg["headers"], cfg["body"]) for p in cfg["paths"]]
    lat: list[float] = []
    stats = {"connect": 0, "read": 0, "non2xx": 0}
    start = time.perf_counter()
    deadline = start + cfg["duration"]
    await asyncio.gather(
        *(_worker(cfg, reqs, k * 7, deadline, lat, stats) for k in range(cfg["connections"]))
    )
    elapsed = time.perf_counter() - start
    lat.sort()

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1e6 if lat else 0.0

    return {
        "requests": len(lat),
        "duration_us": int(elapsed * 1e6),
        "p50_us": pct(50),
        "p90_us": pct(90),
        "p99_us": pct(99),
        "max_us": lat[-1] * 1e6 if lat else 0.0,
        "mean_us": sum(lat) / len(lat) * 1e6 if lat else 0.0,
        "connect": stats["connect"],
        "read": stats["read"],
        "write": 0,
        "timeout": 0,
        "non2xx": stats["non2xx"],
    }


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as fh:
        cfg = json.load(fh)
    try:
        import uvloop

        result = uvloop.run(_main(cfg))
    except ImportError:
        result = asyncio.run(_main(cfg))
    print("BENCH_JSON " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
