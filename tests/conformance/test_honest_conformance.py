"""The suite against backends a real vendor team could have written (`tests/conformance/honest/`,
from the vendor documents, with other choices where they are silent): the default profile
(documented) passes every one of them, and each planted defect fails it by the exit code alone,
naming the check that catches it. Backends on the real clock with 2 s rate-limit windows and 1 s
asynchronous work, so a run takes seconds."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from types import ModuleType

import pytest

from tests.conformance.conftest import Outcome, run_suite, run_suites
from tests.conformance.honest import cloudnexus_com, cloudnexus_io, nexos, nurosentrix_a, nurosentrix_b
from tests.conformance.honest.common import serve

BACKENDS: dict[str, tuple[ModuleType, str, str]] = {
    "nurosentrix_a": (nurosentrix_a, "nurosentrix", "/api/v1"),
    "nurosentrix_b": (nurosentrix_b, "nurosentrix", "/api/v1"),
    "cloudnexus_com": (cloudnexus_com, "cloudnexus", "/v1"),
    "cloudnexus_io": (cloudnexus_io, "cloudnexus-io", "/v1"),
    "nexos": (nexos, "nexos", "/api"),
}
# defect -> (backend, the check that must fail, extra options)
DEFECTS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "readonly-can-delete": ("nurosentrix_a", "scopes", ()),
    "total-counts-other-accounts": ("cloudnexus_io", "tenancy", ()),
    "cross-account-restore": ("nurosentrix_a", "tenancy", ()),
    "ignored-filter": ("cloudnexus_com", "filters", ()),
    "enum-500": ("nurosentrix_b", "not_a_server_error", ()),
}


def _args(name: str, url: str, app: object) -> tuple[str, ...]:
    _, api, base = BACKENDS[name]
    tokens = app.state.backend.test_tokens()  # type: ignore[attr-defined]
    return (
        "--api", api, "--base-url", url + base, "--token", tokens.full,
        "--limited-token", tokens.limited, "--other-token", tokens.other, "--max-examples", "3",
    )  # fmt: skip


def _app(name: str, defect: str | None = None) -> object:
    module = BACKENDS[name][0]
    return module.make_app(window=2.0, delay=1.0, defect=defect)


@pytest.fixture(scope="module")
def honest_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """One default run (every family and Schemathesis phase) against each honest backend."""
    with ExitStack() as stack:
        runs = {}
        for name in BACKENDS:
            app = _app(name)
            url = stack.enter_context(serve(app))
            runs[name] = _args(name, url, app)
        return run_suites(tmp_path_factory.mktemp("honest"), runs, timeout=600)


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_an_honest_backend_passes_the_default_profile(name: str, honest_runs: dict[str, Outcome]) -> None:
    out = honest_runs[name]
    assert out.code == 0, out
    assert "profile: documented" in out.stdout and "RESULT: no violation" in out.stdout
    # where it chose otherwise than the sandbox, it is told so, apart
    assert "Differs from the sandbox's choice (not a failure)" in out.stdout, out


def test_an_honest_backend_fails_the_strict_profile(tmp_path: Path) -> None:
    """The strict profile holds a backend to every choice of the sandbox: these chose otherwise."""
    app = _app("nurosentrix_b")
    with serve(app) as url:
        args = _args("nurosentrix_b", url, app)
        out = run_suite(tmp_path, *args, "--profile", "strict", "--phases", "none")
    assert out.code == 1 and "profile: strict" in out.stdout, out


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_each_planted_defect_fails_the_default_profile(defect: str, tmp_path: Path) -> None:
    name, check, extra = DEFECTS[defect]
    app = _app(name, defect)
    with serve(app) as url:
        out = run_suite(tmp_path, *_args(name, url, app), "--phases", "none", *extra)
    assert out.code == 1, out
    assert check in out.failing, f"{defect}: expected {check} among {out.failing}\n{out}"
