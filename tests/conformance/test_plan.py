"""A short run plans its budget: the requests it will send, about, and the least time the spec's
limits allow for them, said up front (and in the report) with a warning when --max-time is
shorter; the time-left estimate counts down and never grows while the run waits on a bucket."""

from __future__ import annotations

from conformance.budget import Budget
from conformance.plan import plan
from conformance.progress import Progress
from conformance.results import Results
from contract import load


def test_the_plan_counts_requests_by_bucket_and_warns_of_a_short_max_time() -> None:
    contract = load("nurosentrix")
    p = plan(contract, ["examples", "coverage"], families=3, max_examples=5, rate="auto")
    per_op = 5 * 2 + 2 * 3
    assert p.requests == per_op * len(contract.operations)
    writes = sum(1 for op in contract.operations if "writes" in op.rate_buckets)
    if writes:
        assert p.by_bucket["writes"] == per_op * writes
    assert p.seconds > 0 and p.slowest
    assert "INCOMPLETE" in p.line(max_time=p.seconds / 2)
    assert "INCOMPLETE" not in p.line(max_time=p.seconds * 2)
    paced = plan(contract, ["examples"], families=0, max_examples=1, rate="10/m")
    assert paced.seconds >= (paced.requests // 10 - 1) * 60 - 1 and "--rate-limit 10/m" in paced.line(None)


def test_time_left_counts_down_and_never_grows() -> None:
    progress = Progress(Budget("auto"), Results("nurosentrix", "http://x"), ["a", "b", "c", "d"], mode="off")
    progress.started = 0.0
    assert progress.left(5.0) is None  # nothing finished: no estimate yet
    progress.index = 2  # one step finished after 10 s: 3 left, ≈30 s
    assert progress.left(10.0) == 30.0
    assert progress.left(25.0) == 15.0  # waiting on a bucket inside a step: it counts down
    progress.index = 3  # the second step took long: a fresh estimate would say 100 s more
    assert progress.left(100.0) == 0.0  # never later than the last estimate
    fresh = Progress(Budget("auto"), Results("n", "u"), ["a", "b"], mode="off", max_time=20.0)
    fresh.started, fresh.index = 0.0, 2
    assert fresh.left(15.0) == 5.0  # capped by --max-time (the run ends then)
