"""Does a record of admissions keep "`limit` per `window`"? Every honest reading of that promise,
judged from the client's side (each admission happened somewhere in its request's round trip,
widened by `EPSILON` for the two clocks):

- sliding-window: never more than `limit` within any window;
- fixed-window: some alignment of consecutive windows holds at most `limit` in each (up to
  2 x `limit` may then fall within one window across a boundary);
- token-bucket: a bucket of `burst` (at most `limit`) refilled at `limit / window` never runs dry.

`load ratelimit` and the fingerprint's verdict accept the same readings: the documented profile
any of them, strict only the spec's own algorithm."""

from __future__ import annotations

import heapq
import math

EPSILON = 0.005  # seconds: clock granularity allowed on each side of a round trip
READINGS = ("sliding-window", "fixed-window", "token-bucket")

Span = tuple[float, float]  # (sent, answered) of one admitted request


def sliding_peak(spans: list[Span], window: float) -> tuple[int, float]:
    """The most admissions provably within less than one window: those sent no earlier than
    some request i and answered before i's send time + window - EPSILON. Returns (count, the
    time from the first send to the last answer of that group)."""
    best, best_span = 0, 0.0
    for start_i, _ in spans:
        group = [end for start, end in spans if start >= start_i and end < start_i + window - EPSILON]
        if len(group) > best:
            best, best_span = len(group), max(group) - start_i
    return best, best_span


def _fits_aligned(spans: list[Span], limit: int, window: float, phase: float) -> bool:
    """Can each admission be placed in its round trip so that no window [phase + k*window, ...)
    holds more than `limit`? (Earliest-deadline assignment of admissions to windows.)"""
    items = sorted(
        (math.floor((s - EPSILON - phase) / window), math.floor((e + EPSILON - phase) / window))
        for s, e in spans
    )
    heap: list[int] = []
    i = 0
    for k in sorted({k for pair in items for k in pair}):
        while i < len(items) and items[i][0] <= k:
            heapq.heappush(heap, items[i][1])
            i += 1
        if heap and heap[0] < k:
            return False
        for _ in range(min(limit, len(heap))):
            heapq.heappop(heap)
    return not heap and i == len(items)


def fixed_fits(spans: list[Span], limit: int, window: float) -> bool:
    """Is there an alignment of fixed windows under which the record keeps the limit?"""
    if len(spans) <= limit:
        return True
    phases = sorted({round(t % window, 4) for s, e in spans for t in (s - EPSILON, e + EPSILON)})
    return any(_fits_aligned(spans, limit, window, p) for p in phases)


def bucket_fits(spans: list[Span], limit: int, window: float, burst: int | None = None) -> bool:
    """Could a token bucket of `burst` (default `limit`) refilled at `limit / window`, full at
    the first request, have admitted them all? It could unless some requests provably admitted
    within [t0, t1] (sent no earlier than t0, answered by t1) outnumber `burst + rate (t1 - t0)`:
    the (rate, burst) envelope, which a bucket keeps and every record keeping it fits."""
    rate, cap = limit / window, float(burst or limit)
    by_start = sorted(spans)
    for i, (t0, _) in enumerate(by_start):
        ends = sorted(e for _, e in by_start[i:])
        for n, t1 in enumerate(ends, 1):
            if n > cap + rate * (t1 - t0 + 2 * EPSILON) + 1e-9:
                return False
    return True


def readings(
    spans: list[Span],
    limit: int,
    window: float,
    allowed: tuple[str, ...] = READINGS,
    burst: int | None = None,
) -> list[str]:
    """The readings in `allowed` that the record keeps (empty: it breaks the promise)."""
    judges = {
        "sliding-window": lambda: sliding_peak(spans, window)[0] <= limit,
        "fixed-window": lambda: fixed_fits(spans, limit, window),
        "token-bucket": lambda: bucket_fits(spans, limit, window, burst),
    }
    out = [r for r in allowed if judges[r]()]
    return out
