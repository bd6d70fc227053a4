"""Fixtures: sandboxes (clean or broken) served on 127.0.0.1, and a runner of the real CLI."""

from __future__ import annotations

import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.apis import APIS
from tests.conformance.backends import Defective, make_sandbox, serve

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    failing: set[str]  # checks with at least one failing testcase in the JUnit XML
    skipped: set[str]
    junit: ET.Element

    def __str__(self) -> str:
        return f"exit {self.code}\n{self.stdout[-6000:]}\n{self.stderr[-3000:]}"


def _command(junit: Path, args: tuple[str, ...]) -> list[str]:
    return [sys.executable, "-m", "conformance", "run", "--seed", "7", "--junit-xml", str(junit), "-q", *args]


def _outcome(code: int, stdout: str, stderr: str, junit: Path) -> Outcome:
    failing: set[str] = set()
    skipped: set[str] = set()
    root = ET.Element("none")
    if junit.exists():
        root = ET.parse(junit).getroot()
        for suite in root.iter("testsuite"):
            check = suite.get("name", "").split(".", 1)[-1]
            if int(suite.get("failures", "0")):
                failing.add(check)
            if int(suite.get("skipped", "0")):
                skipped.add(check)
    return Outcome(code, stdout, stderr, failing, skipped, root)


def run_suite(tmp: Path, *args: str, timeout: float = 240) -> Outcome:
    """`python -m conformance run ...` in a subprocess (the real entry point and exit codes)."""
    junit = tmp / "junit.xml"
    proc = subprocess.run(_command(junit, args), cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    return _outcome(proc.returncode, proc.stdout, proc.stderr, junit)


def run_suites(
    tmp: Path, runs: dict[str, tuple[str, ...]], timeout: float = 300, parallel: int | None = None
) -> dict[str, Outcome]:
    """Several runs at once (each in its own account: they share no rate-limit bucket); with
    `parallel`, at most that many at a time, the next one started as soon as one ends."""
    waiting = list(runs.items())
    running: dict[str, tuple[subprocess.Popen[str], Path, Any, Any, float]] = {}
    outcomes = {}
    while waiting or running:
        while waiting and (parallel is None or len(running) < parallel):
            name, args = waiting.pop(0)
            junit = tmp / f"{name}.xml"
            out, err = (tmp / f"{name}.out").open("w+"), (tmp / f"{name}.err").open("w+")
            proc = subprocess.Popen(_command(junit, args), cwd=ROOT, stdout=out, stderr=err, text=True)
            running[name] = (proc, junit, out, err, time.monotonic() + timeout)
        for name, (proc, junit, out, err, deadline) in list(running.items()):
            if proc.poll() is None:
                if time.monotonic() > deadline:
                    proc.kill()
                    raise subprocess.TimeoutExpired(proc.args, timeout)
                continue
            del running[name]
            out.seek(0)
            err.seek(0)
            outcomes[name] = _outcome(proc.returncode, out.read(), err.read(), junit)
            out.close()
            err.close()
        if running:
            time.sleep(0.05)
    return {name: outcomes[name] for name in runs}


@pytest.fixture
def suite(tmp_path: Path) -> Callable[..., Outcome]:
    def run(*args: str, timeout: float = 240) -> Outcome:
        return run_suite(tmp_path, *args, timeout=timeout)

    return run




@pytest.fixture(scope="module")
def clean_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Outcome]]:
    """One full run per API and profile (every family, every Schemathesis phase) against one clean
    sandbox, rate limits on with 1 s windows; the four APIs run concurrently, a profile at a time.
    Keys: the API (default profile, documented) and `<api>:strict`."""
    with serve(Defective(make_sandbox(rate_window=1.0), None)) as url:
        tmp = tmp_path_factory.mktemp("clean")
        runs = run_suites(tmp, {api: ("--api", api, "--sandbox", url, "--max-examples", "3") for api in APIS})
        strict = ("--max-examples", "3", "--profile", "strict")
        runs |= run_suites(tmp, {f"{api}:strict": ("--api", api, "--sandbox", url, *strict) for api in APIS})
        yield runs


@pytest.fixture
def broken() -> Iterator[Callable[..., str]]:
    """Start a sandbox with one planted defect; returns its URL."""
    stack: list[Iterator[str]] = []

    def start(defect: str | None, rate_window: float = 1.0) -> str:
        ctx = serve(Defective(make_sandbox(rate_window=rate_window), defect))
        stack.append(ctx)  # type: ignore[arg-type]
        return ctx.__enter__()

    yield start
    for ctx in reversed(stack):
        ctx.__exit__(None, None, None)  # type: ignore[attr-defined]
