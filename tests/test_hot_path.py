"""The request path's shortcuts answer exactly what the plain code they replace answered."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.responses import Response

from mock_server.clock import FrozenClock, iso
from mock_server.envelope import _ABSENT, compile_template
from mock_server.ratelimit import RateLimiter
from mock_server.responses import RawResponse, encode_headers


@settings(max_examples=500)
@given(st.floats(min_value=-2e9, max_value=4e9, allow_nan=False))
def test_iso_of_the_remembered_second_equals_formatting_afresh(ts: float) -> None:
    want = datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert iso(ts) == want
    assert iso(ts) == want  # the second call answers from the remembered second


NAMES = st.sampled_from(["Location", "X-Request-ID", "Retry-After", "Content-Type", "ETag", "Allow"])
VALUES = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12)


@settings(max_examples=300)
@given(
    status=st.sampled_from([200, 201, 202, 204, 304, 400, 404, 429, 500]),
    body=st.binary(max_size=40),
    headers=st.dictionaries(NAMES, VALUES, max_size=4),
    media=st.sampled_from([None, "application/json", "text/plain", "text/csv; charset=latin-1"]),
)
def test_a_raw_response_carries_what_starlette_would(
    status: int, body: bytes, headers: dict[str, str], media: str | None
) -> None:
    want = Response(body, status, headers, media)
    got = RawResponse(body, status, encode_headers(headers), media, scan=bool(headers))
    assert sorted(got.raw_headers) == sorted(want.raw_headers)
    assert (got.status_code, got.body, got.media_type) == (want.status_code, want.body, want.media_type)


def test_decision_headers_are_its_raw_headers() -> None:
    clock = FrozenClock()
    limiter = RateLimiter(clock)
    buckets = (limiter.bucket("all", 3, 60), limiter.bucket("writes", 2, 10))
    for _ in range(3):
        d = limiter.hit("k", buckets)
        assert d is not None
        assert {k.lower().encode(): v.encode() for k, v in d.headers().items()} == dict(d.raw_headers())
    assert d.headers()["RateLimit-Policy"] == '"all";q=3;w=60, "writes";q=2;w=10'
    assert not d.allowed and d.headers()["Retry-After"] == "10" and d.bucket.name == "writes"


def _render(template: Any, values: dict[str, Any]) -> Any:
    """The walk the compiled templates replace (as it was)."""
    if isinstance(template, str) and template.startswith("$"):
        value = values.get(template[1:].rstrip("?"))
        return _ABSENT if template.endswith("?") and value is None else value
    if isinstance(template, dict):
        out = {k: _render(v, values) for k, v in template.items()}
        return {k: v for k, v in out.items() if v is not _ABSENT}
    if isinstance(template, list):
        return [x for x in (_render(v, values) for v in template) if x is not _ABSENT]
    return template


PLACEHOLDERS = st.sampled_from(["$data", "$code", "$message?", "$details?", "$total", "plain", 1, None])
TEMPLATES = st.recursive(
    PLACEHOLDERS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abc"), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300)
@given(
    TEMPLATES,
    st.dictionaries(
        st.sampled_from(["data", "code", "message", "details", "total"]),
        st.one_of(st.none(), st.integers(), st.text(max_size=3)),
    ),
)
def test_a_compiled_template_fills_as_the_walk_did(template: Any, values: dict[str, Any]) -> None:
    assert compile_template(template)(values) == _render(template, values)


def test_remembered_parameters_answer_as_validation_did(harness: Any) -> None:
    """A URL's validated values are reused: the same answers, refusals refused again in full (never
    remembered), long values not remembered."""
    c = harness.api("nurosentrix")
    engine = harness.sandbox.engines["nurosentrix"]
    for _ in range(2):
        ok = c.get("/servers?per_page=2")
        assert ok.status_code == 200 and ok.json()["meta"]["per_page"] == 2
        bad = c.get("/servers?per_page=0")
        assert bad.status_code == 400 and "per_page" in bad.text
    keys = [k for k in engine._seen_params if k[0] == "listServers"]
    assert [k[1] for k in keys] == [b"per_page=2"]  # the refused one is not remembered
    first = engine._seen_params[keys[0]]
    assert c.get("/servers?per_page=2&page=1").status_code == 200
    assert engine._seen_params[keys[0]] is first and first == {"per_page": 2, "page": 1}
    long = c.get("/servers?per_page=3&other=" + "x" * 1100)
    assert long.status_code == 200 and long.json()["meta"]["per_page"] == 3
    assert all(len(k[1]) <= 1024 for k in engine._seen_params)
