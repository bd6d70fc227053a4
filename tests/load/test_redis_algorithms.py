"""`serve --store redis://` serves every rate-limit algorithm of an overlay (the Lua limiter
mirrors `algorithms.py`; `tests/test_store_redis.py` proves the two decide alike, replica by
replica): a fixed window and a token bucket, each on its own operation, through real HTTP."""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest

from tests.redis_server import RedisServer, redis_server

from .conftest import HOST, free_port, spawn, stop, wait_http


@pytest.fixture(scope="module")
def redis_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    yield from redis_server(tmp_path_factory.mktemp("redis"))


def status(url: str, token: str) -> tuple[int, Message]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.headers


def test_fixed_window_and_token_bucket_on_redis(redis_db: RedisServer, tmp_path: Path) -> None:
    buckets = {
        "f": {"limit": 3, "window": 3600, "algorithm": "fixed-window"},  # the hour began before the test
        "t": {
            "limit": 60,
            "window": 3600,
            "algorithm": "token-bucket",
            "burst": 2,
        },  # one a minute, 2 at once
    }
    ov = tmp_path / "ov.json"
    ov.write_text(
        json.dumps(
            {
                "rate-limits": {
                    "nurosentrix": {
                        "buckets": buckets,
                        "operations": {"listServers": ["f"], "getServer": ["t"]},
                    }
                }
            }
        )
    )
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "mock_server",
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--api",
        "nurosentrix",
    ]
    proc = spawn([*args, "--store", redis_db.url, "--rate-limits", str(ov)])
    base = f"http://{HOST}:{port}"
    try:
        assert wait_http(f"{base}/_mock/health", proc), stop(proc)
        req = urllib.request.Request(
            f"{base}/_mock/tokens",
            json.dumps({"api": "nurosentrix"}).encode(),
            {"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            token = json.loads(r.read())["token"]
        if time.time() % 3600 > 3590:  # the fixed window would turn during the test
            time.sleep(3600 - time.time() % 3600 + 0.1)
        lists = [status(f"{base}/nurosentrix/api/v1/servers", token) for _ in range(4)]
        assert [s for s, _ in lists] == [200, 200, 200, 429]
        assert [h["X-RateLimit-Remaining"] for _, h in lists[:3]] == ["2", "1", "0"]
        retry = int(lists[3][1]["Retry-After"])  # the end of the hour, not an hour after the first request
        assert 1 <= retry <= 3600 and abs(retry - int(lists[2][1]["X-RateLimit-Reset"])) <= 1, lists
        gets = [status(f"{base}/nurosentrix/api/v1/servers/srv_none", token) for _ in range(3)]
        assert [s for s, _ in gets] == [404, 404, 429]  # the burst of 2, then one a minute
        assert gets[2][1]["Retry-After"] in ("59", "60"), gets[2][1]
    finally:
        stop(proc)
