"""pytest plugin, installed with the package (`pytest11` entry point): a `sandbox` fixture.

    def test_lists_servers(sandbox):
        token = sandbox.token("nurosentrix", scopes=["servers:read"])
        app = MyClient(sandbox.base_url("nurosentrix"), token)
        app.list_servers()
        assert [r.status for r in sandbox.requests("nurosentrix", path="/servers")] == [200]

- one real server per test session, on a free port of 127.0.0.1 (`sandbox.url`); its clock is
  frozen: `sandbox.clock.advance(seconds)` moves lifecycles, expiries and rate-limit windows;
- reset before each test (resources, tokens, rate limits, the request log); a test marked
  `@pytest.mark.sandbox_keep_state` sees what the tests before it left;
- in-process where a test wants it: `sandbox.app` is the same state's ASGI app;
- when a test using the fixture fails, its report shows a section "sandbox": every request the
  test sent, with the sandbox's reason for each refusal, and the client rules it broke
  (`sandbox.grade`, `sandbox.assert_good_client`);
- options: override the `sandbox_options` fixture in a conftest.py (the keyword arguments of
  `mock_server.testing.SandboxServer`: `apis`, `frozen_clock`, `async_delay`, `rate_window`,
  `rate_limit`, `seed`); `--sandbox-url URL` uses a sandbox already running instead.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .testing import SandboxServer

KEEP_STATE = "sandbox_keep_state"
SECTION = "sandbox: this test's requests, and why the sandbox refused them"
_FIRST = pytest.StashKey[str | None]()  # the last request before the test: the test's come after


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sandbox", "API sandbox (mock_server)")
    group.addoption(
        "--sandbox-url",
        metavar="URL",
        help="use the sandbox running at URL for the `sandbox` fixture instead of starting one; it is "
        "RESET before each test (resources, tokens, request log): point it only at a sandbox of your own",
    )
    group.addoption("--sandbox-admin-token", metavar="TOKEN", help="that sandbox's --admin-token")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{KEEP_STATE}: the `sandbox` fixture does not reset the sandbox before this test"
    )


def pytest_report_header(config: pytest.Config) -> str | None:
    url = config.getoption("--sandbox-url", None)
    if not url:
        return None
    return f"sandbox: {url} (--sandbox-url): reset before each test that uses the `sandbox` fixture"


@pytest.fixture(scope="session")
def sandbox_options() -> dict[str, Any]:
    """Keyword arguments of `SandboxServer` for the session's sandbox: override to change them."""
    return {}


@pytest.fixture(scope="session")
def sandbox_server(
    request: pytest.FixtureRequest, sandbox_options: dict[str, Any]
) -> Iterator[SandboxServer]:
    """The session's sandbox, started once (not reset: the `sandbox` fixture resets)."""
    from .testing import SandboxServer

    url = request.config.getoption("--sandbox-url")
    admin = request.config.getoption("--sandbox-admin-token")
    server = SandboxServer(url=url, admin_token=admin, **sandbox_options)
    with server:
        yield server


@pytest.fixture
def sandbox(request: pytest.FixtureRequest, sandbox_server: SandboxServer) -> SandboxServer:
    """The session's sandbox, reset before the test unless it is marked `sandbox_keep_state`."""
    if request.node.get_closest_marker(KEEP_STATE) is None:
        sandbox_server.reset()
        request.node.stash[_FIRST] = None
    else:
        before = sandbox_server.control("GET", "requests", params={"limit": 1})["requests"]
        request.node.stash[_FIRST] = before[-1]["request_id"] if before else None
    return sandbox_server


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    server = getattr(item, "funcargs", {}).get("sandbox")
    if report.when == "call" and report.failed and server is not None and _FIRST in item.stash:
        try:
            text = _section(server, item.stash[_FIRST])
        except Exception as exc:  # the sandbox is gone: say so, never hide the test's own failure
            text = f"(the sandbox could not be asked: {exc})"
        if text:
            report.sections.append((SECTION, text))
    return report


def _section(server: SandboxServer, after: str | None) -> str:
    from .grading import explain

    rows = server.control("GET", "requests", params={"limit": 500})["requests"]
    if after is not None:
        ids = [r["request_id"] for r in rows]
        rows = rows[ids.index(after) + 1 :] if after in ids else rows
    lines = [
        f"{r['request_id']} {r['method']} {r['path']} -> {r['status']}"
        + (f" [{r['token_id']}]" if r.get("token_id") else "")
        + (f": {r['reason']}" if r.get("reason") else "")
        for r in rows
    ]
    if after is None:  # the whole log is this test's: grade it
        for api in dict.fromkeys(r["api"] for r in rows):
            broken = explain(server.grade(api), rows)
            if broken:
                lines += ["", f"client rules of {api} the test's app broke:", broken]
    return "\n".join(lines)
