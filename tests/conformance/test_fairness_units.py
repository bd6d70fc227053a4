"""The documented profile enforces nothing the documents do not show (issue 32, found by backends
written blind): error bodies, list meta and 405 bodies the documents never show, nullability, an
inferred request body; and an `Allow` that rightly lists an overlapping path's methods."""

from __future__ import annotations

import copy

import pytest

from conformance.schemathesis_phase import _allowed_by_overlap
from contract import SpecError, compile_spec, load
from contract.documented import view
from judge.response import envelope_problems

ALLOW = (
    "Allow header mismatch: `Allow: DELETE, GET, POST` does not match the schema. "
    "Undocumented methods advertised: "
)


def test_inferred_envelope_parts_are_not_judged_in_the_documented_view() -> None:
    com = load("cloudnexus")
    assert com.listing.locate("total") is not None and com.documented.listing.locate("total") is None
    assert com.documented.listing.locate("request_id") is not None  # shown by document 002
    nexos = load("nexos")
    body = b'{"error": "not_found", "message": "Project not found"}'
    op = nexos.op("get", "/projects/{id}")
    assert envelope_problems(nexos, op, 404, {}, body) != []  # the sandbox's choice, reported apart
    assert (
        envelope_problems(nexos.documented, nexos.documented.op("get", "/projects/{id}"), 404, {}, body) == []
    )
    # an inferred error template still wants JSON ("All endpoints accept and return JSON")
    assert envelope_problems(nexos.documented, op, 404, {"content-type": "text/plain"}, b"Not Found") != []


@pytest.mark.parametrize("api", ["nurosentrix", "cloudnexus", "cloudnexus-io", "nexos"])
def test_a_framework_405_body_is_judged_only_in_strict(api: str) -> None:
    full = load(api)
    op = full.operations[0]
    body = b"Method Not Allowed"
    headers = {"content-type": "text/plain; charset=utf-8"}
    assert [p.key for p in envelope_problems(full, op, 405, headers, body)] == ["not-json"]
    assert (
        envelope_problems(full.documented, full.documented.by_id(op.operation_id), 405, headers, body) == []
    )
    # a 404 of a documented error envelope (Nurosentrix, .io) is still judged
    if api in ("nurosentrix", "cloudnexus-io"):
        assert envelope_problems(full.documented, op, 404, headers, body) != []


def test_an_inferred_path_that_names_no_template_part_is_a_load_error() -> None:
    raw = copy.deepcopy(load("cloudnexus").raw)
    raw["x-sandbox"]["envelope"]["inferred"] = {"list/meta/pages": "a typo"}
    with pytest.raises(SpecError, match="list/meta/pages"):
        compile_spec(raw)


def test_optional_properties_may_be_null_required_ones_may_not() -> None:
    doc = view(load("cloudnexus-io").raw)
    schema = doc["components"]["schemas"]["CreateInstanceRequest"]
    assert "null" in schema["properties"]["ssh_keys"]["type"]
    assert "null" not in schema["properties"]["name"]["type"]
    assert {"type": "null"} not in (schema["properties"]["plan"].get("anyOf") or [])


def test_a_request_body_the_documents_do_not_show_is_not_required() -> None:
    doc = view(load("nexos").raw)
    assert doc["paths"]["/auth/api-keys"]["post"]["requestBody"]["required"] is False
    assert doc["paths"]["/projects"]["post"]["requestBody"]["required"] is True


def test_an_allow_listing_an_overlapping_paths_methods_is_right() -> None:
    nexos = load("nexos")
    assert _allowed_by_overlap(nexos, "POST /nodes/join-token", ALLOW + "DELETE, GET")
    assert not _allowed_by_overlap(nexos, "POST /nodes/join-token", ALLOW + "DELETE, GET, PUT")
    assert not _allowed_by_overlap(nexos, "GET /nodes", ALLOW + "DELETE")
