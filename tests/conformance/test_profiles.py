"""The documented profile judges by what the documents say; the sandbox's inferred choices are
reported apart. Both are read from one compiled contract (`contract.documented`)."""

from __future__ import annotations

import email.utils
import json
import time
from pathlib import Path
from typing import Any

import pytest

from conformance import baseline
from conformance.budget import Budget
from conformance.report import junit, summary
from conformance.results import Results
from contract import compile_spec, documented, load
from judge.headers import reset_seconds
from judge.profile import INFERRED
from judge.response import judged_problems, rate_limit_problems
from tests.conformance.test_units import FakeTime


def _spec(**overrides: Any) -> dict[str, Any]:
    error = {"type": "object", "properties": {"code": {"type": "string", "enum": ["NOT_FOUND"]}}}
    raw: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "demo", "version": "1"},
        "x-sandbox": {
            "api": "demo",
            "token-prefixes": {"test": "demo_test_", "live": "demo_live_"},
            "rate-limits": {
                "all": {"limit": 100, "window": 60},
                "write": {"limit": 20, "window": 60, "inferred": "the document states no write limit"},
            },
            "pagination": {"style": "none"},
            "envelope": {"single": {"data": "$data"}, "list": "$items", "error": {"code": "$code"}},
        },
        "paths": {
            "/things": {
                "post": {
                    "operationId": "createThing",
                    "x-handler": "demo.create",
                    "x-rate-limit": ["all", "write"],
                    "responses": {
                        "201": {
                            "description": "created",
                            "x-inferred": True,
                            "x-inferred-reason": "the document shows no status",
                            "headers": {
                                "X-Request-ID": {
                                    "schema": {"type": "string"},
                                    "x-inferred": True,
                                    "x-inferred-reason": "not documented",
                                }
                            },
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["id", "status"],
                                        "properties": {
                                            "id": {"type": "string", "maxLength": 8, "x-inferred-keywords": ["maxLength"], "x-inferred-reason": "no length"},  # noqa: E501
                                            "status": {"type": "string", "enum": ["ready"], "x-inferred": True, "x-inferred-reason": "no statuses"},  # noqa: E501
                                        },
                                    }
                                }
                            },
                        },
                        "409": {
                            "description": "clash",
                            "x-inferred": True,
                            "x-inferred-reason": "no conflicts documented",
                            "content": {
                                "application/json": {"schema": error, "example": {"code": "CONFLICT"}}
                            },
                        },
                        "400": {"description": "bad", "content": {"application/json": {"schema": error}}},
                    },
                }
            }
        },
    }
    raw.update(overrides)
    return raw


def test_the_documented_view_drops_only_what_is_inferred() -> None:
    view = documented.view(_spec())
    responses = view["paths"]["/things"]["post"]["responses"]
    assert set(responses) == {"2XX", "400", "4XX"}  # 201 and 409 were the sandbox's choice
    created = responses["2XX"]
    assert created["headers"] == {}
    schema = created["content"]["application/json"]["schema"]
    assert schema["required"] == ["id"]  # an inferred property need not be there
    assert "maxLength" not in schema["properties"]["id"] and schema["properties"]["id"]["type"] == "string"
    assert "enum" not in schema["properties"]["status"]
    assert "example" not in json.dumps(responses["4XX"])  # no one status's code for every 4xx
    assert _spec()["paths"]["/things"]["post"]["responses"]["201"]["headers"]  # the input is untouched


def test_the_documented_contract_keeps_documented_limits_and_opens_envelopes() -> None:
    full = compile_spec(_spec(), "demo")
    view = full.documented
    assert view.view == "documented" and view.documented is view and full.documented is view
    assert [b.name for b in full.by_id("createThing").buckets] == ["all", "write"]  # type: ignore[union-attr]
    assert [b.name for b in view.by_id("createThing").buckets] == ["all"]  # type: ignore[union-attr]
    assert full.error.problems({"code": "NOT_FOUND", "request_id": "r1"}) != []
    assert view.error.problems({"code": "NOT_FOUND", "request_id": "r1"}) == []
    assert full.vocabulary >= {"NOT_FOUND", "CONFLICT"} and view.vocabulary == {"NOT_FOUND"}


def test_an_honest_choice_is_a_difference_a_broken_promise_a_violation() -> None:
    c = load("nurosentrix")
    op = c.op("get", "/servers/{id}")
    extra = b'{"success":false,"error":{"code":"NOT_FOUND","message":"gone"},"request_id":"r1"}'
    found = judged_problems(c, c.documented, op, 404, {}, extra)
    assert found and all(why == INFERRED for _, why in found)  # an extra key: the vendor's choice
    assert all(why is None for _, why in judged_problems(c, c, op, 404, {}, extra))  # strict: a failure
    broken = b'{"success":true,"error":{"code":"NOT_FOUND","message":"gone"}}'
    assert any(why is None for _, why in judged_problems(c, c.documented, op, 404, {}, broken))


def test_an_epoch_reset_is_read_as_a_time_not_as_56_years() -> None:
    now = time.time()
    date = email.utils.formatdate(now, usegmt=True)
    assert reset_seconds("30") == 30
    assert reset_seconds(str(int(now) + 42), {"Date": date}) == pytest.approx(42, abs=1.5)
    c = load("cloudnexus")
    op = c.op("get", "/servers")
    headers = {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0"}
    headers["X-RateLimit-Reset"] = str(int(now) + 20)
    assert "reset" not in {p.key for p in rate_limit_problems(c, op, 200, {**headers, "Date": date})}
    late = {**headers, "X-RateLimit-Reset": str(int(now) + 600)}
    assert "reset" in {p.key for p in rate_limit_problems(c, op, 200, {**late, "Date": date})}
    t = FakeTime()
    budget = Budget("auto", clock=t.clock, sleep=t.sleep)
    budget.observe(200, {**headers, "Date": date})
    budget.acquire([])
    assert t.slept and 15 < sum(t.slept) < 25  # the 20 s left, not 1.8 billion


def _results(profile: str = "documented") -> Results:
    r = Results("demo", "http://x", profile=profile, inferred_ops={"PATCH /things/{id}": "not documented"})
    r.fail("envelope", "GET /things", "HTTP 200 single envelope: missing key 'data'", key="single:missing")
    r.fail("lifecycle", "PATCH /things/{id}", "405 to an update", key="update")  # an inferred endpoint
    r.fail("envelope", "GET /things", "has keys the envelope does not define", key="extra", inferred=INFERRED)
    return r


def test_differences_never_fail_and_strict_counts_everything() -> None:
    r = _results()
    assert [v.key for v in r.failing] == ["single:missing"]
    assert {v.key for v in r.differences} == {"update", "extra"}
    text = summary(r, {})
    assert "Differs from the sandbox's choice" in text and "RESULT: 1 violation(s)" in text
    tree = junit(r, {}).getroot()
    assert tree is not None and tree.get("failures") == "1"
    assert len(_results("strict").failing) == 3


def test_a_baseline_fails_only_on_new_violations(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    baseline.write(str(path), _results(), {})
    entries = json.loads(path.read_text())["violations"]
    assert [(e["check"], e["key"]) for e in entries] == [("envelope", "single:missing")]  # no differences
    again = Results("demo", "http://x", profile="documented", baseline=baseline.read(str(path)))
    again.fail("envelope", "GET /things", "the same finding, other values", key="single:missing")
    assert again.failing == [] and len(again.known) == 1
    again.fail("auth", "GET /things", "no token answered 200", key="status:no token")
    assert [v.check for v in again.failing] == ["auth"]
    path.write_text("{}")
    with pytest.raises(baseline.BaselineError, match="not a baseline"):
        baseline.read(str(path))
