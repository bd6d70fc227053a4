"""Shared fixtures: an in-process sandbox with a frozen clock, seeded ids and self-check on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from contract import Contract
from mock_server.app import SandboxApp
from mock_server.clock import FrozenClock
from mock_server.ids import IdGenerator
from mock_server.sandbox import Sandbox, load_all
from tests.sandbox_client import SyncASGIClient

# Tests that judge real time (rate windows of a few seconds, start-up and read deadlines, a CPU
# budget, loads that must reach a figure): `make test` runs them on their own after the rest, which
# runs in two processes (pytest-xdist), so a neighbour's CPU never decides their outcome.
TIMING = (
    "tests/load/test_ratelimit_verifier.py",
    "tests/load/test_blind_ratelimit.py",
    "tests/load/test_locust_runs.py",
    "tests/load/test_fingerprint_sandbox.py",
    "tests/load/test_fingerprint_nginx.py",
    "tests/test_redis_soak.py",
    "tests/test_redis_frozen.py",
    "tests/test_workers.py",
    "tests/robustness/test_operator_mistakes.py",
    "tests/robustness/test_slow_bodies.py",
    "tests/robustness/test_crash_safety.py::test_kill_9_mid_burst_loses_no_acknowledged_write",
)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Under pytest-xdist the robustness figures are each worker's (tests/robustness/conftest.py
    prints them in a one-process run): the controller adds them up."""
    if hasattr(config, "workerinput") or not config.pluginmanager.hasplugin("xdist"):
        return
    base = config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    paths = sorted(base.glob("popen-gw*/robustness-figures.json"))
    total: dict[str, int] = {}
    for path in paths:
        for name, value in json.loads(path.read_text()).items():
            total[name] = total.get(name, 0) + value
    if total:
        terminalreporter.section("robustness figures (all workers)")
        for name, value in sorted(total.items()):
            terminalreporter.write_line(f"{name:<36} {value}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.startswith(TIMING):
            item.add_marker(pytest.mark.timing)

_SPECS: list[Contract] | None = None


def all_specs() -> list[Contract]:
    global _SPECS
    if _SPECS is None:
        _SPECS = load_all()
    return _SPECS


class Harness:
    """A sandbox plus helpers to mint tokens and get clients bound to an API's base path."""

    def __init__(self, **options: Any) -> None:
        self.clock = FrozenClock()
        options.setdefault("async_delay", 0.0)
        self.sandbox = Sandbox(
            all_specs(), clock=self.clock, ids=IdGenerator(seed=7), self_check=True, **options
        )
        self.app = SandboxApp(self.sandbox)
        self._clients: list[SyncASGIClient] = []

    def token(self, api: str, **kw: Any) -> str:
        return self.sandbox.mint(api, **kw)[0]

    def client(self, api: str | None = None, token: str | None = None, **kw: Any) -> SyncASGIClient:
        base = "http://sandbox.test" + (self.sandbox.specs[api].base_path if api else "")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        c = SyncASGIClient(self.app, base_url=base, headers=headers, **kw)
        self._clients.append(c)
        return c

    def api(self, api: str, **token_kw: Any) -> SyncASGIClient:
        """A client of `api` with a fresh full-scope test token of account `default`."""
        return self.client(api, self.token(api, **token_kw))

    def close(self) -> None:
        for c in self._clients:
            c.close()


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness()
    yield h
    h.close()
    assert h.sandbox.self_check_failures == [], "the sandbox answered outside its own contract"


@pytest.fixture
def make_harness() -> Iterator[Any]:
    made: list[Harness] = []

    def make(**options: Any) -> Harness:
        made.append(Harness(**options))
        return made[-1]

    yield make
    for h in made:
        h.close()
        assert h.sandbox.self_check_failures == []
