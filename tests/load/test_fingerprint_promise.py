""" "N per window" as every honest limiter keeps it (load/fingerprint/promise.py, the judge of
`load ratelimit`): the admissions of each reference limiter of the zoo, under random arrivals,
keep at least their own reading; a limiter admitting more than N keeps none."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from load.fingerprint import promise

from . import zoo

L, W = 10, 1.0
HONEST = {
    "fixed-window": lambda: zoo.FixedWindow(L, W),
    "sliding-window": lambda: zoo.SlidingLog(L, W),
    "token-bucket": lambda: zoo.TokenBucket(L / W, L),
}
LOOSE = {  # 20% above the promise, each in its own way
    "fixed-window": lambda: zoo.FixedWindow(L + 2, W),
    "sliding-window": lambda: zoo.SlidingLog(L + 2, W),
    "token-bucket": lambda: zoo.TokenBucket(1.2 * L / W, L),
}


GAPS = (0.001, 0.002, 0.01, 0.05, 0.3, W / 2)
DRIVEN = (0.001,) * 30 + (W / 2,)  # a client that drives the limiter into its limit, as the verifier


def admissions(
    limiter: Any, seed: int, n: int = 120, gaps: tuple[float, ...] = GAPS
) -> list[tuple[float, float]]:
    """Bursts and pauses against `limiter`; the admitted ones as (sent, answered) spans."""
    rng = random.Random(seed)
    t, out = 1000.0 + rng.uniform(0, W), []
    for _ in range(n):
        t += rng.choice(gaps)
        rtt = rng.uniform(0.0005, 0.004)
        if limiter.hit("k", t + rng.uniform(0, rtt)).allowed:
            out.append((t, t + rtt))
    return out


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_every_honest_limiter_keeps_its_reading(seed: int) -> None:
    for reading, make in HONEST.items():
        spans = admissions(make(), seed)
        assert reading in promise.readings(spans, L, W), (reading, seed)


def test_a_fixed_window_admits_twice_the_limit_across_a_boundary_and_keeps_its_promise() -> None:
    spans = [(0.9 + i * 0.001, 0.9 + i * 0.001 + 0.0005) for i in range(L)]
    spans += [(1.0 + i * 0.001, 1.0 + i * 0.001 + 0.0005) for i in range(1, L + 1)]
    assert promise.readings(spans, L, W) == ["fixed-window"]
    assert promise.readings(spans, L, W, ("sliding-window",)) == []  # strict, a moving window


def test_limiters_above_the_promise_keep_no_reading() -> None:
    for reading, make in LOOSE.items():
        broken = [
            s for seed in range(5) if (s := promise.readings(admissions(make(), seed, 300, DRIVEN), L, W))
        ]
        assert not broken, (reading, broken)
