"""The suite's parts in isolation: contract compilation, per-response checks, the budget, the
report writers and the command line's usage errors."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conformance.budget import Budget, BudgetError, parse_rate
from conformance.cli import main
from conformance.report import junit, markdown, summary
from conformance.results import Results
from contract import Bucket, Parent, Template, load, synthesize
from contract import compile_spec as build
from judge.response import envelope_problems, rate_limit_problems
from tests.apis import APIS
from tests.conformance.backends import free_port


# ------------------------------------------------------------------------------- contract
@pytest.mark.parametrize("api", APIS)
def test_every_spec_compiles_with_its_vocabulary(api: str) -> None:
    c = load(api)
    assert {"UNAUTHORIZED", "NOT_FOUND", "VALIDATION_ERROR", "RATE_LIMITED"} <= c.vocabulary
    assert c.codes_for(None, 401) >= {"UNAUTHORIZED"}
    assert c.error.locate("code") == ("error", "code")
    assert all(op.buckets for op in c.operations), "every operation declares x-rate-limit"


def test_resources_find_their_operations_including_handlers() -> None:
    nuro = load("nurosentrix").resources
    create = nuro["instances"].create_op
    assert create and create.operation_id == "createInstance"  # x-handler
    assert nuro["backups"].parent == Parent(name="instances", param="id", field="instance_id")
    assert {o.operation_id for o in nuro["instances"].actions} >= {"instanceAction", "cloneInstance"}
    nexos = load("nexos").resources
    register = nexos["nodes"].create_op
    assert register and register.operation_id == "registerNode"  # found by its link
    assert nexos["projects"].delete_op and nexos["projects"].delete_op.operation_id == "deleteProject"


def test_a_raw_reply_documented_as_such_is_not_held_to_the_envelope() -> None:
    raw = {
        "openapi": "3.1.0",
        "x-sandbox": {
            "api": "demo",
            "token-prefixes": {"test": "demo_test_", "live": "demo_live_"},
            "rate-limits": {"all": {"limit": 10, "window": 1}},
            "pagination": {"style": "none"},
            "envelope": {
                "single": {"ok": True, "data": "$data"},
                "list": "$items",
                "error": {"error": "$code"},
            },
        },
        "paths": {
            "/regions": {
                "get": {
                    "x-handler": "demo.regions",
                    "x-rate-limit": ["all"],
                    "responses": {
                        "200": {
                            "description": "raw",
                            "content": {"application/json": {"schema": {"properties": {"regions": {}}}}},
                        }
                    }
                }
            }
        },
    }
    c = build(raw)
    op = c.op("get", "/regions")
    assert c.template_for(op, 200) is None
    assert c.template_for(op, 404) is c.error


def test_template_problems_name_each_departure() -> None:
    tpl = Template(
        {"status": "success", "data": "$data", "meta": {"request_id": "$request_id", "total": "$total"}}
    )
    assert tpl.problems({"status": "success", "data": {}, "meta": {"request_id": "r1", "total": 3}}) == []
    problems = tpl.problems({"status": "ok", "result": {}, "meta": {"request_id": "", "total": -1}})
    text = "\n".join(problems)
    for needle in ("status should be", "missing key 'data'", "result", "request_id", "total"):
        assert needle in text
    error = Template({"error": {"code": "$code", "message": "$message", "details": "$details?"}})
    assert error.problems({"error": {"code": "NOPE", "message": "x"}}, frozenset({"NOT_FOUND"}))
    assert error.problems({"error": {"code": "NOT_FOUND", "message": "x"}}, frozenset({"NOT_FOUND"})) == []


# ------------------------------------------------------------------------ response checks
def test_error_code_must_be_the_one_documented_for_the_status() -> None:
    c = load("nurosentrix")
    op = c.op("get", "/servers/{id}")
    ok = b'{"success":false,"error":{"code":"NOT_FOUND","message":"gone"}}'
    wrong = b'{"success":false,"error":{"code":"CONFLICT","message":"gone"}}'
    assert envelope_problems(c, op, 404, {}, ok) == []
    assert [p.key for p in envelope_problems(c, op, 404, {}, wrong)] == ["code:404:CONFLICT"]
    assert envelope_problems(c, op, 500, {"content-type": "text/html"}, b"<html>")[0].key == "not-json"
    assert envelope_problems(c, op, 429, {}, b"{}")[0].check == "ratelimit"


def _headers(remaining: int = 99, reset: int = 30, r: int | None = None, q: int = 100) -> dict[str, str]:
    return {
        "RateLimit-Policy": f'"all";q={q};w=60',
        "RateLimit": f'"all";r={remaining if r is None else r};t={reset}',
        "X-RateLimit-Limit": "100",
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(reset),
    }


def test_rate_limit_headers_present_and_coherent() -> None:
    c = load("cloudnexus")
    op = c.op("get", "/servers")
    assert rate_limit_problems(c, op, 200, _headers()) == []
    assert [p.key for p in rate_limit_problems(c, op, 200, {})] == ["missing"]
    assert rate_limit_problems(c, op, 401, {}) == []  # not counted: headers optional
    keys = {p.key for p in rate_limit_problems(c, op, 200, _headers(r=5, q=7))}
    assert {"ratelimit-r", "policy-q"} <= keys
    assert "retry-after" in {p.key for p in rate_limit_problems(c, op, 429, _headers(remaining=0))}
    assert rate_limit_problems(c, op, 429, {**_headers(remaining=0), "Retry-After": "12"}) == []


# --------------------------------------------------------------------------------- budget
class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_paced_budget_never_puts_more_than_n_in_a_window() -> None:
    t = FakeTime()
    budget = Budget("3/m", {"write": Bucket("write", 2, 10)}, clock=t.clock, sleep=t.sleep)
    sent = []
    for _ in range(7):
        budget.acquire(["write"])
        sent.append(t.now)
    for start in sent:
        assert sum(1 for s in sent if start <= s < start + 60) <= 3
    assert sent[3] >= sent[0] + 60 and budget.requests == 7


def test_retry_after_pauses_only_its_bucket_and_auto_mode_reads_remaining() -> None:
    t = FakeTime()
    budget = Budget(
        "auto",
        {"all": Bucket("all", 100, 60), "write": Bucket("write", 20, 60)},
        clock=t.clock,
        sleep=t.sleep,
    )
    assert budget.observe(429, {"Retry-After": "7", "RateLimit": '"write";r=0;t=7'}) == 7
    budget.acquire(["all"])  # a read is not held back by the write bucket
    assert t.slept == []
    budget.acquire(["all", "write"])
    assert sum(t.slept) == pytest.approx(7)
    budget.observe(200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "3"})  # unnamed: everyone waits
    budget.acquire([])
    assert sum(t.slept) == pytest.approx(10)


def test_rate_syntax() -> None:
    assert parse_rate("auto") is None
    assert parse_rate("100/m") == (100, 60.0) and parse_rate("5/s") == (5, 1.0)
    with pytest.raises(BudgetError):
        parse_rate("fast")


# --------------------------------------------------------------------------------- report
def test_reports_group_by_check_and_never_show_tokens() -> None:
    r = Results("demo", "http://x")
    r.fail(
        "auth", "GET /things", "no token answered 200", curl="curl -H 'Authorization: Bearer sekrit' http://x"
    )
    r.fail("auth", "GET /things", "no token answered 200")
    r.ok("envelope", "GET /things")
    r.skip("scopes", "needs --limited-token")
    secrets = {"sekrit": "$CONFORMANCE_TOKEN"}
    text = summary(r, secrets)
    assert "sekrit" not in text and "$CONFORMANCE_TOKEN" in text and "(x2)" in text
    assert "SKIP" in text and "RESULT: 1 violation(s) in 1 check(s): auth" in text
    tree = junit(r, secrets).getroot()
    assert tree is not None
    suites = {s.get("name"): s for s in tree.iter("testsuite")}
    assert suites["demo.auth"].get("failures") == "1" and suites["demo.scopes"].get("skipped") == "1"
    assert "sekrit" not in ET.tostring(tree, encoding="unicode")
    assert "| auth | 1 | 0 | 0 |" in markdown(r, secrets)


def test_synthesized_bodies_follow_the_schema() -> None:
    schema = {
        "type": "object",
        "required": ["email", "count", "kind"],
        "properties": {
            "email": {"type": "string", "format": "email"},
            "count": {"type": "integer", "minimum": 3},
            "kind": {"enum": ["a", "b"]},
            "note": {"type": "string"},
        },
    }
    assert synthesize(schema) == {"email": "conformance@example.com", "count": 3, "kind": "a"}


# ------------------------------------------------------------------------------------ CLI
def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--api", "cloudnexus"]) == 2  # neither tokens nor --sandbox
    assert "give --base-url and --token" in capsys.readouterr().err
    dead = f"http://127.0.0.1:{free_port()}"
    assert main(["run", "--api", "cloudnexus", "--base-url", dead, "--token", "t", "-q"]) == 2
    assert "unreachable" in capsys.readouterr().err
    assert main(["run", "--api", "nope", "--base-url", dead, "--token", "t", "-q"]) == 2
    assert main(["run", "--api", "cloudnexus", "--sandbox", dead, "-q"]) == 2
    assert main(["run", "--api", "cloudnexus", "--base-url", dead, "--token", "t", "--rate-limit", "x"]) == 2
    assert main(["run", "--api", "cloudnexus", "--sandbox", dead, "--phases", "warp"]) == 2
    assert "--phases: unknown warp" in capsys.readouterr().err


def test_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = capsys.readouterr().out
    for flag in (
        "--api",
        "--base-url",
        "--token",
        "--limited-token",
        "--other-token",
        "--sandbox",
        "--junit-xml",
        "--report",
        "--max-examples",
        "--rate-limit",
        "--seed",
        "--phases",
        "--checks",
    ):
        assert flag in text
    assert "Exit status: 0" in text


def test_families_declare_their_kind_and_the_registry_refuses_a_name_twice() -> None:
    from conformance.checks import FAMILIES, LAST, ORDER, family, load_all, per_response

    families = load_all()
    assert [n for n in ORDER if families[n].kind == LAST] == ["ratelimit"]  # it spends the token's budget
    assert per_response() == ("envelope", "ratelimit")
    with pytest.raises(ValueError, match="already registered"):
        family("auth", "a second auth family")
    with pytest.raises(ValueError, match="kind must be"):
        family("brand-new", "a family of no known kind", kind="sometimes")
    assert "brand-new" not in FAMILIES
