"""The proxy in front of backends: a full Schemathesis-driven conformance run of each API through
it against the clean sandbox (the suite passes, the proxy reports no violation); in front of each
planted-defect backend whose defect one exchange shows, the proxy names it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from contract import load
from proxy.app import ProxyApp
from tests.conformance.backends import Defective, make_sandbox, serve
from tests.conformance.conftest import APIS, run_suites
from tests.proxy_helpers import serve as serve_proxy


@pytest.fixture(scope="module")
def proxied_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[ProxyApp, str]]]:
    """One default run per API, each through its own proxy in front of one clean sandbox."""
    with ExitStack() as stack:
        url = stack.enter_context(serve(Defective(make_sandbox(rate_window=1.0), None)))
        proxies = {}
        for api in APIS:
            app = ProxyApp(load(api), url + load(api).base_path)
            proxies[api] = (app, stack.enter_context(serve_proxy(app)))
        tmp = tmp_path_factory.mktemp("proxied")
        # `--sandbox <proxy>`: the control API (tokens, health) is forwarded to the sandbox
        runs = run_suites(
            tmp, {api: ("--api", api, "--sandbox", proxies[api][1], "--max-examples", "3") for api in APIS}
        )
        yield {api: (proxies[api][0], runs[api].stdout + f"\nexit {runs[api].code}") for api in APIS}


@pytest.mark.slow
@pytest.mark.parametrize("api", APIS)
def test_a_full_run_through_the_proxy_finds_no_violation(
    api: str, proxied_runs: dict[str, tuple[ProxyApp, str]]
) -> None:
    app, out = proxied_runs[api]
    assert out.endswith("exit 0"), out[-4000:]
    status = app.status()
    assert status["exchanges"] > 150, status
    assert status["violations"] == 0, [(v.check, v.operation, v.message) for v in app.results.failing]
    # the suite sends requests the contract refuses on purpose: seen, and put on the client's side
    assert status["refused_requests"] > 0


SANDBOX_SERVER = {"name": "web-1", "plan": "pro", "region": "eu-west-1", "image": "ubuntu-22.04"}


def _through(defect: str, api: str, send: Callable[[httpx.Client, str, str], None]) -> ProxyApp:
    sandbox = make_sandbox(rate_window=None)
    token = sandbox.mint(api)[0]
    with serve(Defective(sandbox, defect)) as url:
        app = ProxyApp(load(api), url + load(api).base_path)
        with serve_proxy(app) as origin, httpx.Client() as client:
            send(client, origin + load(api).base_path, token)
    return app


def _create_and_read(client: httpx.Client, base: str, token: str) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    created = client.post(base + "/servers", json=SANDBOX_SERVER, headers=auth)
    sid = (created.json().get("data") or created.json().get("result") or {}).get("id")
    client.get(f"{base}/servers/{sid}", headers=auth)
    client.get(base + "/servers", headers=auth)


# defect → (API, what to send, the check the proxy must name); one exchange shows each
CASES: dict[str, tuple[str, Callable[[httpx.Client, str, str], None], set[str]]] = {
    "wrong-envelope": ("cloudnexus", _create_and_read, {"envelope"}),
    "wrong-status": ("cloudnexus", _create_and_read, {"status_code_conformance"}),
    "server-error": (
        "cloudnexus",
        lambda c, b, t: c.post(
            b + "/servers",
            json={**SANDBOX_SERVER, "region": "us-east-1"},
            headers={"Authorization": f"Bearer {t}"},
        ),
        {"not_a_server_error"},
    ),
    "invalid-accepted": (
        "cloudnexus",
        lambda c, b, t: c.post(b + "/servers", json={"name": 5}, headers={"Authorization": f"Bearer {t}"}),
        {"negative_data_rejection"},
    ),
    "no-auth": ("cloudnexus", lambda c, b, t: c.get(b + "/servers"), {"ignored_auth"}),
}


@pytest.mark.parametrize("defect", sorted(CASES))
def test_the_proxy_names_a_planted_defect(defect: str) -> None:
    api, send, expected = CASES[defect]
    app = _through(defect, api, send)
    failing = {v.check for v in app.results.failing}
    assert expected <= failing, [(v.check, v.message) for v in app.results.violations]


def test_missing_rate_limit_headers_are_a_difference_not_a_violation() -> None:
    """The documents name no rate-limit header: the sandbox's choice, reported apart."""
    app = _through("no-rate-limit-headers", "cloudnexus", _create_and_read)
    assert app.results.failing == []
    assert any(v.check == "ratelimit" for v in app.results.differences)


def test_the_clean_sandbox_through_the_same_exchanges_is_clean(tmp_path: Path) -> None:
    """The control case of the defects above: the very same exchanges, no finding."""
    for _defect, (api, send, _) in CASES.items():
        app = _through(None, api, send)  # type: ignore[arg-type]
        assert app.results.failing == [], [(v.check, v.message) for v in app.results.failing]
