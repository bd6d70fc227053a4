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
DEFAULT_RUN: dict[str, tuple[str, ...]] = {"nurosentrix": _NO_RATELIMIT_CHECKS}
# Schemathesis' own checks and the phase that shows each; every other check is a family run alone
# (`not_a_server_error`: the inputs family's probes), so a defect's run costs seconds.
_SCHEMATHESIS = {
    "negative_data_rejection": "coverage",
    "status_code_conformance": "examples",
    "response_schema_conformance": "coverage",
    "content_type_conformance": "coverage",
}
_FAMILY_OF = {"not_a_server_error": "inputs"}


def narrowed(check: str) -> tuple[str, ...]:
    """The options of a run that can show `check` fail, and nothing else."""
    if check in _SCHEMATHESIS:
        return ("--phases", _SCHEMATHESIS[check], "--checks", "none", "--no-success-paths")
    return ("--phases", "none", "--checks", _FAMILY_OF.get(check, check), "--no-success-paths")


# options a defect's run needs beyond `narrowed`: 002 shows no list meta echoing per_page, so only a
# list of 101 records shows the cap (--fill-to-max, off by default: costly against a real backend)
OPTIONS: dict[str, tuple[str, ...]] = {"cloudnexus_com:per_page_max_ignored": ("--fill-to-max",)}
# "backend:defect" -> the check that must fail (in a run of that check alone: `narrowed`)
CAUGHT: dict[str, str] = {
    "nurosentrix:cross_account_read": "tenancy",
    "nurosentrix:cross_account_restore": "tenancy",
    "nurosentrix:cross_account_subresources": "tenancy",
    "nurosentrix:readonly_can_write": "scopes",
    "nurosentrix:forbidden_wrong_body": "scopes",
    "nurosentrix:status_filter_ignored": "filters",
    "nurosentrix:pagination_total_wrong": "pagination",
    "nurosentrix:per_page_uncapped": "pagination",
    "nurosentrix:backup_never_completes": "settles",
    "nurosentrix:non_ascii_500": "not_a_server_error",
    "nurosentrix:error_envelope_wrong": "envelope",
    "nurosentrix:clone_password_missing": "generated",
    "nurosentrix:clone_incomplete_backup": "requires",
    "nurosentrix:no_auth_required": "auth",
    "nurosentrix:revoked_token_works": "auth",
    "nurosentrix:unauthorized_wrong_body": "auth",
    "nurosentrix:forbidden_wrong_code": "scopes",
    "nurosentrix:login_any_password": "auth",
    "nurosentrix:test_token_not_sandboxed": "modes",
    "cloudnexus_com:unknown_key_accepted": "auth",
    "cloudnexus_com:unauthorized_is_403": "auth",
    "cloudnexus_com:envelope_status_wrong": "envelope",
    "cloudnexus_com:meta_missing": "envelope",
    "cloudnexus_com:status_filter_ignored": "filters",
    "cloudnexus_com:image_default_wrong": "defaults",
    "cloudnexus_com:non_ascii_500": "not_a_server_error",
    "cloudnexus_com:plan_optional": "negative_data_rejection",
    "cloudnexus_com:create_status_200": "status_code_conformance",
    "cloudnexus_com:cross_account_list": "tenancy",
    "cloudnexus_com:engine_unchecked": "negative_data_rejection",
    "cloudnexus_com:validation_is_422": "negative_data_rejection",
    "cloudnexus_com:full_key_forbidden": "statuses",
    "cloudnexus_com:unknown_id_found": "statuses",
    "cloudnexus_com:default_per_page_wrong": "pagination",
    "cloudnexus_com:page_ignored": "pagination",
    "cloudnexus_com:per_page_max_ignored": "pagination",  # with --fill-to-max (OPTIONS)
    "cloudnexus_com:never_provisions": "settles",
    "cloudnexus_io:no_auth_required": "auth",
    "cloudnexus_io:error_shape_flat": "envelope",
    "cloudnexus_io:cross_account_visible": "tenancy",
    "cloudnexus_io:region_filter_ignored": "filters",
    "cloudnexus_io:image_no_default": "defaults",
    "cloudnexus_io:pagination_ignored": "pagination",
    "cloudnexus_io:offset_off_by_one": "pagination",
    "cloudnexus_io:default_limit_wrong": "pagination",
    "cloudnexus_io:meta_total_page": "pagination",
    "cloudnexus_io:limit_max_ignored": "pagination",
    "cloudnexus_io:never_running": "settles",
    "cloudnexus_io:non_ascii_500": "not_a_server_error",
    "cloudnexus_io:plan_optional": "negative_data_rejection",
    "cloudnexus_io:plan_enum_unchecked": "negative_data_rejection",
    "cloudnexus_io:regions_shape": "response_schema_conformance",
    "nexos:no_auth_required": "auth",
    "nexos:cross_account_project": "tenancy",
    "nexos:cross_account_subresources": "tenancy",
    "nexos:revoked_key_works": "credentials",
    "nexos:key_no_prefix": "credentials",
    "nexos:api_keys_list_unmasked": "credentials",
    "nexos:env_values_clear": "credentials",
    "nexos:project_delete_keeps_envs": "cascade",
    "nexos:quota_not_updated": "quota",
    "nexos:env_var_put_duplicates": "upsert",
    "nexos:me_first_user": "identity",
    "nexos:project_quota_unenforced": "quota",
    "nexos:nodes_text_plain": "content_type_conformance",
    "nurosentrix:server_status_running": "response_schema_conformance",
    "nurosentrix:stop_keeps_running": "actions",
    "nexos:pause_keeps_running": "actions",
    "nexos:destroy_keeps_environment": "actions",
    "nexos:resume_rebuilds": "actions",
    "nexos:restart_alias_missing": "actions",
    "nexos:webhook_delete_ignored": "events",
}
# "backend:defect" -> why the default profile misses it: the words of the document that state the
# behaviour (catalogue work, issue 32 items 1-2, must close these), or why nothing documented is broken
MISSED: dict[str, str] = {
    "nurosentrix:content_type_any": "000 'Content-Type ... Must be application/json' is the client's duty; "
    "a server that reads any body as JSON is honest too (x-sandbox.media-inferred: strict profile only)",
    "nurosentrix:provisioning_never_completes": "000 shows status active/provisioning; no document states "
    "that provisioning ends (lifecycle.settles is inferred: the strict profile's settles catches it)",
    "nurosentrix:rate_limit_10pct_over": "000 '100 requests per minute': the tests' 2 s window is not "
    "announced to the suite; the load/ verifier, told it, catches it only by chance on so short a "
    "window (tests/load/test_blind_ratelimit.py UNSURE)",
    "nurosentrix:create_limit_missing": "000 'Create/Delete operations | 20 requests per minute': the "
    "window is not announced; the load/ verifier catches it (tests/load/test_blind_ratelimit.py)",
    "nurosentrix:retry_after_short": "000 states no Retry-After; as above",
    "nurosentrix:server_name_optional": "not a broken promise: 000 shows a create body example and never "
    "says which fields are required (the spec's `required` is inferred)",
    "cloudnexus_com:cross_account_read": "GET /servers/{id} is not in 002 (x-inferred): findings on it are "
    "reported apart; 002 says only 'servers associated with your account' of the list",
    "cloudnexus_com:cross_account_delete": "DELETE /databases/{id} is not in 002 (x-inferred): as above",
    "cloudnexus_com:readonly_can_write": "002 '403 Forbidden | Insufficient permissions for this action' "
    "names no permission: the scopes are the sandbox's (x-inferred)",
    "cloudnexus_com:created_active": "002 'The server will be provisioned asynchronously': not a broken "
    "promise a client can see: a fast asynchronous provisioning may end before the answer (the 201 "
    "example's provisioning is an illustration); the strict profile's settles catches it",
    "cloudnexus_com:pagination_total_wrong": "not a broken promise: 002 shows no list total (meta.pagination "
    "is the backend's own)",
    "cloudnexus_com:rate_limit_10pct_over": "002 states no number ('429 ... Rate limit exceeded')",
    "cloudnexus_com:retry_after_short": "002 states no Retry-After",
    "nexos:pause_keeps_shared_services": "004 'also stops shared Postgres/Redis when this is the last "
    "active environment': no documented field shows the shared services' state (x-action declares the "
    "environment's own status only)",
    "nexos:pause_stops_shared_early": "004 pause: as above",
    "nexos:reset_keeps_data": "004 'Reset the environment's database to an empty state': no documented "
    "field shows the database's contents (the reset itself is declared and performed: x-action)",
    "nexos:webhook_signature_unchecked": "not a broken promise: 004 'GitHub webhook receiver (push and "
    "delete events)' states no signature, so an unsigned delivery is not refusable by contract (the "
    "sandbox's x-signature is its choice); what the events do is checked (events)",
    "nexos:node_delete_noop": "004 'DELETE | /nodes/:id | Remove a node from the network': not observable, "
    "a node appears only when a machine runs the agent with a join token; 004 names no endpoint taking one "
    "(the sandbox's POST /nodes/register is x-inferred)",
}
PARALLEL = 8  # defect runs at once: most of a narrowed run is waiting (settling, a paced budget)


def _args(name: str, url: str, app: object) -> tuple[str, ...]:
    _, api, base = BACKENDS[name]
    backend = app.state.backend  # type: ignore[attr-defined]
    tokens = backend.test_tokens()
    if name == "nurosentrix":  # documented test mode, revocation and login: their tokens and user
        revoked = backend.create_token("acc_alpha")
        backend.revoke_token(revoked)
        full = ("--token", tokens.test, "--live-token", tokens.full, "--revoked-token", revoked,
                "--login-email", tokens.email)  # fmt: skip
    elif name == "nexos":  # the secret its GitHub webhook is configured with (004 names none)
        full = ("--token", tokens.full, "--webhook-secret", backend.webhook_secret)
    else:
        full = ("--token", tokens.full)
    return (
        "--api", api, "--base-url", url + base, *full,
        "--limited-token", tokens.limited, "--other-token", tokens.other, "--max-examples", "3",
        "--settle-timeout", "8",  # the backends' asynchronous work takes 1 s
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
    """One run per caught defect, of the check that must catch it alone (`narrowed`), `PARALLEL`
    at a time, each against its own backend (they share no rate-limit bucket)."""
    with ExitStack() as stack:
        runs = {}
        for key in sorted(CAUGHT, key=lambda k: (CAUGHT[k] not in _SCHEMATHESIS, k)):  # longest first
            name, defect = key.split(":", 1)
            app = _app(name, defect)
            url = stack.enter_context(serve(app))
            runs[key] = (*_args(name, url, app), *narrowed(CAUGHT[key]), *OPTIONS.get(key, ()))
        return run_suites(tmp_path_factory.mktemp("defects"), runs, timeout=600, parallel=PARALLEL)


@pytest.mark.parametrize("key", sorted(CAUGHT))
def test_each_caught_defect_fails_the_default_profile(key: str, defect_runs: dict[str, Outcome]) -> None:
    out = defect_runs[key]
    check = CAUGHT[key]
    assert out.code == 1, out
    assert check in out.failing, f"{key}: expected {check} among {out.failing}\n{out}"
