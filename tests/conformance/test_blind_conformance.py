"""The suite against backends written blind, from the vendor documents alone
(`tests/conformance/blind/`, never `specs/` or the suites): the default profile (documented)
passes each of them, so nothing it enforces is a choice the documents do not state, and each
planted defect it can see fails it by the exit code, naming its check (issue 32). Backends on the
real clock with 2 s rate-limit windows and 1 s asynchronous work, so a run takes seconds.

Defects the default profile misses (the catalogue work must close them) are listed in
`MISSED` with why, so the table stays honest: a newly caught one moves to `CAUGHT`."""

from __future__ import annotations

from contextlib import ExitStack
from types import ModuleType

import pytest

from conformance.checks import ORDER
from tests.conformance.backends import serve
from tests.conformance.blind import cloudnexus_com, cloudnexus_io, nexos, nurosentrix
from tests.conformance.conftest import Outcome, run_suites

pytestmark = pytest.mark.timeout(1200)  # several full runs at once on a shared machine

BACKENDS: dict[str, tuple[ModuleType, str, str]] = {
    "nurosentrix": (nurosentrix, "nurosentrix", "/api/v1"),
    "cloudnexus_com": (cloudnexus_com, "cloudnexus", "/v1"),
    "cloudnexus_io": (cloudnexus_io, "cloudnexus-io", "/v1"),
    "nexos": (nexos, "nexos", "/api"),
}
# Nurosentrix' documented 100/min is served here over the tests' 2 s window, which the backend does
# not announce (no RateLimit headers: the document names none), so the suite reads 60 s and a burst
# that crosses a 2 s window is all accepted: the rate-limit family is left out of its runs (the
# load/ verifier judges the limiter; a defect about limits is listed in MISSED).
_NO_RATELIMIT_CHECKS = ("--checks", ",".join(c for c in ORDER if c != "ratelimit"))
_NO_RATELIMIT = ("--phases", "none", *_NO_RATELIMIT_CHECKS)
DEFAULT_RUN: dict[str, tuple[str, ...]] = {"nurosentrix": _NO_RATELIMIT_CHECKS}
_DOMAIN = ("--phases", "none")
_SCHEMATHESIS = ("--phases", "examples,coverage", "--checks", "none")
# "backend:defect" -> (the check that must fail, the options of its run)
CAUGHT: dict[str, tuple[str, tuple[str, ...]]] = {
    "nurosentrix:cross_account_read": ("tenancy", _NO_RATELIMIT),
    "nurosentrix:cross_account_restore": ("tenancy", _NO_RATELIMIT),
    "nurosentrix:cross_account_subresources": ("tenancy", _NO_RATELIMIT),
    "nurosentrix:readonly_can_write": ("scopes", _NO_RATELIMIT),
    "nurosentrix:forbidden_wrong_body": ("scopes", _NO_RATELIMIT),
    "nurosentrix:status_filter_ignored": ("filters", _NO_RATELIMIT),
    "nurosentrix:pagination_total_wrong": ("pagination", _NO_RATELIMIT),
    "nurosentrix:non_ascii_500": ("not_a_server_error", _NO_RATELIMIT),
    "nurosentrix:error_envelope_wrong": ("envelope", _NO_RATELIMIT),
    "nurosentrix:clone_password_missing": ("generated", _NO_RATELIMIT),
    "nurosentrix:clone_incomplete_backup": ("requires", _NO_RATELIMIT),
    "cloudnexus_com:unknown_key_accepted": ("auth", _DOMAIN),
    "cloudnexus_com:unauthorized_is_403": ("auth", _DOMAIN),
    "cloudnexus_com:envelope_status_wrong": ("envelope", _DOMAIN),
    "cloudnexus_com:meta_missing": ("envelope", _DOMAIN),
    "cloudnexus_com:status_filter_ignored": ("filters", _DOMAIN),
    "cloudnexus_com:image_default_wrong": ("defaults", _DOMAIN),
    "cloudnexus_com:non_ascii_500": ("not_a_server_error", _DOMAIN),
    "cloudnexus_com:plan_optional": ("negative_data_rejection", _SCHEMATHESIS),
    "cloudnexus_com:create_status_200": ("status_code_conformance", _SCHEMATHESIS),
    "cloudnexus_io:no_auth_required": ("auth", _DOMAIN),
    "cloudnexus_io:error_shape_flat": ("envelope", _DOMAIN),
    "cloudnexus_io:cross_account_visible": ("tenancy", _DOMAIN),
    "cloudnexus_io:region_filter_ignored": ("filters", _DOMAIN),
    "cloudnexus_io:image_no_default": ("defaults", _DOMAIN),
    "cloudnexus_io:pagination_ignored": ("pagination", _DOMAIN),
    "cloudnexus_io:offset_off_by_one": ("pagination", _DOMAIN),
    "cloudnexus_io:default_limit_wrong": ("pagination", _DOMAIN),
    "cloudnexus_io:meta_total_page": ("pagination", _DOMAIN),
    "cloudnexus_io:non_ascii_500": ("not_a_server_error", _DOMAIN),
    "cloudnexus_io:plan_optional": ("negative_data_rejection", _SCHEMATHESIS),
    "cloudnexus_io:plan_enum_unchecked": ("negative_data_rejection", _SCHEMATHESIS),
    "cloudnexus_io:regions_shape": ("response_schema_conformance", _SCHEMATHESIS),
    "nexos:no_auth_required": ("auth", _DOMAIN),
    "nexos:cross_account_project": ("tenancy", _DOMAIN),
    "nexos:cross_account_subresources": ("tenancy", _DOMAIN),
    "nexos:revoked_key_works": ("credentials", _DOMAIN),
    "nexos:key_no_prefix": ("credentials", _DOMAIN),
    "nexos:api_keys_list_unmasked": ("credentials", _DOMAIN),
    "nexos:env_values_clear": ("credentials", _DOMAIN),
    "nexos:project_delete_keeps_envs": ("cascade", _DOMAIN),
    "nexos:quota_not_updated": ("quota", _DOMAIN),
    "nexos:project_quota_unenforced": ("quota", _DOMAIN),
}
# "backend:defect" -> why the default profile misses it: the words of the document that state the
# behaviour (catalogue work, issue 32 items 1-2, must close these), or why nothing documented is broken
MISSED: dict[str, str] = {
    "nurosentrix:revoked_token_works": "001 'Revoked tokens are immediately invalidated': no API revokes "
    "a token, and the suite is given none (a --revoked-token option would make it observable)",
    "nurosentrix:unauthorized_wrong_body": "001 '401 ... Returned when no token is provided or the token is "
    "invalid: {... code: UNAUTHORIZED ...}': the documented profile takes example codes as illustrations",
    "nurosentrix:test_token_not_sandboxed": "001 'Test tokens ... operate in a sandboxed environment': the "
    "suite is given no live token of the same account",
    "nurosentrix:login_any_password": "001 'POST /auth/login {email, password}': the suite has no wrong "
    "password to try (--login-email only)",
    "nurosentrix:per_page_uncapped": "000 'per_page ... (default: 20, max: 100)': needs more than 100 "
    "records to see a page above the maximum",
    "nurosentrix:provisioning_never_completes": "000 shows status active/provisioning; no document states "
    "that provisioning ends (the spec's lifecycle is inferred)",
    "nurosentrix:backup_never_completes": "000 'Creates a new instance from a completed backup': when a "
    "backup completes is not stated (inferred lifecycle)",
    "nurosentrix:rate_limit_10pct_over": "000 '100 requests per minute': the tests' 2 s window is not "
    "announced to the suite; the load/ verifier's to judge",
    "nurosentrix:create_limit_missing": "000 'Create/Delete operations | 20 requests per minute': as above",
    "nurosentrix:retry_after_short": "000 states no Retry-After; as above",
    "nurosentrix:server_name_optional": "not a broken promise: 000 shows a create body example and never "
    "says which fields are required (the spec's `required` is inferred)",
    "cloudnexus_com:cross_account_read": "GET /servers/{id} is not in 002 (x-inferred): findings on it are "
    "reported apart; 002 says only 'servers associated with your account' of the list",
    "cloudnexus_com:cross_account_delete": "DELETE /databases/{id} is not in 002 (x-inferred): as above",
    "cloudnexus_com:readonly_can_write": "002 '403 Forbidden | Insufficient permissions for this action' "
    "names no permission: the scopes are the sandbox's (x-inferred)",
    "cloudnexus_com:created_active": "002 'The server will be provisioned asynchronously': not declared "
    "(the lifecycle is inferred; catalogue)",
    "cloudnexus_com:never_provisions": "002 'provisioned asynchronously' states no end: as above",
    "cloudnexus_com:per_page_max_ignored": "002 'per_page ... Default: 20, Max: 100': needs more than 100 "
    "records",
    "cloudnexus_com:default_per_page_wrong": "002 'Default: 20': needs more than 20 records (002 shows no "
    "list meta to read the page size from)",
    "cloudnexus_com:pagination_total_wrong": "not a broken promise: 002 shows no list total (meta.pagination "
    "is the backend's own)",
    "cloudnexus_com:validation_is_422": "002 '400 | Bad Request | Missing or invalid parameters': the "
    "documented view accepts any 4xx for a refusal (the table is read as not closed)",
    "cloudnexus_com:rate_limit_10pct_over": "002 states no number ('429 ... Rate limit exceeded')",
    "cloudnexus_com:retry_after_short": "002 states no Retry-After",
    "cloudnexus_com:engine_unchecked": "002 'Provision and manage PostgreSQL, MySQL, Redis, and MongoDB "
    "instances': the engine enum is not enforced by the documented view",
    "cloudnexus_io:limit_max_ignored": "003 'limit ... (default: 20, max: 100)': needs more than 100 records",
    "cloudnexus_io:never_running": "003 lists statuses (pending ... running) but no transition (inferred)",
    "nexos:restart_alias_missing": "004 'Rebuild environment from the latest commit (alias: /restart)': "
    "no environment action succeeds in a run (success path not exercised), and none is declared",
    "nexos:resume_rebuilds": "004 'Start previously-paused containers (no rebuild)': as above",
    "nexos:pause_keeps_shared_services": "004 'also stops shared Postgres/Redis when this is the last "
    "active environment': as above",
    "nexos:pause_stops_shared_early": "004 pause: as above",
    "nexos:reset_keeps_data": "004 'Reset the environment's database to an empty state': as above",
    "nexos:webhook_signature_unchecked": "004 'GitHub webhook receiver (push and delete events)' says "
    "nothing of signatures; the suite signs its deliveries (x-signature) but sends no unsigned one",
    "nexos:node_delete_noop": "004 'DELETE | /nodes/:id | Remove a node from the network': no node "
    "registers without a join token exchange the suite does not perform",
}
BATCH = 6  # defect runs at once (each its own backend: they share no rate-limit bucket)


def _args(name: str, url: str, app: object) -> tuple[str, ...]:
    _, api, base = BACKENDS[name]
    tokens = app.state.backend.test_tokens()  # type: ignore[attr-defined]
    return (
        "--api", api, "--base-url", url + base, "--token", tokens.full,
        "--limited-token", tokens.limited, "--other-token", tokens.other, "--max-examples", "3",
    )  # fmt: skip


def _app(name: str, defect: str | None = None) -> object:
    return BACKENDS[name][0].make_app(window=2.0, delay=1.0, defect=defect)


@pytest.fixture(scope="module")
def blind_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """One default run (every family and Schemathesis phase) against each blind backend, at once."""
    with ExitStack() as stack:
        runs = {}
        for name in BACKENDS:
            app = _app(name)
            url = stack.enter_context(serve(app))
            runs[name] = (*_args(name, url, app), *DEFAULT_RUN.get(name, ()))
        return run_suites(tmp_path_factory.mktemp("blind"), runs, timeout=900)


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_a_blind_backend_passes_the_default_profile(name: str, blind_runs: dict[str, Outcome]) -> None:
    out = blind_runs[name]
    assert out.code == 0, out
    assert "profile: documented" in out.stdout and "RESULT: no violation" in out.stdout
    # where it chose otherwise than the sandbox (error bodies, list meta, a framework's 405), apart
    assert "Differs from the sandbox's choice (not a failure)" in out.stdout, out


def test_every_planted_defect_is_caught_or_listed_as_missed() -> None:
    planted = {f"{name}:{d}" for name, (module, _, _) in BACKENDS.items() for d in module.DEFECTS}
    assert not set(CAUGHT) & set(MISSED)
    assert set(CAUGHT) | set(MISSED) == planted, sorted(planted ^ (set(CAUGHT) | set(MISSED)))


@pytest.fixture(scope="module")
def defect_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """One run per caught defect, `BATCH` at a time."""
    outcomes: dict[str, Outcome] = {}
    keys = sorted(CAUGHT)
    for start in range(0, len(keys), BATCH):
        with ExitStack() as stack:
            runs = {}
            for key in keys[start : start + BATCH]:
                name, defect = key.split(":", 1)
                app = _app(name, defect)
                url = stack.enter_context(serve(app))
                runs[key] = (*_args(name, url, app), *CAUGHT[key][1])
            done = run_suites(tmp_path_factory.mktemp("defects"), runs, timeout=600)
            outcomes.update(done)
    return outcomes


@pytest.mark.parametrize("key", sorted(CAUGHT))
def test_each_caught_defect_fails_the_default_profile(key: str, defect_runs: dict[str, Outcome]) -> None:
    out = defect_runs[key]
    check = CAUGHT[key][0]
    assert out.code == 1, out
    assert check in out.failing, f"{key}: expected {check} among {out.failing}\n{out}"
