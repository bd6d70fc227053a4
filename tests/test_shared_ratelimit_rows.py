"""Under `--workers`, rate-limit rows are freed as in one process: a revoked token's rows are
deleted at once, an idle caller's by the sweep. Before: `forget` matched keys with `substr`,
which stops at the NUL inside each key, so 100,000 revocations left 100,000 rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from mock_server.clock import FrozenClock
from mock_server.shared import SharedRateLimiter


def _rows(folder: Path) -> int:
    """The rows in the table, as any process (or the operator) counts them."""
    with sqlite3.connect(folder / "state.sqlite") as db:
        return int(db.execute("SELECT count(*) FROM logs").fetchone()[0])


def test_revoked_tokens_rows_are_deleted(tmp_path: Path) -> None:
    clock = FrozenClock()
    limiter = SharedRateLimiter(tmp_path / "state.sqlite", clock)
    buckets = (limiter.bucket("read", 100, 60), limiter.bucket("write", 10, 60))
    n = 2_000
    for i in range(n):
        assert limiter.hit(f"tok_{i:06d}", buckets) is not None
    assert _rows(tmp_path) == 2 * n
    limiter.forget("tok_000001")  # not tok_0000010..19 beside it
    assert _rows(tmp_path) == 2 * n - 2
    for i in range(n):
        limiter.forget(f"tok_{i:06d}")
    assert _rows(tmp_path) == 0


def test_idle_callers_rows_are_swept(tmp_path: Path) -> None:
    clock = FrozenClock()
    limiter = SharedRateLimiter(tmp_path / "state.sqlite", clock)
    buckets = (limiter.bucket("read", 5000, 60),)
    for i in range(500):
        limiter.hit(f"idle_{i}", buckets)
    clock.advance(61)  # a whole window later, nobody of those has been seen
    for _ in range(limiter.SWEEP_EVERY):
        limiter.hit("busy", buckets)
    assert _rows(tmp_path) == 1  # only the busy caller's
    # what a limit decides is unchanged: the busy caller is refused past its 5,000
    clock.advance(61)
    decisions = [limiter.hit("busy", buckets) for _ in range(5001)]
    assert [d.allowed for d in decisions if d is not None].count(False) == 1


def test_reset_by_prefix_and_all(tmp_path: Path) -> None:
    clock = FrozenClock()
    limiter = SharedRateLimiter(tmp_path / "state.sqlite", clock)
    buckets = (limiter.bucket("read", 100, 60),)
    for key in ("a\0x", "a\0y", "ab\0x", "b\0x"):
        limiter.hit(key.split("\0")[0] + "\0" + key.split("\0")[1], buckets)
    limiter.reset("a\0")
    assert _rows(tmp_path) == 2
    limiter.reset()
    assert _rows(tmp_path) == 0
