"""The fingerprinter against reference limiters written apart from the sandbox's
(load/fingerprint/zoo.py), in virtual time (jittered latencies and late wake-ups), each over
many random phases: algorithm, limit (±1), window (±10%) and key right in at least 95% of runs,
within the budgets (`python -m load.fingerprint.accuracy` runs the same over more seeds); every
planted lie flagged by name; no honest limiter flagged."""

from __future__ import annotations

from typing import Any

import pytest

from load.fingerprint import accuracy, honesty, zoo
from load.fingerprint.accuracy import kinds, probe, right
from load.fingerprint.model import Hint
from load.fingerprint.verdict import Documented, judge

L, W = 20, 10.0
RUNS = 20
KINDS = kinds(L, W)
# requests per group, as a multiple of the limit, at the most (documented): a fixed window must
# be drained twice to see two boundaries; the others once, plus the refill they are timed by
COST = {"fixed": 3.0, "log": 1.8, "counter": 2.6, "bucket": 2.2, "gcra": 2.2}


@pytest.mark.parametrize("kind", list(KINDS))
def test_identified_in_95_percent_of_runs_within_the_budget(kind: str) -> None:
    algorithm, make = KINDS[kind]
    runs = [probe(make(), seed, L, hint=Hint(L, W)) for seed in range(RUNS)]
    runs += [probe(make(), seed, L) for seed in range(RUNS, RUNS + RUNS // 2)]  # undocumented
    wrong = [
        (r.shape.algorithm, r.shape.limit, r.shape.window_s, r.shape.key)
        for r in runs
        if not right(r.shape, algorithm, L, W)
    ]
    assert len(wrong) <= 0.05 * len(runs), wrong
    for r in runs[:RUNS]:
        assert r.requests <= COST[kind] * L and r.took < 2.5 * W, (r.requests, r.took)


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_minute_of_100_costs_little_more_than_the_limit(kind: str) -> None:
    """Nurosentrix's reads (100 per minute): one probe each, requests and time bounded."""
    algorithm, make = kinds(100, 60.0)[kind]
    r = probe(make(), 7, 100, hint=Hint(100, 60.0))
    assert right(r.shape, algorithm, 100, 60.0), r.shape
    assert r.requests <= (2.2 if kind == "fixed" else 1.35) * 100 and r.took < 2.2 * 60, (r.requests, r.took)


def test_the_log_check_and_the_anchors_are_what_decide() -> None:
    """A sliding log is told by the one request sent alone coming back alone; a bucket's rate
    by two anchors, not by the documents: a bucket twice as fast as documented is measured so."""
    r = probe(zoo.TokenBucket(2 * L / W, L), 5, L, hint=Hint(L, W))
    assert r.shape.algorithm == "token-bucket" and abs((r.shape.rate or 0) - 2 * L / W) < 0.1 * 2 * L / W, (
        r.shape
    )
    log = probe(zoo.SlidingLog(L, 0.7 * W), 5, L, hint=Hint(L, W))
    assert log.shape.algorithm == "sliding-window" and abs((log.shape.window_s or 0) - 0.7 * W) < 0.07 * W, (
        log.shape
    )


@pytest.mark.parametrize("key", ["account", "global"])
def test_shared_keys_told_apart(key: str) -> None:
    r = probe(zoo.SlidingLog(L, W), 1, L, key=key, hint=Hint(L, W))
    assert r.shape.key == key


def verdict(limiter: Any, seed: int = 3, **kw: Any) -> Any:
    lies = kw.pop("lies", None)
    r = probe(limiter, seed, L, kw.pop("key", "token"), lies, Hint(L, W))
    hdr = honesty.judge(r.prober.obs, r.prober.sweeps, r.prober.first_drain, r.shape)
    doc = Documented(L, W, "token", headers=kw.pop("headers", ()), retry_after=True)
    return judge(r.shape, hdr, doc), hdr


@pytest.mark.parametrize("kind", list(KINDS))
def test_honest_limiters_keep_the_promise(kind: str) -> None:
    for seed in range(3):
        v, hdr = verdict(KINDS[kind][1](), seed, headers=("x-ratelimit-remaining",))
        assert v.verdict == "keeps", (v.problems, hdr)
        assert hdr["retry_after"] == "honest" and hdr["remaining"] == "exact"


LIES = {
    "retry-after-early": dict(lies=zoo.Lies(retry_after_short=1)),
    "remaining-off": dict(lies=zoo.Lies(remaining_off=1)),
    "reset-wrong": dict(lies=zoo.Lies(reset_ms=True)),
    "headers-missing": dict(lies=zoo.Lies(only_on_429=True), headers=("x-ratelimit-remaining",)),
    "key-account": dict(key="account"),
}


@pytest.mark.parametrize("kind", list(LIES))
def test_planted_lies_are_named(kind: str) -> None:
    v, _ = verdict(zoo.FixedWindow(L, W), **dict(LIES[kind]))
    assert v.verdict == "breaks"
    assert kind in [p["kind"] for p in v.problems], v.problems


def test_limit_ten_percent_above_the_documents() -> None:
    for make, kind in (
        (lambda: zoo.SlidingLog(L + 2, W), "limit-above"),
        (lambda: zoo.TokenBucket(1.1 * L / W * 1.1, L), "rate-above"),
    ):
        v, _ = verdict(make())
        assert kind in [p["kind"] for p in v.problems], v.problems


def test_undocumented_headers_not_demanded() -> None:
    v, hdr = verdict(zoo.TokenBucket(L / W, L), lies=zoo.Lies(counters=False, retry_after=False))
    assert hdr["counters"] == "absent"
    assert v.verdict == "keeps" or [p["kind"] for p in v.problems] == ["retry-after-missing"]


def test_the_accuracy_script_prints_a_line_per_limiter(capsys: pytest.CaptureFixture[str]) -> None:
    assert accuracy.main(["--runs", "2", "--only", "log", "--only", "bucket"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "20 per 10 s, documented, 2 runs each"
    assert [line.split()[:3] for line in out[1:]] == [["log", "2/2", "right;"], ["bucket", "2/2", "right;"]]
