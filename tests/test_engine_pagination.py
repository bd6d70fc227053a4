"""Pagination: exact totals, stable creation order, pages disjoint and covering, filters first."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.apis import COLLECTIONS, Collection
from tests.conftest import Harness

PAGED = [c for c in COLLECTIONS if c.paged]
N = 130


def _fill(h: Harness, col: Collection, n: int = N) -> tuple[object, list[str]]:
    h.sandbox.limiter.enabled = False
    c = h.api(col.api)
    ids = [col.data(c.post(col.path, json=col.new(i)).json())["id"] for i in range(n)]
    return c, ids


def _page(col: Collection, c, number: int, size: int) -> tuple[list[str], dict]:  # type: ignore[no-untyped-def]
    if col.api == "cloudnexus-io":
        body = c.get(col.path, params={"limit": size, "offset": (number - 1) * size}).json()
    else:
        body = c.get(col.path, params={"page": number, "per_page": size}).json()
    return [i["id"] for i in col.items(body)], body["meta"]


@pytest.mark.parametrize("col", PAGED, ids=[c.api for c in PAGED])
def test_walking_pages_covers_everything_once(harness: Harness, col: Collection) -> None:
    c, ids = _fill(harness, col)
    seen: list[str] = []
    for number in range(1, 10):
        page, meta = _page(col, c, number, 50)
        assert meta["total"] == N
        seen += page
        if not page:
            break
    assert seen == ids  # creation order, no repeat, no gap
    first, meta = _page(col, c, 1, 100)
    assert len(first) == 100 and first == ids[:100]


@pytest.mark.parametrize("col", PAGED, ids=[c.api for c in PAGED])
def test_defaults_are_documented_ones(harness: Harness, col: Collection) -> None:
    c, ids = _fill(harness, col, 25)
    body = c.get(col.path).json()
    assert [i["id"] for i in col.items(body)] == ids[:20]
    if col.api == "cloudnexus-io":
        assert body["meta"] == {"total": 25, "limit": 20, "offset": 0}
    else:
        assert {k: body["meta"][k] for k in ("page", "per_page", "total")} == {
            "page": 1,
            "per_page": 20,
            "total": 25,
        }


@pytest.mark.parametrize("col", PAGED, ids=[c.api for c in PAGED])
def test_filters_apply_before_paging(harness: Harness, col: Collection) -> None:
    assert col.filter_param
    c, ids = _fill(harness, col, 30)
    name, value = col.filter_param
    other = value + "-none"
    params = {name: value}
    if col.api == "cloudnexus-io":
        params.update(limit=10, offset=10)
    else:
        params.update(page=2, per_page=10)
    body = c.get(col.path, params=params).json()
    assert body["meta"]["total"] == 30
    assert [i["id"] for i in col.items(body)] == ids[10:20]
    if name != "status":  # status is an enum: an unknown value is a 400
        assert c.get(col.path, params={name: other}).json()["meta"]["total"] == 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(total=st.integers(0, 40), size=st.integers(1, 100))
def test_any_page_size_partitions_the_collection(make_harness, total: int, size: int) -> None:  # type: ignore[no-untyped-def]
    col = PAGED[0]
    h = make_harness()
    c, ids = _fill(h, col, total)
    seen: list[str] = []
    number = 1
    while True:
        page, meta = _page(col, c, number, size)
        assert meta["total"] == total and len(page) <= size
        if not page:
            break
        seen += page
        number += 1
    assert seen == ids


def test_nexos_lists_are_bare_arrays(harness: Harness) -> None:
    c = harness.api("nexos")
    c.post("/projects", json={"name": "one", "github_repo": "octocat/one"})
    body = c.get("/projects").json()
    assert isinstance(body, list) and [p["slug"] for p in body] == ["one"]


@pytest.mark.parametrize("col", PAGED, ids=[c.api for c in PAGED])
def test_pages_far_past_the_end_are_empty_not_errors(harness: Harness, col: Collection) -> None:
    c, _ = _fill(harness, col, 3)
    huge = str(10**40)
    params = {"offset": huge, "limit": 100} if col.api == "cloudnexus-io" else {"page": huge, "per_page": 100}
    body = c.get(col.path, params=params).json()
    assert col.items(body) == [] and body["meta"]["total"] == 3
