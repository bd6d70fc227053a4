"""The parameter fast path may only ever say yes where jsonschema would say yes too."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from judge.schema import plainly_valid as _plainly_valid
from judge.schema import schema_problems
from mock_server.store import clone

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
LEAF_SCHEMAS = st.one_of(
    SCHEMAS,
    st.builds(lambda lo: {"type": "number", "minimum": lo}, st.integers(-5, 5)),
    st.just({"type": "boolean"}),
    st.builds(lambda t: {"type": [t, "null"]}, st.sampled_from(["string", "integer", "number", "boolean"])),
    st.just({"type": "array", "items": {"type": "string"}}),
)
NAMES = st.sampled_from(["a", "b", "c"])
OBJECT_SCHEMAS = st.builds(
    lambda props, required, extra: {
        "type": "object",
        "properties": props,
        "required": [r for r in required if r in props],
        **({} if extra is None else {"additionalProperties": extra}),
    },
    st.dictionaries(NAMES, LEAF_SCHEMAS, max_size=3),
    st.lists(NAMES, max_size=3, unique=True),
    st.one_of(st.none(), st.booleans(), st.just({"type": "string"})),
)
BODIES = st.one_of(VALUES, st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), VALUES, max_size=4))


@settings(max_examples=1500, deadline=None)
@given(SCHEMAS, VALUES)
def test_fast_yes_implies_jsonschema_yes(schema: dict[str, Any], value: Any) -> None:
    if _plainly_valid(value, schema):
        assert schema_problems(value, schema) == []


@settings(max_examples=1500, deadline=None)
@given(OBJECT_SCHEMAS, BODIES)
def test_fast_yes_for_a_body_implies_jsonschema_yes(schema: dict[str, Any], value: Any) -> None:
    if _plainly_valid(value, schema):
        assert schema_problems(value, schema) == []


def test_fast_path_says_yes_to_a_plain_create_body() -> None:
    schema = {
        "type": "object",
        "required": ["name"],
        "additionalProperties": False,
        "properties": {"name": {"type": "string", "maxLength": 5}, "size": {"type": ["integer", "null"]}},
    }
    assert _plainly_valid({"name": "web", "size": None}, schema)
    assert not _plainly_valid({"name": "web", "other": 1}, schema)
    assert not _plainly_valid({"size": 1}, schema)
    assert not _plainly_valid({"name": "web", "size": True}, schema)


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
