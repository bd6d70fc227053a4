"""Validation: bad input is a 4xx in the API's envelope, names the field, and stores nothing."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.apis import COLLECTIONS, IDS, Collection, error_code
from tests.conftest import Harness

pytestmark = pytest.mark.parametrize("col", COLLECTIONS, ids=IDS)


def _details(body: dict) -> list[dict]:
    d = body["error"].get("details")
    return [d] if isinstance(d, dict) else list(d or [])


def test_missing_required_field_names_it(harness: Harness, col: Collection) -> None:
    c = harness.api(col.api)
    body = col.new()
    del body["region" if "region" in body else "github_repo"]
    r = c.post(col.path, json=body)
    assert r.status_code == 400
    assert error_code(r.json()) == "VALIDATION_ERROR"
    assert _details(r.json())[0]["field"] in ("region", "github_repo")
    assert col.items(c.get(col.path).json()) == []


def test_an_empty_body_names_each_missing_field_once(harness: Harness, col: Collection) -> None:
    """jsonschema reports each missing property with the whole `required` list: each detail
    must name its own field, not the first one N times."""
    r = harness.api(col.api).post(col.path, json={})
    assert r.status_code == 400
    fields = [d["field"] for d in _details(r.json())]
    assert len(fields) == len(set(fields)) >= 1, fields
    assert set(fields) <= set(col.new()), fields  # each a field of a valid body


def test_wrong_type_names_the_field(harness: Harness, col: Collection) -> None:
    r = harness.api(col.api).post(col.path, json={**col.new(), "name": 42})
    assert r.status_code == 400
    assert _details(r.json())[0]["field"] == "name"


@pytest.mark.parametrize(
    ("raw", "ctype", "status"),
    [
        (b"{not json", "application/json", 400),
        (b'{"name": "a"', "application/json", 400),
        (b"\xff\xfe\x00", "application/json", 400),
        (b'{"name": NaN}', "application/json", 400),
        (b'{"name": "a", "name": "b"}', "application/json", 400),
        (b"[" * 100_000, "application/json", 400),
        (b'{"n": 1' + b"0" * 5000 + b"}", "application/json", 400),
        (b'{"name": "\\ud800"}', "application/json", 400),
        (b"[]", "application/json", 400),
        (b"name=web", "application/x-www-form-urlencoded", 415),
        (b'{"name": "web"}', "text/plain", 415),
        (b"", "application/json", 400),
    ],
)
def test_hostile_bodies_are_4xx_in_the_envelope(
    harness: Harness, col: Collection, raw: bytes, ctype: str, status: int
) -> None:
    c = harness.api(col.api)
    r = c.post(col.path, content=raw, headers={"Content-Type": ctype})
    assert r.status_code == status
    assert error_code(r.json()) in ("VALIDATION_ERROR", "UNSUPPORTED_MEDIA_TYPE")
    assert col.items(c.get(col.path).json()) == []


def test_oversized_body_is_413(harness: Harness, col: Collection) -> None:
    r = harness.api(col.api).post(
        col.path,
        content=b'{"name": "' + b"a" * 1_100_000 + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert error_code(r.json()) == "PAYLOAD_TOO_LARGE"


def test_unknown_fields_are_refused_and_nothing_is_mass_assigned(harness: Harness, col: Collection) -> None:
    c = harness.api(col.api)
    for extra in (
        {"id": "mine"},
        {"status": "active"},
        {"created_at": "2000-01-01T00:00:00Z"},
        {"_account": "other"},
        {"account": "other"},
    ):
        r = c.post(col.path, json={**col.new(), **extra})
        assert r.status_code == 400, extra
    created = col.data(c.post(col.path, json=col.new()).json())
    assert created["id"] != "mine"
    assert harness.api(col.api, account="other").get(f"{col.path}/{created['id']}").status_code == 404


def test_bad_query_values_are_400(harness: Harness, col: Collection) -> None:
    if not col.paged:
        pytest.skip("no pagination")
    c = harness.api(col.api)
    size, start = ("per_page", "page") if col.api != "cloudnexus-io" else ("limit", "offset")
    for query in (
        {size: "0"},
        {size: "101"},
        {size: "abc"},
        {start: "-1"},
        {size: "1e400"},
        {size: "9" * 40},
    ):
        r = c.get(col.path, params=query)
        assert r.status_code == 400, query
        assert _details(r.json())[0]["field"] in (size, start)
    assert c.get(f"{col.path}?{size}=5&{size}=6").status_code == 400  # duplicated


def test_unknown_route_and_method_are_in_the_envelope(harness: Harness, col: Collection) -> None:
    c = harness.api(col.api)
    r = c.get("/no/such/thing")
    assert r.status_code == 404 and error_code(r.json()) == "NOT_FOUND"
    r = c.request("PUT", col.path)
    assert r.status_code == 405 and error_code(r.json()) == "METHOD_NOT_ALLOWED"
    assert "GET" in r.headers["allow"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=12,
    )
)
def test_any_json_body_is_answered_without_5xx(harness: Harness, col: Collection, body: object) -> None:
    c = harness.api(col.api)
    r = c.post(col.path, content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert r.status_code < 500
    if r.status_code >= 400:
        assert error_code(r.json())
