"""`python -m load ratelimit --profile documented` against the backends written blind from the
vendor documents (`tests/conformance/blind/`, issue 32): it passes the honest ones — Nurosentrix,
whose document 000 states "100 requests per minute" and "Create/Delete operations | 20 requests
per minute" (kept there by a fixed window, `RATE_LIMIT_EXCEEDED`, only a `Retry-After`); the
others, whose documents state no number, have nothing documented to verify — and fails, by exit
code and naming the problem, each planted rate-limit defect (`CAUGHT`, which the catalogue cites).
The backends serve 2-3 s windows in place of the minute, announced with `--window`; every run goes
at once, so the file takes about 30 s on a loaded machine. A 10% excess is not proven at these
windows (`UNSURE`)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.conformance.blind import cloudnexus_com, cloudnexus_io, nexos, nurosentrix
from tests.load.conftest import HOST, free_port, spawn, stop, wait_http
from tests.load.test_ratelimit_verifier import _finish

pytestmark = pytest.mark.slow

VERIFIER = "load ratelimit"  # the name the catalogue gives this check
# seconds, in place of the documented minute: 2 for the honest runs, 3 for a defect (a Retry-After
# of 1 s, retry_after_short's half of 2 s or 3 s, is a lie only while over 1 s of the window is left)
WINDOW, DEFECT_WINDOW = 2, 3
# blind backend -> (module, --api, mount path, whether its documents state limits)
BACKENDS: dict[str, tuple[ModuleType, str, str, bool]] = {
    "nurosentrix": (nurosentrix, "nurosentrix", "/api/v1", True),
    "cloudnexus_com": (cloudnexus_com, "cloudnexus", "/v1", False),  # 002: a 429, no number
    "cloudnexus_io": (cloudnexus_io, "cloudnexus-io", "/v1", False),
    "nexos": (nexos, "nexos", "/api", False),
}
# "backend:defect" -> the problem the verifier must name (`[<kind>] write:` in its report), in a
# run of the `write` bucket alone (creates/deletes, 20 per window: it shows each of them; half the time)
CAUGHT: dict[str, str] = {
    "nurosentrix:create_limit_missing": "limit-exceeded",  # creates/deletes held to 100 only
    "nurosentrix:retry_after_short": "retry-after-dishonest",  # half the time left in the window
}
# Limiter defects the verifier sees only by chance on windows this short, and why.
UNSURE: dict[str, str] = {
    # 22 accepted of 20 keep an honest reading when they took over W/10 s (a token bucket of 20 per
    # W s refills that much; on a loaded machine 22 creates take 0.3-0.6 s) or when a fixed window's
    # boundary may fall inside both bursts (the recovery starts one window after a retry that the
    # honest Retry-After put on a boundary): caught in about 7 runs of 10 at W = 3 or 6.
    "nurosentrix:rate_limit_10pct_over": "limit-exceeded",
}


# A blind backend in its own process (in the test's, seven servers would share one interpreter and
# stretch a burst, which an honest fixed window or token bucket may then rightly explain away).
SERVE = """
import sys, uvicorn
from tests.conformance.blind import {module} as m
app = m.make_app(window=float(sys.argv[2]), delay=1.0, defect=sys.argv[3] or None)
print(app.state.backend.test_tokens().full, flush=True)
uvicorn.run(app, host="{host}", port=int(sys.argv[1]), log_level="warning")
"""


def _backend(name: str, window: int, defect: str | None) -> tuple[subprocess.Popen[str], str, str]:
    """Start blind backend `name`: its process, base URL and full token."""
    module, _, base, _ = BACKENDS[name]
    port = free_port()
    code = SERVE.format(module=module.__name__.rsplit(".", 1)[1], host=HOST)
    proc = spawn([sys.executable, "-c", code, str(port), str(window), defect or ""])
    token = proc.stdout.readline().strip() if proc.stdout else ""
    url = f"http://{HOST}:{port}"
    if not token or not wait_http(url + base, proc):
        raise RuntimeError(f"blind backend {name} did not start: {stop(proc)}")
    return proc, url + base, token


def _verify(name: str, url: str, token: str, window: int, *more: str) -> subprocess.Popen[str]:
    return spawn([
        sys.executable, "-m", "load", "ratelimit", "--api", BACKENDS[name][1], "--base-url", url,
        "--token", token, "--window", str(window), "--profile", "documented", *more,
    ])  # fmt: skip


@pytest.fixture(scope="module")
def runs() -> Iterator[dict[str, tuple[int, str]]]:
    """One verifier run per blind backend and per caught defect, each against its own backend, all
    at once."""
    cases = [(name, None) for name in BACKENDS] + [tuple(key.split(":", 1)) for key in CAUGHT]
    backends: list[subprocess.Popen[str]] = []
    try:
        procs: dict[str, subprocess.Popen[str]] = {}
        for name, defect in cases:
            key = f"{name}:{defect}"
            window = DEFECT_WINDOW if defect else WINDOW
            more = ("--bucket", "write") if defect else ()
            backend, url, token = _backend(name, window, defect)
            backends.append(backend)
            procs[key if defect else name] = _verify(name, url, token, window, *more)
        yield _finish(procs)
    finally:
        for backend in backends:
            stop(backend)


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_the_verifier_passes_an_honest_blind_backend(name: str, runs: dict[str, tuple[int, str]]) -> None:
    code, output = runs[name]
    assert code == 0, output
    if BACKENDS[name][3]:
        assert "documented (x-sandbox.rate-limits): all 100 per 2 s, write 20 per 2 s" in output, output
        assert "PASS: the rate-limit contract holds" in output, output
    else:
        assert "the documents state no rate limit: nothing documented to verify" in output, output


@pytest.mark.parametrize("key", sorted(CAUGHT))
def test_the_verifier_fails_a_planted_rate_limit_defect(key: str, runs: dict[str, tuple[int, str]]) -> None:
    code, output = runs[key]
    assert code == 1, output
    assert "FAIL: the rate-limit contract does not hold" in output, output
    assert f"[{CAUGHT[key]}] write: " in output, output


def test_every_rate_limit_defect_where_limits_are_documented_is_tried() -> None:
    """Each limiter defect planted in a backend whose documents state limits is in `CAUGHT`
    (CloudNexus .com's are not: 002 states no number, so the documented profile has none to hold)."""
    limiter = ("rate_limit", "retry_after", "create_limit")
    planted = {
        f"{name}:{d}"
        for name, (module, _, _, documented) in BACKENDS.items()
        if documented
        for d in module.DEFECTS
        if d.startswith(limiter)
    }
    assert planted == set(CAUGHT) | set(UNSURE)
