"""Every check has been seen failing: each broken backend makes the suite exit 1 and name the
check that catches it; the clean sandbox passes with exit 0."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tests.conformance.backends import DEFECTS
from tests.conformance.conftest import APIS, Outcome

# defect → (API, options selecting only what is needed to catch it, checks that must be named)
CASES: dict[str, tuple[str, list[str], set[str]]] = {
    "no-auth": ("cloudnexus", ["--checks", "auth", "--phases", "examples"], {"auth", "ignored_auth"}),
    # Nurosentrix: its document names the scopes (CloudNexus' scope names are the sandbox's choice)
    "scopes-ignored": ("nurosentrix", ["--checks", "scopes", "--phases", "none"], {"scopes"}),
    "wrong-envelope": ("cloudnexus", ["--checks", "envelope", "--phases", "examples"], {"envelope"}),
    "wrong-status": ("cloudnexus", ["--checks", "none", "--phases", "examples"], {"status_code_conformance"}),
    "lost-after-create": ("cloudnexus", ["--checks", "lifecycle", "--phases", "none"], {"lifecycle"}),
    "wrong-totals": ("nurosentrix", ["--checks", "pagination", "--phases", "none"], {"pagination"}),
    "server-error": ("cloudnexus", ["--checks", "none", "--phases", "examples"], {"not_a_server_error"}),
    "invalid-accepted": (
        "cloudnexus-io",
        ["--checks", "none", "--phases", "coverage"],
        {"negative_data_rejection"},
    ),
    "cross-account-leak": ("cloudnexus", ["--checks", "tenancy", "--phases", "none"], {"tenancy"}),
    # The documents name no rate-limit header: only the strict profile (the sandbox's own choices)
    # may fail a backend for lacking them; the default one reports it apart.
    "no-rate-limit-headers": (
        "cloudnexus",
        ["--checks", "ratelimit", "--phases", "none", "--profile", "strict"],
        {"ratelimit"},
    ),
}


def test_every_defect_has_a_case() -> None:
    assert set(CASES) == set(DEFECTS)


@pytest.mark.parametrize("defect", sorted(CASES))
def test_broken_backend_is_caught(
    defect: str, broken: Callable[..., str], suite: Callable[..., Outcome]
) -> None:
    api, options, expected = CASES[defect]
    url = broken(defect)
    out = suite("--api", api, "--sandbox", url, "--max-examples", "3", *options)
    assert out.code == 1, out
    assert expected <= out.failing, f"expected {expected} among failing checks {out.failing}\n{out}"
    assert "curl " in out.stdout, out  # each violation comes with a reproducing request


@pytest.mark.parametrize("profile", ["documented", "strict"])
@pytest.mark.parametrize("api", APIS)
def test_clean_sandbox_passes_everything(api: str, profile: str, clean_runs: dict[str, Outcome]) -> None:
    """One full run (every family, every Schemathesis phase) per API and profile: exit 0. The
    sandbox makes every choice of its spec, so it passes the strict profile too."""
    out = clean_runs[api if profile == "documented" else f"{api}:strict"]
    assert f"profile: {profile}" in out.stdout
    # every operation's success path was exercised (a 2xx, or its documented redirect)
    assert "Success path not exercised" not in out.stdout, out
    assert re.search(r"records: created \d+, deleted (\d+), left 0", out.stdout), out
    assert out.code == 0, out
    assert out.failing == set(), out
    assert "RESULT: no violation" in out.stdout
    suites = {s.get("name", "").split(".", 1)[-1] for s in out.junit.iter("testsuite")}
    assert {"envelope", "auth", "ratelimit", "not_a_server_error", "use_after_free"} <= suites, suites
    # the minted live-mode token drives the modes family; Nexos' webhook events are delivered
    assert "modes" in suites and "modes" not in out.skipped, out
    assert api != "nexos" or ("events" in suites and "events" not in out.skipped), out
