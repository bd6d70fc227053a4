"""Units of the documented-behaviour probes of issue 32 (the blind runs prove each fails a backend):
`x-stated-code` (a 401 body the document states), `x-events` (what a webhook delivery does), the
`--revoked-token` / `--live-token` options and the `modes` family's reach."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import contract
from conformance.checks.modes import _applies
from conformance.cli import build_parser
from conformance.runner import Options, Runner


def _edited(tmp_path: Path, api: str, old: str, new: str) -> Path:
    text = (contract.SPECS_DIR / f"{api}.yaml").read_text()
    assert old in text
    path = tmp_path / f"{api}.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


def test_a_stated_error_code_is_kept_by_the_documented_view_and_only_there() -> None:
    full = contract.load("nurosentrix")
    view = full.documented
    servers = view.by_id("listServers")
    assert view.codes_for(servers, 401) == {"UNAUTHORIZED"}  # 001 states that very body for 401
    assert view.codes_for(servers, 403) == {"FORBIDDEN"}  # and that very body for 403
    assert view.codes_for(servers, 404) == frozenset()  # an example elsewhere still illustrates
    assert view.codes_for(view.by_id("login"), 401) == frozenset()  # the failed login is inferred
    assert full.codes_for(full.by_id("listServers"), 403) == {"FORBIDDEN"}  # strict: every example
    for api in ("cloudnexus", "cloudnexus-io", "nexos"):  # no document states an error body
        other = contract.load(api).documented
        assert all(not other.codes_for(op, 401) for op in other.operations), api


def test_a_stated_code_on_an_undocumented_or_success_response_is_a_load_error(tmp_path: Path) -> None:
    old = "      x-stated-code: true"
    path = _edited(tmp_path, "nurosentrix", old, "      x-stated-code: yes-please")
    with pytest.raises(contract.SpecError, match="x-stated-code must be true or false"):
        contract.load_path(path)
    text = path.read_text().replace("      x-stated-code: yes-please\n", "")
    path.write_text(
        text.replace(
            "          description: Logged in.\n",
            "          description: Logged in.\n          x-stated-code: true\n",
            1,
        )
    )
    with pytest.raises(contract.SpecError, match=re.escape("x-stated-code needs a documented error status")):
        contract.load_path(path)


def test_webhook_events_are_decoded_with_their_example_bodies(tmp_path: Path) -> None:
    op = contract.load("nexos").by_id("receiveGithubWebhook")
    assert op is not None
    assert [(e.example, e.effect, e.collection) for e in op.events] == [
        ("push", "makes", "environments"),
        ("delete", "removes", "environments"),
    ]
    push, delete = (e.body for e in op.events)
    assert push["ref"] == "refs/heads/" + delete["ref"]  # the same branch: made, then removed
    path = _edited(tmp_path, "nexos", "delete: {removes: environments}", "gone: {removes: environments}")
    with pytest.raises(
        contract.SpecError, match=re.escape("x-events.gone: no request body example named gone")
    ):
        contract.load_path(path)
    path = _edited(tmp_path, "nexos", "push: {makes: environments}", "push: {makes: environmentz}")
    with pytest.raises(contract.SpecError, match="unknown resource environmentz"):
        contract.load_path(path)


def test_modes_apply_where_a_spec_has_two_prefixes_and_are_inferred_where_undocumented() -> None:
    nuro, nexos = contract.load("nurosentrix"), contract.load("nexos")
    assert _applies(nuro) is None and _applies(nexos) is None
    assert not nuro.modes_provenance.inferred  # 001: "Test tokens ... operate in a sandboxed environment"
    assert all(contract.load(a).modes_provenance.inferred for a in ("cloudnexus", "cloudnexus-io", "nexos"))


def test_revoked_and_live_tokens_come_from_flags_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFORMANCE_REVOKED_TOKEN", "nsx_test_revoked")
    monkeypatch.setenv("CONFORMANCE_LIVE_TOKEN", "nsx_live_same")
    args = build_parser().parse_args(["run", "--api", "nurosentrix"])
    assert (args.revoked_token, args.live_token) == ("nsx_test_revoked", "nsx_live_same")
    args = build_parser().parse_args(["run", "--api", "nurosentrix", "--live-token", "nsx_live_flag"])
    assert args.live_token == "nsx_live_flag"
    options = Options(api="nurosentrix", base_url="http://127.0.0.1:9/api/v1", token="nsx_test_full",
                      revoked_token="nsx_test_revoked", live_token="nsx_live_same")  # fmt: skip
    _, tokens, _ = Runner(options).prepare()
    assert (tokens.revoked, tokens.live) == ("nsx_test_revoked", "nsx_live_same")
    assert tokens.as_dict()["live"] == "nsx_live_same"  # the client can send it; reports hide it
    shown = Runner(options)._secrets(tokens)
    assert shown["nsx_live_same"] == "$CONFORMANCE_LIVE_TOKEN"
    assert shown["nsx_test_revoked"] == "$CONFORMANCE_REVOKED_TOKEN"
