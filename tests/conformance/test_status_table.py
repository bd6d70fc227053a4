"""The documents' status table (`x-sandbox.status-table`, CloudNexus .com's "Error Codes") and the
engine enum of 002, as the contract declares them and the suite reads them (issue 32). The
blind-backend runs proving each check can fail are in test_blind_conformance.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conformance.results import Results
from conformance.schemathesis_phase import config_for
from contract import SPECS_DIR, load
from judge.schema import schema_problems


def test_the_status_table_is_compiled_into_both_views() -> None:
    com = load("cloudnexus")
    expected = {400: "invalid-parameters", 403: "insufficient-permissions", 404: "not-found"}
    assert com.status_table == expected and com.documented.status_table == expected
    assert com.status_for("invalid-parameters") == 400 and com.status_for("not-found") == 404
    for api in ("nurosentrix", "cloudnexus-io", "nexos"):  # their documents state no such table
        raw = yaml.load((SPECS_DIR / f"{api}.yaml").read_text(), Loader=yaml.CSafeLoader)
        assert "status-table" not in raw["x-sandbox"]


def _refusals(tmp_path: Path, invalid_status: int | None) -> set[str]:
    config = config_for("http://x", "t", phases=["coverage"], max_examples=1, seed=1, workdir=tmp_path,
                        invalid_status=invalid_status)  # fmt: skip
    checks = config.projects.get_default().checks
    return {str(s) for s in checks.negative_data_rejection.expected_statuses or ()}


def test_a_documented_400_narrows_what_refuses_invalid_data(tmp_path: Path) -> None:
    narrowed = _refusals(tmp_path, 400)
    assert "400" in narrowed and "422" not in narrowed
    assert {"401", "403", "404", "415", "429"} <= narrowed  # refusals for other reasons stay
    assert {"400", "422"} <= _refusals(tmp_path, None)  # no table: Schemathesis' defaults


def test_a_finding_on_an_inferred_endpoint_fails_when_it_breaks_an_api_wide_row() -> None:
    r = Results("demo", "http://x", profile="documented", inferred_ops={"GET /things/{id}": "not documented"})
    r.fail("lifecycle", "GET /things/{id}", "a deleted record answers 200", key="deleted")
    r.fail("statuses", "GET /things/{id}", "an unknown id answered 200", key="found", api_wide=True)
    assert [v.key for v in r.failing] == ["found"] and [v.key for v in r.differences] == ["deleted"]


@pytest.mark.parametrize("engine", ["oracle", "AAA", "PostgreSQL "])
def test_an_engine_outside_the_four_is_refused_by_the_documented_view_too(engine: str) -> None:
    com = load("cloudnexus")
    for contract in (com, com.documented):
        op = contract.by_id("createDatabase")
        assert op is not None and op.body_schema is not None
        body = {"engine": engine, "version": "15.4", "plan": "standard", "name": "db", "region": "us-east-1"}
        assert [p.field for p in schema_problems(body, op.body_schema)] == ["engine"]
        assert schema_problems({**body, "engine": "mongodb", "version": "7.0"}, op.body_schema) == []
    # what stays inferred: a version the sandbox does not offer, a missing field, an extra one
    lax, full = com.documented.by_id("createDatabase"), com.by_id("createDatabase")
    assert lax is not None and lax.body_schema is not None and full is not None and full.body_schema
    assert schema_problems({"engine": "redis", "version": "1.0", "extra": 1}, lax.body_schema) == []
    assert schema_problems({"engine": "redis", "version": "1.0"}, full.body_schema)
