"""Reading the rate-limit headers of one answer: `Retry-After` (RFC 9110), `X-RateLimit-*`
and the IETF `RateLimit` / `RateLimit-Policy` (draft -11). The structured headers are
parsed by the judge's reader (`judge.headers`), the one the suites use."""

from __future__ import annotations

import email.utils
import math
from collections.abc import Mapping

from judge.headers import parse_structured as structured

EPOCH = 1e9  # a reset above this is a Unix epoch, not a delay (TRAPS: two conventions)


def retry_after(headers: Mapping[str, str], wall: float) -> float | None:
    """Seconds to wait (delay-seconds or an HTTP-date against `wall`); None if absent/unusable."""
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    if raw.isdigit():
        return float(raw)
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - wall)


def _int(raw: str | None) -> int | None:
    if raw is None:
        return None
    raw = raw.strip()
    try:
        return int(float(raw)) if raw else None
    except ValueError:
        return None


def remaining(headers: Mapping[str, str]) -> int | None:
    """`X-RateLimit-Remaining`, else the smallest `r` of `RateLimit`."""
    x = _int(headers.get("x-ratelimit-remaining"))
    if x is not None:
        return x
    rs = [
        v
        for p in (structured(headers.get("ratelimit")) or {}).values()
        if (v := _int(p.get("r"))) is not None
    ]
    return min(rs) if rs else None


def limit(headers: Mapping[str, str]) -> int | None:
    return _int(headers.get("x-ratelimit-limit"))


def reset(headers: Mapping[str, str], wall: float) -> tuple[float | None, str]:
    """(seconds until reset, convention): `X-RateLimit-Reset` read as a delay or, above 10^9,
    an epoch; else `RateLimit`'s `t`. ("absent" when neither is there.)"""
    raw = headers.get("x-ratelimit-reset")
    if raw is not None:
        try:
            v = float(raw.strip())
        except ValueError:
            return None, "unreadable"
        if v > EPOCH:
            return v - wall, "epoch"
        return v, "delta"
    ts = [
        t
        for p in (structured(headers.get("ratelimit")) or {}).values()
        if (t := _int(p.get("t"))) is not None
    ]
    if ts:
        return float(max(ts)), "ietf"
    return None, "absent"


def policy(headers: Mapping[str, str]) -> list[tuple[int, float]]:
    """(quota, window) pairs `RateLimit-Policy` advertises."""
    out = []
    for params in (structured(headers.get("ratelimit-policy")) or {}).values():
        q, w = _int(params.get("q")), params.get("w")
        try:
            if q is not None and w is not None:
                out.append((q, float(w)))
        except ValueError:
            continue
    return out


def has_counters(headers: Mapping[str, str]) -> bool:
    return any(h in headers for h in ("x-ratelimit-remaining", "x-ratelimit-limit", "ratelimit"))


def ceil_s(x: float) -> int:
    return max(0, math.ceil(x - 1e-9))
