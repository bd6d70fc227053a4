"""The parameter fast path may only ever say yes where jsonschema would say yes too."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mock_server.store import clone
from mock_server.validation import _plainly_valid, schema_problems

SCHEMAS = st.one_of(
    st.builds(
        lambda lo, hi: {"type": "integer", "minimum": lo, "maximum": hi},
        st.integers(-5, 5),
        st.integers(-5, 50),
    ),
    st.builds(
        lambda lo, hi: {"type": "string", "minLength": lo, "maxLength": hi},
        st.integers(0, 3),
        st.integers(0, 6),
    ),
    st.builds(lambda e: {"type": "string", "enum": e}, st.lists(st.text(max_size=3), min_size=1, max_size=3)),
    st.builds(lambda e: {"type": "integer", "enum": e}, st.lists(st.integers(0, 5), min_size=1, max_size=3)),
    st.just({"type": "string", "pattern": "^a+$"}),
    st.just({"type": "string", "pattern": "b"}),  # unanchored: jsonschema searches
    st.just({"type": "string", "minLength": 1, "maxLength": 5, "pattern": "^[A-Za-z0-9_-]+$"}),
    st.just({"type": "string", "format": "email"}),
)
VALUES = st.one_of(
    st.integers(-10, 60), st.text(max_size=8), st.booleans(), st.none(), st.floats(allow_nan=False)
)


@settings(max_examples=1500, deadline=None)
@given(SCHEMAS, VALUES)
def test_fast_yes_implies_jsonschema_yes(schema: dict[str, Any], value: Any) -> None:
    if _plainly_valid(value, schema):
        assert schema_problems(value, schema) == []


def test_fast_path_leaves_patterns_and_formats_to_jsonschema() -> None:
    assert not _plainly_valid("bbb", {"type": "string", "pattern": "^a+$"})
    assert not _plainly_valid("x", {"type": "string", "format": "email"})
    assert _plainly_valid(5, {"type": "integer", "minimum": 1, "maximum": 100})
    assert not _plainly_valid(True, {"type": "integer"})


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=10,
)


@given(JSON)
def test_clone_is_an_equal_independent_copy(value: Any) -> None:
    copied = clone(value)
    assert copied == value
    if isinstance(value, (dict, list)) and value:
        assert copied is not value


def test_the_fast_path_answers_for_the_specs_own_id_and_request_id_patterns() -> None:
    ident = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9_-]+$"}
    assert _plainly_valid("srv_abc123", ident)
    assert not _plainly_valid("srv abc", ident) and schema_problems("srv abc", ident)
    assert _plainly_valid("xab", {"type": "string", "pattern": "ab"})
