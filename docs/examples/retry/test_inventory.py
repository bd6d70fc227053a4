"""The retry code of `inventory.py`, tested against the sandbox: forced answers with `Prefer`,
transient failures with fault rules (`sandbox.fault`), all on the `sandbox` fixture."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from inventory import Inventory, Unavailable


def app(sandbox: Any, slept: list[float], **kw: Any) -> Inventory:
    token = sandbox.token("cloudnexus")
    return Inventory(sandbox.base_url("cloudnexus"), token, sleep=slept.append, **kw)


def statuses(sandbox: Any) -> list[int]:
    return [r.status for r in sandbox.requests("cloudnexus", path="/servers")]


def test_gives_up_after_its_retries_when_the_api_keeps_failing(sandbox: Any) -> None:
    """`Prefer: code=500` makes every answer a 500 (a status listServers documents)."""
    slept: list[float] = []
    with pytest.raises(Unavailable, match="HTTP 500 after 3 retries"):
        app(sandbox, slept, headers={"Prefer": "code=500"}).servers()
    assert statuses(sandbox) == [500, 500, 500, 500]
    assert slept == [0.5, 1.0, 2.0]  # exponential back-off


def test_an_undocumented_status_cannot_be_forced(sandbox: Any) -> None:
    """503 is not in the contract of listServers: the sandbox says so instead of inventing one."""
    with pytest.raises(httpx.HTTPStatusError) as refused:
        app(sandbox, [], headers={"Prefer": "code=503"}).servers()
    assert "503 is not documented for listServers" in refused.value.response.text


def test_recovers_from_two_transient_failures(sandbox: Any) -> None:
    sandbox.fault(api="cloudnexus", operation="listServers", status=500, count=2)
    slept: list[float] = []
    assert app(sandbox, slept).servers() == []
    assert statuses(sandbox) == [500, 500, 200] and slept == [0.5, 1.0]


def test_honours_retry_after_of_a_429(sandbox: Any) -> None:
    sandbox.fault(api="cloudnexus", operation="listServers", status=429, retry_after=7, count=1)
    slept: list[float] = []
    assert app(sandbox, slept).servers() == []
    assert slept == [7.0]


def test_a_slow_answer_times_out_and_is_retried(sandbox: Any) -> None:
    """A latency rule: the first answer takes 0.5 s, longer than the app's 0.2 s timeout."""
    sandbox.fault(api="cloudnexus", operation="listServers", latency_ms=500, count=1)
    slept: list[float] = []
    assert app(sandbox, slept, timeout=0.2).servers() == []
    rules = sandbox.faults()
    assert [(r["fired"], r["remaining"]) for r in rules] == [(1, 0)] and slept == [0.5]
