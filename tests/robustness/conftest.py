"""Robustness fixtures: the shared harnesses with every answer counted, and the suite's figures
(inputs tried, 5xx seen, acknowledged writes lost after kill -9), printed at the end of the run
and written to `robustness-figures.json` in pytest's base temporary directory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Harness
from tests.robustness.support import FIGURES, Counting

_WRITTEN: list[str] = []


@pytest.fixture
def harness(harness: Harness) -> Harness:
    harness.app = Counting(harness.app)
    return harness


@pytest.fixture
def make_harness(make_harness: Any) -> Any:
    def make(**options: Any) -> Harness:
        h: Harness = make_harness(**options)
        h.app = Counting(h.app)
        return h

    return make


def figures() -> dict[str, int]:
    out = dict(sorted(FIGURES.items()))
    out["requests_total"] = out.get("requests_in_process", 0) + out.get("requests_live", 0)
    return out


@pytest.fixture(scope="session", autouse=True)
def _write_figures(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    yield
    path = tmp_path_factory.getbasetemp() / "robustness-figures.json"
    path.write_text(json.dumps(figures(), indent=2) + "\n")
    _WRITTEN.append(str(path))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _WRITTEN:
        return
    terminalreporter.section("robustness figures")
    for name, value in figures().items():
        terminalreporter.write_line(f"{name:<36} {value}")
    terminalreporter.write_line(f"(written to {_WRITTEN[-1]})")
