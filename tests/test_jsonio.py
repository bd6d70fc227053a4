"""The response/journal encoder: whatever JSON data it gets, the bytes parse back to it."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mock_server.jsonio import dumps

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)  # beyond 64 bits: orjson refuses, json takes over
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),  # lone surrogates included
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=500, deadline=None)
@given(JSON)
def test_dumps_round_trips_any_json_value(value: Any) -> None:
    raw = dumps(value)
    raw.decode("utf-8")  # always valid UTF-8, even for lone surrogates
    assert json.loads(raw) == value


def test_compact_utf8_like_the_standard_library() -> None:
    value = {"name": "café", "n": [1, 2.5, None, True]}
    assert dumps(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    assert dumps({"big": 2**70, "k": [1, 2]}) == b'{"big":1180591620717411303424,"k":[1,2]}'  # the fallback
