"""The one reader and writer of rate-limit headers and `Retry-After`.

Written by the sandbox (IETF httpapi-ratelimit-headers draft -11 plus the common X-RateLimit-*
trio); read by the judge, the conformance budget, the load verifier and the request log. A
header is read from any mapping: plain, httpx, or Schemathesis' (lowercase keys, list values)."""

from __future__ import annotations

import contextlib
import email.utils
import math
import re
import time
from collections.abc import Mapping, Sequence
from typing import Protocol

RATE_HEADERS = (
    "ratelimit-policy",
    "ratelimit",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
)
NAMES = {
    k.lower().encode(): k
    for k in (
        "RateLimit-Policy",
        "RateLimit",
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
    )
}
NAMES[b"retry-after"] = "Retry-After"
EPOCH = 1_000_000_000  # a reset above this is a Unix time (GitHub's convention), not seconds
_ITEM = re.compile(r'^\s*(?:"(?P<name>[^"]*)"|(?P<token>[A-Za-z0-9_.-]+))?\s*(?P<params>(?:;[^,]*)?)$')
_POLICY_ITEM = re.compile(r'^\s*"?([^";]+)"?\s*((?:;\s*[a-z]+=[^;,]+)*)\s*$')
_STATE_T = re.compile(r"(?:^|;)\s*t=(\d+)")
_STATE_R = re.compile(r"(?:^|;)\s*r=(\d+)")
_STATE_NAME = re.compile(r'^\s*"?([^";,]+)"?\s*;')


# -- reading ---------------------------------------------------------------------------------
def header(headers: Mapping[str, object], name: str) -> str | None:
    """A header's value from a plain, httpx or Schemathesis (lowercase keys, list values) mapping."""
    value: object = None
    for key in (name, name.lower()):
        try:
            value = headers[key]
            break
        except KeyError:
            continue
    else:
        wanted = name.lower()
        value = next((v for k, v in headers.items() if str(k).lower() == wanted), None)
    if isinstance(value, list):
        return str(value[0]) if value else None
    return None if value is None else str(value)


def delay_seconds(value: str | None) -> int | None:
    """A non-negative integer header value (`Retry-After`'s delay-seconds, X-RateLimit-*), else None."""
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isdigit() else None


def parse_retry_after(value: str | None) -> int | None:
    """RFC 9110: delay-seconds or an HTTP-date (whole seconds from now); None when unusable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0, math.ceil(when.timestamp() - time.time()))


def retry_after_seconds(headers: Mapping[str, object]) -> float | None:
    """`Retry-After` of a response in seconds (fractions kept), or None."""
    raw = header(headers, "Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw.strip()))
    except ValueError:
        try:
            return max(0.0, email.utils.parsedate_to_datetime(raw).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def reset_seconds(value: str | None, headers: Mapping[str, object] | None = None) -> float | None:
    """`X-RateLimit-Reset` as seconds from now: a delta (IETF drafts) or a Unix epoch (GitHub),
    read against the response's `Date` when it has one."""
    if value is None or not value.strip().isdigit():
        return None
    n = float(value.strip())
    if n < EPOCH:
        return n
    now = time.time()
    date = header(headers, "Date") if headers is not None else None
    if date:
        with contextlib.suppress(TypeError, ValueError):
            now = email.utils.parsedate_to_datetime(date).timestamp()
    return max(0.0, n - now)


def parse_structured(value: str | None) -> dict[str, dict[str, str]] | None:
    """`RateLimit` / `RateLimit-Policy` leniently: `"all";q=100;w=60, "write";q=20;w=60`
    -> {"all": {"q": "100", "w": "60"}, ...}. None when absent or in another format."""
    if not value:
        return None
    out: dict[str, dict[str, str]] = {}
    for item in value.split(","):
        m = _ITEM.match(item)
        if m is None or not (m.group("name") or m.group("token")):
            return None
        params = {}
        for part in m.group("params").split(";")[1:]:
            key, _, val = part.strip().partition("=")
            params[key.strip()] = val.strip().strip('"')
        out[m.group("name") or m.group("token") or ""] = params
    return out


def parse_policy(value: str) -> list[tuple[str, dict[str, str]]] | None:
    """`RateLimit-Policy` (or `RateLimit`) strictly, as a judge reads it: each item a name and
    lowercase `key=value` parameters, in order; None when an item breaks that grammar."""
    items = []
    for part in value.split(","):
        m = _POLICY_ITEM.match(part)
        if not m:
            return None
        params = dict(p.strip().split("=", 1) for p in m.group(2).split(";") if "=" in p)
        items.append((m.group(1).strip(), params))
    return items


def rate_state(value: str | None) -> tuple[str | None, str | None, str | None]:
    """The `RateLimit` header's policy name, `r=` (remaining) and `t=` (seconds to reset), each
    None when absent."""
    if not value:
        return None, None, None
    name, r, t = _STATE_NAME.match(value), _STATE_R.search(value), _STATE_T.search(value)
    return (
        name.group(1).strip() if name else None,
        r.group(1) if r else None,
        t.group(1) if t else None,
    )


def advertised_window(headers: Mapping[str, object]) -> float | None:
    """The window (`w=`) of the policy the `RateLimit` header reports on, from `RateLimit-Policy`."""
    state, policy = header(headers, "RateLimit"), header(headers, "RateLimit-Policy")
    if not state or not policy:
        return None
    name = state.split(";", 1)[0].strip().strip('"')
    for item in policy.split(","):
        parts = [p.strip() for p in item.split(";")]
        if parts and parts[0].strip('"') == name:
            for p in parts[1:]:
                if p.startswith("w="):
                    try:
                        return float(p[2:])
                    except ValueError:
                        return None
    return None


# -- writing ---------------------------------------------------------------------------------
class Policy(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def limit(self) -> int: ...
    @property
    def window(self) -> float: ...


def rate_headers(
    bucket: Policy, remaining: int, reset: int, policies: Sequence[Policy], retry_after: int | None
) -> list[tuple[bytes, bytes]]:
    """The headers of one decision, as a response carries them: lowercase names, latin-1 values.
    `bucket` is the tightest (the one described); `retry_after` None when the request was admitted."""
    remaining_b, reset_b = str(remaining).encode(), str(reset).encode()
    out = [
        (b"ratelimit-policy", policy_value(policies)),
        (b"ratelimit", b'"%s";r=%s;t=%s' % (bucket.name.encode("latin-1"), remaining_b, reset_b)),
        (b"x-ratelimit-limit", str(bucket.limit).encode()),
        (b"x-ratelimit-remaining", remaining_b),
        (b"x-ratelimit-reset", reset_b),
    ]
    if retry_after is not None:
        out.append((b"retry-after", str(retry_after).encode()))
    return out


def retry_after(seconds: int) -> dict[str, str]:
    return {"Retry-After": str(seconds)}


def policy_value(buckets: Sequence[Policy]) -> bytes:
    """The `RateLimit-Policy` value of an operation's buckets, remembered per tuple (the engine
    passes each operation's one tuple; hashing it would hash every bucket)."""
    hit = _policies.get(id(buckets))
    if hit is not None and hit[0] is buckets:
        return hit[1]
    items = (f'"{p.name}";q={p.limit};w={policy_number(p.window)}' for p in buckets)
    value = ", ".join(items).encode("latin-1")
    if len(_policies) >= 1024:
        _policies.clear()
    _policies[id(buckets)] = (buckets, value)  # holds the tuple: its id is not reused meanwhile
    return value


_policies: dict[int, tuple[Sequence[Policy], bytes]] = {}


def policy_number(x: float) -> str:
    """A window as `RateLimit-Policy` writes it: `60`, `2.5`."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"
