"""Rate limits: moving window per token, exact at the edge, honest Retry-After, headers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mock_server.clock import FrozenClock
from mock_server.ratelimit import RateLimiter
from tests.apis import COLLECTIONS, IDS, Collection, error_code
from tests.conftest import Harness


@pytest.mark.parametrize("col", COLLECTIONS, ids=IDS)
def test_100_per_minute_then_429_with_retry_after(harness: Harness, col: Collection) -> None:
    c = harness.api(col.api)
    for i in range(100):
        r = c.get(col.path)
        assert r.status_code == 200, i
        assert r.headers["X-RateLimit-Remaining"] == str(99 - i)
    r = c.get(col.path)
    assert r.status_code == 429
    assert error_code(r.json()) == "RATE_LIMITED"
    assert r.headers["Retry-After"] == "60"
    assert r.headers["RateLimit"] == '"all";r=0;t=60'
    harness.clock.advance(59.9)
    assert c.get(col.path).status_code == 429
    harness.clock.advance(0.1)  # the first request leaves the window exactly now
    assert c.get(col.path).status_code == 200
    assert harness.api(col.api).get(col.path).status_code == 200  # per token


@pytest.mark.parametrize("col", COLLECTIONS, ids=IDS)
def test_20_creates_per_minute(harness: Harness, col: Collection) -> None:
    c = harness.api(col.api)
    for i in range(20):
        r = c.post(col.path, json=col.new(i))
        assert r.status_code == 201, (i, r.text)
    r = c.post(col.path, json=col.new(99))
    assert r.status_code == 429
    assert r.headers["X-RateLimit-Limit"] == "20"
    assert int(r.headers["Retry-After"]) == 60
    assert c.get(col.path).status_code == 200  # reads still have budget
    harness.clock.advance(int(r.headers["Retry-After"]))
    assert c.post(col.path, json=col.new(100)).status_code == 201  # an honest Retry-After


def test_headers_describe_both_policies(harness: Harness) -> None:
    r = harness.api("nurosentrix").post(
        "/servers", json={"name": "a", "provider": "p", "region": "r", "size": "s"}
    )
    assert r.headers["RateLimit-Policy"] == '"all";q=100;w=60, "write";q=20;w=60'
    assert r.headers["RateLimit"] == '"write";r=19;t=60'


def test_rate_window_option_shortens_the_window(make_harness) -> None:  # type: ignore[no-untyped-def]
    h = make_harness(rate_window=2)
    c = h.api("nurosentrix")
    for _ in range(100):
        assert c.get("/servers").status_code == 200
    r = c.get("/servers")
    assert r.status_code == 429 and r.headers["Retry-After"] == "2"
    h.clock.advance(2)
    assert c.get("/servers").status_code == 200


def test_no_rate_limit_option(make_harness) -> None:  # type: ignore[no-untyped-def]
    c = make_harness(rate_limit=False).api("nurosentrix")
    assert all(c.get("/servers").status_code == 200 for _ in range(150))


@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(st.floats(0, 3, allow_nan=False), min_size=1, max_size=120),
    limit=st.integers(1, 10),
    window=st.integers(1, 20),
)
def test_never_more_than_limit_in_any_window(gaps: list[float], limit: int, window: int) -> None:
    clock = FrozenClock()
    limiter = RateLimiter(clock)
    bucket = limiter.bucket("all", limit, window)
    accepted: list[float] = []
    for gap in gaps:
        clock.advance(gap)
        d = limiter.hit("k", [bucket])
        assert d is not None
        now = clock.now()
        in_window = [t for t in accepted if t > now - window]
        if d.allowed:
            accepted.append(now)
            assert len(in_window) + 1 <= limit
        else:
            assert len(in_window) == limit  # refused only when really full
            assert now - window < min(in_window) + 0 <= now
            assert d.retry_after >= min(in_window) + window - now
