"""ratelimit: rate-limit headers are present and coherent on every response (checked per
response, see `responses.rate_limit_problems`), and the documented limit is enforced with a 429
in the error envelope carrying `Retry-After`.

The enforcement probe runs last: it sends one cheap read (outside the budget) until the backend
answers 429, at most a little over the documented limit, then the budget waits out Retry-After.
"""

from __future__ import annotations

import time

from contract import Operation
from judge.headers import advertised_window, header

from . import LAST, Context, family
from .common import protected


def probe_operation(ctx: Context) -> Operation | None:
    """The cheapest read: a GET without path parameters, in the fewest buckets, lists first."""
    candidates = [
        op for op in protected(ctx.contract) if op.method == "get" and not op.path_params and op.buckets
    ]
    candidates.sort(key=lambda op: (len(op.buckets), not (op.resource and op.resource.op == "list")))
    return candidates[0] if candidates else None


@family(
    "ratelimit",
    "rate-limit headers present and coherent; the documented limit answers 429 + Retry-After",
    kind=LAST,
    per_response=True,
)
def run(ctx: Context) -> None:
    op = probe_operation(ctx)
    if op is None or not op.buckets:
        ctx.results.skip("ratelimit", "no authenticated GET without path parameters to probe the limit with")
        return
    buckets = ctx.judged_op(op).buckets  # in the documented profile, only limits the documents state
    if not buckets:
        ctx.results.skip(
            "ratelimit",
            "the documents state no rate limit for this API: nothing documented to verify "
            "(headers a backend sends are still checked for coherence)",
            op.label,
        )
        return
    limit = min(b.limit for b in buckets)
    documented = window = min(b.window for b in buckets)
    started = time.monotonic()
    accepted = 0
    for _ in range(limit + 2):
        ex = ctx.client.call(op, paced=False)
        window = min(window, advertised_window(ex.response_headers) or window)
        if ex.status == 429:
            ctx.results.ok("ratelimit", op.label)
            if header(ex.response_headers, "Retry-After") is None:
                ctx.fail("ratelimit", ex, "the 429 carries no Retry-After", key="retry-after")
            return
        if ex.status == 401:
            ctx.fail("ratelimit", ex, "the token was rejected during the rate-limit probe", key="401")
            return
        accepted += 1
    elapsed = time.monotonic() - started
    if elapsed < window:
        ctx.fail(
            "ratelimit",
            ex,
            f"{accepted} requests in {elapsed:.1f}s were all accepted; the spec documents "
            f"{limit} per {documented:g}s (x-rate-limit {[b.name for b in buckets]})",
            key="not-enforced",
        )
    else:  # e.g. the sandbox run with --rate-window 1: a burst cannot fit in its window
        ctx.results.skip(
            "ratelimit",
            f"the probe took {elapsed:.1f}s, longer than the backend's {window:g}s "
            "window: enforcement could not be observed",
            op.label,
        )
