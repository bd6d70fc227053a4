"""Units of the CI-facing parts: record tracking and cleanup order, stand-in ids, durations, the
plain progress lines, the HTML report's structure and the incomplete JUnit."""

from __future__ import annotations

import argparse
import html
import io
import json
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from conformance.budget import Budget, Interrupted
from conformance.cleanup import Tracker
from conformance.cli import _duration
from conformance.progress import Progress
from conformance.report import html_report, junit, summary
from conformance.results import Results
from contract import load


def _body(data: dict[str, Any]) -> bytes:
    return json.dumps({"data": data}).encode()


def test_records_from_any_create_are_tracked_and_deleted_children_first() -> None:
    c = load("nurosentrix")
    t = Tracker(c, {"token": "T", "other": "O"})
    create = c.by_id("createServer")
    t.seen(create, "POST", 201, _body({"id": "srv_1"}), "token", {}, "schemathesis")
    inst = c.by_id("createInstance")
    t.seen(inst, "POST", 201, _body({"id": "inst_1", "server_id": "srv_1"}), "other", {})
    clone = c.op("post", "/instances/{id}/clone")
    t.seen(clone, "POST", 201, _body({"id": "inst_2"}), "token", {"id": "inst_1"})  # by its prefix
    action = c.op("post", "/instances/{id}/actions")
    t.seen(action, "POST", 200, _body({"id": "inst_1"}), "token", {"id": "inst_1"})  # not a new record
    backup = c.op("post", "/instances/{id}/backups")
    t.seen(backup, "POST", 201, _body({"id": "bkp_1", "instance_id": "inst_1"}), "token", {"id": "inst_1"})
    t.seen(create, "POST", 400, b'{"error": {}}', "token", {})
    assert [(r.collection, r.id, r.owner) for r in t.records.values()] == [
        ("servers", "srv_1", "token"),
        ("instances", "inst_1", "other"),
        ("instances", "inst_2", "token"),
        ("backups", "bkp_1", "token"),
    ]
    assert [r.id for r in t.pending()] == ["bkp_1", "inst_2", "inst_1", "srv_1"]  # children first
    t.seen(c.by_id("deleteInstance"), "DELETE", 204, b"", "token", {"id": "inst_2"})
    assert [r.id for r in t.pending()] == ["bkp_1", "inst_1", "srv_1"]
    assert t.summary() == "created 4, deleted 1, left 3 (1 backups: not deleted; 1 instances: not deleted; " \
        "1 servers: not deleted)"  # fmt: skip


def test_a_key_is_revoked_by_the_delete_beside_its_create() -> None:
    c = load("nexos")
    t = Tracker(c, {"token": "T"})
    t.seen(c.by_id("createApiKey"), "POST", 201, b'{"id": "key_1"}', "token", {})  # no envelope
    rec = t.records["key_1"]
    op = t._delete_op(c.resources[rec.collection], rec)
    assert op is not None and op.operation_id == "revokeApiKey"


def test_writes_to_records_the_run_did_not_create_go_to_a_stand_in() -> None:
    c = load("nurosentrix")
    t = Tracker(c, {"token": "T"})
    t.seen(c.by_id("listServers"), "GET", 200, json.dumps({"data": [{"id": "srv_theirs"}]}).encode(), "token")
    t.seen(c.by_id("createServer"), "POST", 201, _body({"id": "srv_mine"}), "token", {})
    t.seen(c.by_id("getServer"), "GET", 200, _body({"id": "srv_mine"}), "token", {"id": "srv_mine"})
    theirs, mine, unknown = {"id": "srv_theirs"}, {"id": "srv_mine"}, {"id": "srv_guess"}
    assert t.spare("DELETE", theirs) == ["id"] and theirs["id"] == "srv_00000000"
    assert t.spare("DELETE", mine) == [] and mine["id"] == "srv_mine"
    assert t.spare("PATCH", unknown) == [] and t.spare("GET", {"id": "srv_theirs"}) == []
    assert t.spared == 1


def test_durations() -> None:
    assert [_duration(x) for x in ("90", "90s", "25m", "1h", "1.5m")] == [90, 90, 1500, 3600, 90]
    for bad in ("", "0", "5d", "-1m"):
        with pytest.raises(argparse.ArgumentTypeError):
            _duration(bad)


def test_a_stopped_budget_refuses_requests_and_wakes_a_sleeper() -> None:
    budget = Budget("1/h")
    budget.acquire()
    budget.interrupt("stopped by SIGTERM")
    with pytest.raises(Interrupted, match="SIGTERM"):
        budget.acquire()  # would otherwise wait an hour
    budget.resume()
    budget.windows.clear()
    budget.acquire()


def test_plain_progress_lines() -> None:
    budget = Budget("auto")
    results = Results("demo", "http://x")
    out = io.StringIO()
    progress = Progress(budget, results, ["auth", "schemathesis examples", "cleanup"], "auto", stream=out)
    assert progress.mode == "plain"  # not a terminal
    budget.section, budget.current = "schemathesis examples", "GET /things"
    budget.requests = 12
    progress.wait(34, "the write bucket")
    line = progress.status()
    assert "schemathesis examples (step 2/3)" in line and "12 requests" in line and "now GET /things" in line
    assert re.search(r"waiting 3[34]s of 34s for the write bucket", line), line
    assert "waiting 34s for the write bucket" in out.getvalue()
    off = Progress(budget, results, [], "off", stream=out)
    off.log("nothing")
    assert "nothing" not in out.getvalue()


def _results() -> Results:
    r = Results("demo", "http://x/v1", profile="documented", operations=["GET /things", "POST /things"])
    r.meta = {"date": "2026-12-01", "tool": "conformance", "spec": "Demo 1"}
    curl = "curl -H 'Authorization: Bearer SECRET' http://x"
    r.fail(
        "envelope",
        "GET /things",
        "missing <data> & more",
        key="a",
        curl=curl,
        response='HTTP 200 {"result": [1, 2]}',
    )
    r.fail("scopes", "*", "no operation refused the limited token", key="none")
    r.ok("scopes", "GET /things")
    r.success("GET /things")
    r.cleanup = "created 2, deleted 2, left 0"
    return r


def test_the_html_report_is_well_formed_and_links_every_violation() -> None:
    page = html_report(_results(), {"SECRET": "$CONFORMANCE_TOKEN"})
    assert page.startswith("<!doctype html>") and "SECRET" not in page
    root = ET.fromstring(page.removeprefix("<!doctype html>\n"))  # XHTML-style: every tag closed
    ids = [e.get("id") for e in root.iter() if e.get("id")]
    assert len(ids) == len(set(ids))
    links = [a.get("href", "")[1:] for a in root.iter("a") if a.get("class") == "to-violation"]
    assert len(links) == 2 and set(links) <= set(ids)
    assert "missing &lt;data&gt; &amp; more" in page
    assert '{\n  "result": [\n    1,' in html.unescape(page)  # pretty JSON
    assert "Bearer $CONFORMANCE_TOKEN" in page
    assert "Success path not exercised (1)" in page and "POST /things" in page
    text = summary(_results(), {})
    assert "scopes: 0 operation(s) failing, 1 passing, an API-wide finding" in text  # `*` is no operation
    assert "Success path not exercised (1)" in text


def test_an_incomplete_run_in_junit() -> None:
    r = _results()
    r.incomplete = "stopped by SIGTERM"
    root = junit(r, {}).getroot()
    assert root.get("errors") == "1"
    run = root.find("testsuite[@name='demo.run']")
    assert run is not None
    props = {p.get("name"): p.get("value") for p in run.iter("property")}
    assert props["incomplete"] == "true" and props["stopped"] == "stopped by SIGTERM"
    assert props["success-path-not-exercised"] == "POST /things"
    error = run.find("testcase/error")
    assert error is not None and error.get("type") == "incomplete"
    assert "RESULT: INCOMPLETE (stopped by SIGTERM)" in summary(r, {})
    assert "INCOMPLETE" in html_report(r, {})


def test_success_paths_read_links_logins_and_signatures_from_the_spec() -> None:
    from conformance.success import _linked_from, _pointer, _signed, is_login

    n, x = load("nurosentrix"), load("nexos")
    assert is_login(n.by_id("login")) and not is_login(n.by_id("createServer"))  # type: ignore[arg-type]
    clone = n.by_id("cloneInstance")
    assert clone is not None
    sources = {s.operation_id for s, _ in _linked_from(n, clone)}
    assert {"createInstance", "createBackup"} <= sources  # the link added for the success path
    assert _pointer({"data": {"id": "bkp_1"}}, "$response.body#/data/id") == "bkp_1"
    hook = x.by_id("receiveGithubWebhook")
    assert hook is not None
    raw, headers = _signed(hook, {"ref": "refs/heads/x"}, "whsec_k") or (b"", {})
    import hashlib
    import hmac

    assert headers == {
        "X-Hub-Signature-256": "sha256=" + hmac.new(b"whsec_k", raw, hashlib.sha256).hexdigest()
    }
    register = x.by_id("registerNode")
    assert register is not None and [s.operation_id for s, _ in _linked_from(x, register)] == [
        "createNodeJoinToken"
    ]
