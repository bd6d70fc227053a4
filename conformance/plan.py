"""The run's plan, said before it starts: about how many requests it will send (by rate-limit
bucket) and the least time the spec's limits (and `--rate-limit`) allow for them, so a short CI
run learns up front that it cannot finish in its `--max-time` rather than ending INCOMPLETE."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from contract import Contract

from .budget import parse_rate

PER_FAMILY = 2  # requests a domain family sends per operation, about (probes, the record it needs)


def _fmt(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


@dataclass
class Plan:
    requests: int
    by_bucket: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0  # the least time the limits allow for them
    slowest: str = ""  # the bucket (or --rate-limit) that sets that time

    def line(self, max_time: float | None) -> str:
        buckets = ", ".join(f"{k} ≈{v}" for k, v in sorted(self.by_bucket.items()))
        text = f"plan: ≈{self.requests} requests" + (f" ({buckets})" if buckets else "")
        if self.seconds:
            text += f"; the limits allow them in no less than ≈{_fmt(self.seconds)} ({self.slowest})"
        if max_time is not None and self.seconds > max_time:
            text += (
                f"; more than --max-time {_fmt(max_time)}: the run will likely end INCOMPLETE "
                f"(raise --max-time, or lower --max-examples or --phases)"
            )
        return text


def plan(contract: Contract, phases: list[str], families: int, max_examples: int, rate: str) -> Plan:
    per_op = max_examples * len(phases) + PER_FAMILY * families
    by_bucket: dict[str, int] = {}
    total = 0
    for op in contract.operations:
        total += per_op
        for name in op.rate_buckets:
            by_bucket[name] = by_bucket.get(name, 0) + per_op
    floors = {
        name: (math.ceil(n / b.limit) - 1) * b.window
        for name, n in by_bucket.items()
        if (b := contract.buckets.get(name)) is not None and b.limit > 0
    }
    parsed = parse_rate(rate)
    if parsed is not None:
        floors[f"--rate-limit {rate}"] = (math.ceil(total / parsed[0]) - 1) * parsed[1]
    slowest = max(floors, key=lambda k: floors[k], default="")
    return Plan(total, by_bucket, max(floors.values(), default=0.0), slowest)
