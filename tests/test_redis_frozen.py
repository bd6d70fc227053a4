"""A frozen Redis (`SIGSTOP`: connections accepted, nothing answered) under a real `serve
--store redis://`: every request that needs Redis gets its 503 within its own timeout, all of
them at once, and requests that do not need it (health, docs, static files) are not held up."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from mock_server.store_redis import connect
from tests.live import live_sandbox
from tests.redis_server import RedisServer, redis_server

pytestmark = pytest.mark.slow

TIMEOUT = 2.0  # the Redis client's reply timeout (`store_redis.connect` / `aconnect`)
READS = 8


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    yield from redis_server(tmp_path)


def _timed(client: httpx.Client, method: str, path: str, **kw: object) -> tuple[int, float]:
    started = time.monotonic()
    r = client.request(method, path, **kw)  # type: ignore[arg-type]
    return r.status_code, time.monotonic() - started


def test_a_frozen_redis_answers_each_request_503_in_parallel_and_holds_up_nothing_else(
    own_redis: RedisServer,
) -> None:
    assert connect(own_redis.url).get_connection_kwargs()["socket_timeout"] == TIMEOUT
    with live_sandbox("--store", own_redis.url, "--api", "cloudnexus") as base:
        token = httpx.post(f"{base}/_mock/tokens", json={"api": "cloudnexus"}).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        web = {"name": "web", "plan": "pro", "region": "us-east-1"}
        with httpx.Client(base_url=base, timeout=30) as c:
            assert c.get("/cloudnexus/v1/servers", headers=auth).status_code == 200
            assert own_redis.proc is not None
            os.kill(own_redis.proc.pid, signal.SIGSTOP)
            try:
                with ThreadPoolExecutor(READS + 6) as pool:
                    started = time.monotonic()
                    servers = "/cloudnexus/v1/servers"
                    needing = [pool.submit(_timed, c, "GET", servers, headers=auth) for _ in range(READS)]
                    needing.append(pool.submit(_timed, c, "POST", servers, headers=auth, json=web))
                    needing.append(pool.submit(_timed, c, "GET", "/_mock/tokens"))  # the control API too
                    time.sleep(0.2)  # all of them waiting on Redis now
                    paths = ("/_mock/health", "/_mock/docs", "/_mock/static/sandbox.css", "/favicon.ico")
                    free = [pool.submit(_timed, c, "GET", path) for path in paths]
                    free_results = [f.result() for f in free]
                    results = [f.result() for f in needing]
                    wall = time.monotonic() - started
            finally:
                os.kill(own_redis.proc.pid, signal.SIGCONT)
            for status, seconds in free_results:  # answered while Redis was still frozen
                assert status == 200 and seconds < 1.0, free_results
            for status, seconds in results:  # each within its own timeout (one retry-free reply wait)
                assert status == 503 and TIMEOUT * 0.9 <= seconds < TIMEOUT + 1.5, results
            assert wall < TIMEOUT + 2.0, f"one after another, not in parallel: {wall:.1f} s"
            # and Redis back: served again
            assert c.get("/cloudnexus/v1/servers", headers=auth).status_code == 200
            assert c.post("/cloudnexus/v1/servers", headers=auth, json=web).status_code == 201
