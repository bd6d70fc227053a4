"""The rate-limit contract verifier: drive one token past its documented limits with
concurrent users and judge, from what was observed, whether the API keeps its word.

Everything it expects comes from the spec (`contract`, through `load.roles`): the buckets and their limits
(`x-sandbox.rate-limits`), which bucket each operation counts in (`x-rate-limit`), where the
error code sits in the envelope, the documented response headers and the 429 body schema.

For each bucket, in the spec's order, it picks a cheap operation counting in it:
- a read counting in that bucket alone (`all`: the API's main list), or else
- a create plus the delete of what it creates (`write`); the deletes clean up.
and runs these steps, every one of them bounded:

1. burst     2 x limit requests from `--users` concurrent users, as fast as they go;
2. probe     one more request, alone: it must be refused (429);
3. honesty   wait the probe's Retry-After (from its receipt), retry once: it must succeed;
   (read)    then at once another burst of 2 x limit: a moving window has freed only what
             left it, a fixed window that reset in between admits a whole new budget;
4. silence   wait one full window after the last accepted request (of any phase);
5. recovery  `limit` concurrent requests: all accepted, X-RateLimit-Remaining counting
             limit-1 .. 0; then one more: refused. Its Retry-After is tested as in 3 when
             the first test was weak (a Retry-After under half the window) and, for writes,
             by the first delete of the clean-up.
Every response is checked as it arrives (refusals are 429 in the API's error envelope with a
usable Retry-After; the documented limit/remaining headers are present and agree with the
documented limits) and, at the end, the accepted requests of each bucket are judged with a
sliding window.

"Never more than `limit` accepted in any window" is judged conservatively, with the client's
clock. A request's admission happened somewhere between sending it and receiving its answer,
so `limit + 1` accepted requests prove a violation only when the last answer came less than
one window (minus 5 ms for the two clocks' granularity) after the first was sent: each
request gets its own duration as tolerance. The figure printed as "observed" places each
request at the midpoint of its round trip; "certain" is the conservative one.

Only the given base URL is contacted (paths relative to it; redirects are not followed),
with a hard cap on requests and on total time.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import httpx

from contract import Bucket, Operation, format_seconds
from judge.headers import parse_retry_after, parse_structured
from judge.schema import first_error

from .fingerprint import promise
from .roles import ApiContract

EPSILON = promise.EPSILON  # seconds: clock granularity allowed when judging "within one window"
# The rate-limit headers checked for presence when the spec documents them on the answer.
RATE_HEADERS = (
    "RateLimit-Policy",
    "RateLimit",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
)
# Most telling first, in the final list of problems.
SEVERITY = (
    "limit-exceeded",
    "budget-not-restored",
    "not-429",
    "retry-after-missing",
    "retry-after-invalid",
    "retry-after-dishonest",
    "retry-after-early",
    "retry-after-too-long",
    "envelope",
)
_NOT_JSON = object()


class UsageError(Exception):
    """Nothing could be judged: bad arguments, unreachable URL, token refused (exit 2)."""


class Bounds(Exception):
    """The verifier's own cap on requests or time was reached."""


def margin(window: float) -> float:
    """Slack added to every wait (scheduling, the two clocks' rates)."""
    return 0.05 + 0.01 * window


@dataclass
class Obs:
    """One request as the client saw it."""

    op: Operation
    buckets: tuple[str, ...]
    step: str
    start: float  # time.monotonic() just before sending
    end: float  # time.monotonic() once the whole answer was read
    status: int  # 0: no HTTP answer (transport error)
    headers: httpx.Headers
    body: Any
    error: str | None = None

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300

    @property
    def refused(self) -> bool:
        return self.status == 429


@dataclass
class Problem:
    kind: str
    bucket: str
    text: str
    count: int = 1

    def line(self) -> str:
        more = f" (x{self.count})" if self.count > 1 else ""
        return f"[{self.kind}] {self.bucket}: {self.text}{more}"


@dataclass
class BucketFigures:
    bucket: Bucket
    ops: str
    bursts: list[str] = field(default_factory=list)  # accepted/sent of each burst
    retry_after: set[int] = field(default_factory=set)
    honest: str = "not tested"
    recovery: str = "not tested"
    certain: int = 0
    observed: int = 0
    readings: list[str] = field(default_factory=list)  # honest readings the admissions keep


def certain_peak(spans: list[tuple[float, float]], window: float) -> tuple[int, float]:
    """The most accepted requests provably admitted within less than one window (see
    `load.fingerprint.promise.sliding_peak`)."""
    return promise.sliding_peak(spans, window)


def observed_peak(spans: list[tuple[float, float]], window: float) -> int:
    """The most accepted requests in any window, each placed at the midpoint of its round trip."""
    mids = sorted((s + e) / 2 for s, e in spans)
    best, lo = 0, 0
    for hi, t in enumerate(mids):
        while mids[lo] <= t - window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


class Verifier:
    def __init__(
        self,
        contract: ApiContract,
        base_url: str,
        token: str,
        users: int = 10,
        buckets: list[str] | None = None,
        max_requests: int | None = None,
        max_time: float | None = None,
        timeout: float = 10.0,
        out: TextIO = sys.stdout,
        profile: str = "documented",
    ) -> None:
        self.c = contract
        # documented: judged only by what the vendor documents say (any honest reading of "N per
        # window"; only the headers, 429 body and codes they name); strict: the spec's choices too
        self.strict = profile == "strict"
        self.view = contract.spec if self.strict else contract.spec.documented
        self.base_url = contract.base_url(base_url)
        self.token = token
        self.users = max(1, users)
        self.out = out
        self.timeout = timeout
        self.run_id = secrets.token_hex(3)
        chosen = buckets or list(contract.buckets)
        unknown = set(chosen) - set(contract.buckets)
        if unknown:
            raise UsageError(
                f"unknown bucket(s) {', '.join(sorted(unknown))}; spec has {', '.join(contract.buckets)}"
            )
        self.plan: list[tuple[Bucket, Operation, Operation | None, bool]] = []
        self.skipped: list[str] = []
        for name in chosen:
            read = contract.read_op_for(name)
            pair = None if read else contract.write_pair_for(name)
            if read is not None:
                self.plan.append((contract.buckets[name], read, None, False))
            elif pair is not None:
                self.plan.append((contract.buckets[name], pair[0], pair[1], True))
            else:
                self.skipped.append(name)
        windows = [b.window for b, *_ in self.plan] or [1.0]
        limits = sum(b.limit for b, *_ in self.plan)
        self.max_requests = max_requests or 6 * limits + 20 * len(self.plan) + 20
        self.max_time = max_time or (5 * max(windows) + 15) * max(1, len(self.plan)) + 30
        self.obs: list[Obs] = []
        self.problems: dict[tuple[str, str], Problem] = {}
        self.figures: dict[str, BucketFigures] = {}
        self.notes: list[str] = []
        self._deadline = 0.0

    # -- output -----------------------------------------------------------------------------
    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def problem(self, kind: str, bucket: str, text: str) -> None:
        key = (kind, bucket)
        if key in self.problems:
            self.problems[key].count += 1
        else:
            self.problems[key] = Problem(kind, bucket, text)

    # -- requests ---------------------------------------------------------------------------
    async def send(self, op: Operation, step: str, bucket: str, json: Any = None, **path_params: str) -> Obs:
        if len(self.obs) >= self.max_requests:
            raise Bounds(f"the cap of {self.max_requests} requests was reached")
        if time.monotonic() > self._deadline:
            raise Bounds(f"the time cap of {self.max_time:.0f} s was reached")
        start = time.monotonic()
        try:
            r = await self.client.request(
                op.method.upper(), self.c.path(op, **path_params).lstrip("/"), json=json
            )
            end = time.monotonic()
            try:
                body = r.json() if r.content else None
            except ValueError:
                body = _NOT_JSON
            o = Obs(op, tuple(op.rate_buckets), step, start, end, r.status_code, r.headers, body)
        except httpx.HTTPError as exc:
            o = Obs(op, tuple(op.rate_buckets), step, start, time.monotonic(), 0, httpx.Headers(), None)
            o.error = f"{type(exc).__name__}: {exc}"
        self.obs.append(o)
        self.check(o, bucket)
        return o

    async def burst(self, n: int, one: Callable[[int], Awaitable[Obs]]) -> list[Obs]:
        todo = iter(range(n))
        done: list[Obs] = []

        async def user() -> None:
            for i in todo:  # one iterator shared by every user: n requests in all
                done.append(await one(i))

        await asyncio.gather(*(user() for _ in range(min(self.users, n))))
        return done

    async def sleep_until(self, when: float, why: str) -> None:
        wait = when - time.monotonic()
        if wait <= 0:
            return
        if when > self._deadline:
            raise Bounds(f"waiting {wait:.1f} s ({why}) would pass the time cap of {self.max_time:.0f} s")
        if wait >= 1:
            self.say(f"  waiting {wait:.1f} s: {why}")
        await asyncio.sleep(wait)

    async def silence(self, op: Operation) -> None:
        """Wait until one full window has passed since the last accepted request that counted
        in any bucket `op` counts in: every such bucket is then empty on the server."""
        names = set(op.rate_buckets)
        last = max((o.end for o in self.obs if o.accepted and names & set(o.buckets)), default=None)
        if last is None:
            return
        window = max(self.c.buckets[n].window for n in names)
        await self.sleep_until(last + window + margin(window), "a full window of silence")

    # -- per-response checks ------------------------------------------------------------------
    def vop(self, op: Operation) -> Operation:
        """`op` as the profile sees it (the documented view drops inferred headers and bodies)."""
        return self.view.by_id(op.operation_id) or op

    def named(self, op: Operation, status: int) -> set[str]:
        """The rate-limit headers (lower case) whose values are judged on this answer: strict,
        all the conventional ones; documented, only those the documents name."""
        if self.strict:
            return {h.lower() for h in RATE_HEADERS}
        return set(self.vop(op).response_headers(status))

    def rate_code(self, op: Operation) -> str | None:
        """The error code a 429 must carry: strict, the spec's own 429 example's; documented,
        none beyond what the documented 429 schema constrains (checked with the schema)."""
        if not self.strict:
            return None
        r = op.responses.get("429")
        codes = [c for e in (r.examples if r else ()) if (c := self.c.error_code(e))]
        return codes[0] if codes else None

    def check(self, o: Obs, bucket: str) -> None:
        op = o.op
        if o.status == 0:
            self.problem("transport", bucket, f"{op.method.upper()} {op.path}: {o.error}")
            return
        if o.accepted:
            self.check_headers(o, bucket)
            return
        if o.refused:
            self.check_refusal(o, bucket)
            return
        code = self.c.error_code(o.body) if o.body is not _NOT_JSON else None
        self.problem(
            "not-429",
            bucket,
            f"{op.method.upper()} {op.path} answered {o.status}{' ' + code if code else ''} during the test; "
            "a request is either accepted or refused with 429",
        )

    def check_headers(self, o: Obs, bucket: str) -> None:
        op = o.op
        documented = self.vop(op).response_headers(o.status)
        named = self.named(op, o.status)
        limits = {b.limit: b.name for b in self.c.buckets_of(op)}
        limit_h = o.headers.get("x-ratelimit-limit") if "x-ratelimit-limit" in named else None
        remaining_h = o.headers.get("x-ratelimit-remaining") if "x-ratelimit-remaining" in named else None
        missing = [h for h in RATE_HEADERS if h.lower() in documented and h.lower() not in o.headers]
        if missing:
            self.problem(
                "headers-missing",
                bucket,
                f"{o.status} answers lack {', '.join(missing)} (documented by the spec)",
            )
        for name, value in (("X-RateLimit-Limit", limit_h), ("X-RateLimit-Remaining", remaining_h)):
            if value is not None and not value.strip().isdigit():
                self.problem("headers-invalid", bucket, f"{name}: {value!r} is not a non-negative integer")
        if limit_h and limit_h.strip().isdigit() and int(limit_h) not in limits:
            documented_limits = ", ".join(f"{n} {lim}" for lim, n in limits.items())
            self.problem(
                "headers-limit", bucket, f"X-RateLimit-Limit says {limit_h}; documented: {documented_limits}"
            )
        if (
            limit_h
            and remaining_h
            and limit_h.strip().isdigit()
            and remaining_h.strip().isdigit()
            and int(remaining_h) >= int(limit_h)
        ):
            self.problem(
                "headers-countdown",
                bucket,
                f"an accepted request left X-RateLimit-Remaining {remaining_h} "
                f"of X-RateLimit-Limit {limit_h}",
            )
        self.check_policy(o, bucket, named)

    def check_policy(self, o: Obs, bucket: str, named: set[str]) -> None:
        raw = o.headers.get("ratelimit-policy") if "ratelimit-policy" in named else None
        policy = parse_structured(raw)
        if policy is not None:
            for name, params in policy.items():
                b = self.c.buckets.get(name)
                if b is None:
                    continue
                q, w = params.get("q"), params.get("w")
                if (q is not None and q != str(b.limit)) or (w is not None and _float(w) != b.window):
                    self.problem(
                        "headers-policy",
                        bucket,
                        f"RateLimit-Policy advertises {raw}; documented {name}: {b.describe()}",
                    )
        state = parse_structured(o.headers.get("ratelimit")) if "ratelimit" in named else None
        remaining_h = o.headers.get("x-ratelimit-remaining")
        if state and remaining_h and remaining_h.strip().isdigit():
            rs = [p.get("r") for p in state.values() if p.get("r") is not None]
            if rs and remaining_h.strip() not in rs:
                self.problem(
                    "headers-incoherent",
                    bucket,
                    f"RateLimit {o.headers.get('ratelimit')} disagrees with "
                    f"X-RateLimit-Remaining {remaining_h}",
                )

    def check_refusal(self, o: Obs, bucket: str) -> None:
        op = o.op
        what = f"{op.method.upper()} {op.path}"
        if o.body is _NOT_JSON or o.body is None:
            self.problem(
                "envelope", bucket, f"a 429 from {what} has no JSON body (expected the error envelope)"
            )
        else:
            code = self.c.error_code(o.body)
            where = ".".join(self.c.error_code_path or ())
            expected = self.rate_code(op)
            if expected is not None and code != expected:
                self.problem(
                    "envelope", bucket, f"a 429 from {what} has {where}={code!r}, expected {expected!r}"
                )
            schema = self.vop(op).response_schema(429)
            if schema is not None:
                error = first_error(o.body, schema, by_text=False)
                if error is not None:
                    self.problem(
                        "envelope",
                        bucket,
                        f"a 429 body from {what} does not match the spec's 429 schema: {error}",
                    )
        raw = o.headers.get("retry-after")
        ra = parse_retry_after(raw)
        window = max(self.c.buckets[n].window for n in op.rate_buckets)
        if raw is None and "retry-after" in self.vop(op).response_headers(429):
            self.problem("retry-after-missing", bucket, f"a 429 from {what} has no Retry-After header")
        elif raw is None:
            self.notes.append(f"a 429 from {what} has no Retry-After (the documents name none)")
        elif ra is None:
            self.problem(
                "retry-after-invalid", bucket, f"a 429 from {what} has an unusable Retry-After: {raw!r}"
            )
        elif ra > math.ceil(window) + 1:
            self.problem(
                "retry-after-too-long",
                bucket,
                f"a 429 said Retry-After: {ra}, longer than the {format_seconds(window)} window "
                "(a slot frees within it)",
            )
        documented = self.vop(op).response_headers(429)
        named = self.named(op, 429)
        missing = [h for h in RATE_HEADERS if h.lower() in documented and h.lower() not in o.headers]
        if missing:
            self.problem(
                "headers-missing", bucket, f"429 answers lack {', '.join(missing)} (documented by the spec)"
            )
        remaining_h = o.headers.get("x-ratelimit-remaining") if "x-ratelimit-remaining" in named else None
        if remaining_h is not None and remaining_h.strip() != "0":
            self.problem(
                "headers-countdown", bucket, f"a 429 carried X-RateLimit-Remaining {remaining_h} (not 0)"
            )
        state = parse_structured(o.headers.get("ratelimit")) if "ratelimit" in named else None
        if state and ra is not None:
            for params in state.values():
                t = params.get("t")
                if params.get("r") == "0" and t is not None and t.isdigit() and ra < int(t):
                    self.problem(
                        "retry-after-early",
                        bucket,
                        f"a 429 said Retry-After: {ra} but RateLimit says the bucket resets in {t} s",
                    )
        if "429" not in op.responses and "4XX" not in self.vop(op).responses:
            self.notes.append(f"{op.operation_id} answered 429, which its spec entry does not document")

    # -- steps --------------------------------------------------------------------------------
    async def probe(self, one: Callable[[], Awaitable[Obs]], tries: int) -> Obs | None:
        """Requests one at a time until one is refused."""
        for _ in range(tries):
            o = await one()
            if o.refused:
                return o
            if not o.accepted:
                return None
        return None

    async def honesty(
        self, b: Bucket, fig: BucketFigures, refusal: Obs | None, retry: Callable[[], Awaitable[Obs]]
    ) -> Obs | None:
        if refusal is None:
            fig.honest = "no refusal to test"
            return None
        ra = parse_retry_after(refusal.headers.get("retry-after"))
        if ra is None:
            fig.honest = "no usable Retry-After"
            return None
        wait = min(ra, math.ceil(b.window) + 1)
        await self.sleep_until(refusal.end + wait + margin(b.window), f"the Retry-After of {ra} s")
        o = await retry()
        elapsed = o.start - refusal.end
        if o.accepted:
            if "DISHONEST" not in fig.honest:
                fig.honest = f"{ra} s, honest"
            self.say(f"  Retry-After honest: a 429 said {ra} s; the retry {elapsed:.2f} s later was accepted")
        else:
            again = o.headers.get("retry-after")
            fig.honest = f"{ra} s, DISHONEST"
            self.problem(
                "retry-after-dishonest",
                b.name,
                f"a 429 said Retry-After: {ra}; the retry {elapsed:.2f} s later was answered {o.status}"
                + (f" with Retry-After: {again}" if again else ""),
            )
            self.say(f"  Retry-After DISHONEST: said {ra} s; the retry {elapsed:.2f} s later got {o.status}")
        return o

    def judge_recovery(self, b: Bucket, fig: BucketFigures, op: Operation, rec: list[Obs], nxt: Obs) -> None:
        accepted = [o for o in rec if o.accepted]
        counted = "x-ratelimit-remaining" in self.named(op, 200) | self.named(op, 201)
        rems = sorted(
            int(v)
            for o in accepted
            if counted and (v := o.headers.get("x-ratelimit-remaining")) and v.strip().isdigit()
        )
        tightest = min(x.limit for x in self.c.buckets_of(op))
        span = max(o.end for o in rec) - min(o.start for o in rec) if rec else 0.0
        expected = list(range(tightest - len(accepted), tightest))
        shown = f" (X-RateLimit-Remaining {rems[-1]}..{rems[0]})" if rems else ""
        fig.recovery = f"{len(accepted)}/{b.limit}, next {nxt.status or 'error'}"
        self.say(
            f"  after the silence: {len(accepted)} of {len(rec)} accepted{shown}; "
            f"request {len(rec) + 1} got {nxt.status or nxt.error}"
        )
        if len(accepted) < b.limit:
            statuses = sorted({o.status for o in rec if not o.accepted})
            self.problem(
                "budget-not-restored",
                b.name,
                f"after a full {format_seconds(b.window)} window of silence only {len(accepted)} of "
                f"{b.limit} requests were accepted (others: {', '.join(map(str, statuses))}); "
                "the budget must come back in full",
            )
        elif rems and len(rems) == len(accepted) and rems != expected and span < b.window - EPSILON:
            # (a recovery longer than the window may see its own first requests expire)
            self.problem(
                "headers-countdown",
                b.name,
                f"from a full budget, X-RateLimit-Remaining of {len(accepted)} accepted requests was not "
                f"{tightest - 1}..{tightest - len(accepted)} (got {_ranges(rems)})",
            )
        # Request limit + 1 being accepted is judged with the others, by judge_windows: only if
        # it was admitted within one window of the first is that a violation.

    async def read_phase(self, b: Bucket, op: Operation) -> None:
        fig = self.figures[b.name] = BucketFigures(b, f"{op.method.upper()} {op.path} ({op.operation_id})")
        self.say(f"\n[{b.name}] {fig.ops}, documented {b.describe()}")
        await self.silence(op)

        async def one(_: int = 0, step: str = "burst") -> Obs:
            return await self.send(op, step, b.name)

        await self.report_burst(fig, await self.burst(2 * b.limit, one))
        refusal = await self.probe(lambda: one(step="probe"), b.limit + 1)
        retry = await self.honesty(b, fig, refusal, lambda: one(step="retry"))
        if retry is not None and retry.accepted:
            # At once again: a moving window has freed only what left it, a fixed window that
            # reset since the first burst a whole new budget (the judge knows both readings).
            await self.report_burst(fig, await self.burst(2 * b.limit, lambda i: one(i, "burst-2")), "again")
        await self.silence(op)
        rec = await self.burst(b.limit, lambda i: one(i, "recovery"))
        nxt = await one(step="next")
        self.judge_recovery(b, fig, op, rec, nxt)
        first = parse_retry_after(refusal.headers.get("retry-after")) if refusal else None
        if nxt.refused and first is not None and first < b.window / 2 and "DISHONEST" not in fig.honest:
            # A short Retry-After (a slow burst, or a lie) made a weak first test: once more.
            await self.honesty(b, fig, nxt, lambda: one(step="retry-2"))

    async def write_phase(self, b: Bucket, create: Operation, delete: Operation | None) -> None:
        ops = f"{create.method.upper()} {create.path} ({create.operation_id})"
        if delete is not None:
            ops += f" + {delete.method.upper()} {delete.path} ({delete.operation_id})"
        fig = self.figures[b.name] = BucketFigures(b, ops)
        self.say(f"\n[{b.name}] {ops}, documented {b.describe()}")
        ids: list[str] = []
        counter = iter(range(10**6))

        async def make(_: int = 0, step: str = "burst") -> Obs:
            body = self.c.new_body(create, f"load-{self.run_id}-{next(counter)}")
            o = await self.send(create, step, b.name, json=body)
            data = self.c.data(o.body) if o.accepted else None
            if isinstance(data, dict) and isinstance(data.get("id"), str):
                ids.append(data["id"])
            return o

        async def remove(_: int = 0, step: str = "recovery") -> Obs:
            if delete is None or not ids:
                return await make(step=step)
            rid = ids.pop()
            o = await self.send(delete, step, b.name, **{self.c.path_params(delete)[0]: rid})
            if not o.accepted and o.status != 404:
                ids.append(rid)
            return o

        await self.silence(create)
        await self.report_burst(fig, await self.burst(2 * b.limit, make))
        refusal = await self.probe(lambda: make(step="probe"), b.limit + 1)
        await self.honesty(b, fig, refusal, lambda: make(step="retry"))
        await self.silence(create)
        rec = await self.burst(b.limit, remove)
        nxt = await remove(step="next")
        self.judge_recovery(b, fig, create, rec, nxt)
        if delete is not None and ids:  # clean up; the first delete re-tests Retry-After
            if nxt.refused and "DISHONEST" not in fig.honest:
                await self.honesty(b, fig, nxt, lambda: remove(step="cleanup"))
            await self.cleanup(b, delete, ids, remove)
        if ids:
            left = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
            self.notes.append(
                f"{len(ids)} resource(s) created by {create.operation_id} were left behind: {left}"
            )

    async def cleanup(
        self, b: Bucket, delete: Operation, ids: list[str], remove: Callable[..., Awaitable[Obs]]
    ) -> None:
        tries = 3 * len(ids) + 3
        while ids and tries > 0:
            tries -= 1
            o = await remove(step="cleanup")
            if o.refused:
                ra = parse_retry_after(o.headers.get("retry-after"))
                wait = min(ra if ra is not None else b.window, b.window)
                await self.sleep_until(o.end + wait + margin(b.window), "cleanup, honouring Retry-After")
            elif not o.accepted and o.status != 404:
                break

    async def report_burst(self, fig: BucketFigures, obs: list[Obs], label: str = "burst") -> None:
        acc = sum(o.accepted for o in obs)
        ref = [o for o in obs if o.refused]
        other = len(obs) - acc - len(ref)
        took = max(o.end for o in obs) - min(o.start for o in obs)
        fig.bursts.append(f"{acc}/{len(obs)}")
        self.say(
            f"  {label}: {len(obs)} requests from {min(self.users, len(obs))} users in {took:.2f} s -> "
            f"{acc} accepted, {len(ref)} refused (429)" + (f", {other} other" if other else "")
        )
        ras = sorted({ra for o in ref if (ra := parse_retry_after(o.headers.get("retry-after"))) is not None})
        fig.retry_after.update(ras)
        if ref:
            codes = sorted({str(self.c.error_code(o.body)) for o in ref if o.body is not _NOT_JSON})
            shown = f"Retry-After {ras[0]}..{ras[-1]} s" if ras else "no usable Retry-After"
            self.say(f"  refusals: {len(ref)} x 429 ({', '.join(codes)}); {shown}")

    # -- the whole run ------------------------------------------------------------------------
    async def preflight(self) -> None:
        read = next((op for n in self.c.buckets if (op := self.c.read_op_for(n)) is not None), None)
        if read is None:
            return
        try:
            r = await self.client.get(self.c.path(read).lstrip("/"))
        except httpx.HTTPError as exc:
            raise UsageError(f"cannot reach {self.base_url}: {type(exc).__name__}: {exc}") from None
        if r.status_code in (401, 403):
            raise UsageError(
                f"the token was refused: GET {read.path} answered {r.status_code} ({r.text[:200]})"
            )
        if r.status_code == 404:
            raise UsageError(
                f"GET {self.base_url}{read.path} answered 404: is --base-url the API's base URL?"
            )
        if r.status_code == 429:
            self.notes.append("the token was already rate limited when the run started")
        self.check_advertised_window(r.headers.get("ratelimit-policy"))

    def check_advertised_window(self, raw: str | None) -> None:
        """Without `--window`, a backend advertising another window than the documented one (a
        sandbox started with `--rate-window 3`) would fail every check for hours: say so first."""
        if self.c.window_override:
            return
        advertised = {
            name: w
            for name, params in (parse_structured(raw) or {}).items()
            if name in self.c.buckets and (w := _float(params.get("w", ""))) is not None
        }
        differing = {w for name, w in advertised.items() if w != self.c.buckets[name].window}
        if advertised and len(set(advertised.values())) == 1 and differing:
            (w,) = differing
            documented = ", ".join(f"{n} {format_seconds(b.window)}" for n, b in self.c.buckets.items())
            raise UsageError(
                f"the backend advertises a {format_seconds(w)} window (RateLimit-Policy: {raw}) where the "
                f"spec documents {documented}; if it runs with that window on purpose (a sandbox started "
                f"with --rate-window {w:g}), run again with --window {w:g}"
            )

    async def run(self) -> bool:
        if not self.plan:
            raise UsageError(f"no operation of {self.c.name} exercises bucket(s) {', '.join(self.skipped)}")
        self._deadline = time.monotonic() + self.max_time
        docs = ", ".join(f"{b.name} {b.describe()}" for b in self.c.buckets.values())
        self.say(f"Rate-limit contract of {self.c.name} at {self.base_url}")
        self.say(f"  documented (x-sandbox.rate-limits): {docs}")
        if self.c.window_override:
            shown = ", ".join(f"{n} {format_seconds(w)}" for n, w in self.c.documented_windows.items())
            self.say(f"  window overridden to {format_seconds(self.c.window_override)} (documented: {shown})")
        self.say(
            f"  {self.users} concurrent users; caps: {self.max_requests} requests, {self.max_time:.0f} s"
        )
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        limits = httpx.Limits(max_connections=self.users + 2, max_keepalive_connections=self.users + 2)
        async with httpx.AsyncClient(
            base_url=self.base_url + "/",
            headers=headers,
            timeout=self.timeout,
            follow_redirects=False,
            limits=limits,
        ) as self.client:
            await self.preflight()
            try:
                for b, op, delete, is_write in self.plan:
                    if is_write:
                        await self.write_phase(b, op, delete)
                    else:
                        await self.read_phase(b, op)
            except Bounds as exc:
                self.problem("incomplete", "-", f"stopped early: {exc}")
        self.judge_windows()
        return self.summary()

    def judge_windows(self) -> None:
        for name, fig in self.figures.items():
            b = fig.bucket
            spans = [(o.start, o.end) for o in self.obs if o.accepted and name in o.buckets]
            if not spans:
                continue
            fig.certain, span = certain_peak(spans, b.window)
            fig.observed = observed_peak(spans, b.window)
            allowed = (b.algorithm,) if self.strict else promise.READINGS
            fig.readings = promise.readings(spans, b.limit, b.window, allowed, b.burst)
            if not fig.readings:
                said = " or ".join(allowed)
                text = (
                    f"{len(spans)} accepted requests keep no honest reading ({said}) of "
                    f"{b.limit} per {format_seconds(b.window)}: {fig.certain} within {span:.2f} s"
                )
                self.problem("limit-exceeded", name, text)
                self.problems[("limit-exceeded", name)].text = text  # the judge's figure wins

    def summary(self) -> bool:
        self.say("\nObserved vs documented")
        rows = [
            (
                "bucket",
                "documented",
                "max accepted in a window",
                "kept as",
                "bursts",
                "Retry-After",
                "after silence",
            )
        ]
        for name, fig in self.figures.items():
            ras = sorted(fig.retry_after)
            ra = (f"{ras[0]}..{ras[-1]} s" if len(ras) > 1 else f"{ras[0]} s") if ras else "-"
            rows.append(
                (
                    name,
                    fig.bucket.describe(),
                    f"{fig.observed} (certain {fig.certain}) of {fig.bucket.limit}",
                    "/".join(fig.readings) or "none",
                    (", ".join(fig.bursts) + " accepted") if fig.bursts else "-",
                    f"{ra}; {fig.honest}",
                    fig.recovery,
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            self.say("  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
        for name in self.skipped:
            self.say(f"  {name}: skipped (no operation of the spec exercises it without side effects)")
        ok = sum(o.accepted for o in self.obs)
        self.say(
            f"  {len(self.obs)} requests in all: {ok} accepted, {sum(o.refused for o in self.obs)} refused"
        )
        for note in dict.fromkeys(self.notes):
            self.say(f"  note: {note}")
        if self.problems:
            self.say(f"\nFAIL: the rate-limit contract does not hold ({len(self.problems)} problem(s))")
            rank = {k: i for i, k in enumerate(SEVERITY)}
            for p in sorted(self.problems.values(), key=lambda p: rank.get(p.kind, len(rank))):
                self.say(f"  - {p.line()}")
            return False
        self.say("\nPASS: the rate-limit contract holds")
        return True


def _float(x: str) -> float | None:
    try:
        return float(x)
    except ValueError:
        return None


def _ranges(values: list[int]) -> str:
    shown = ", ".join(map(str, values[:8]))
    return shown + (", ..." if len(values) > 8 else "")


def verify(
    api: str,
    base_url: str,
    token: str,
    window: float | None = None,
    users: int = 10,
    buckets: list[str] | None = None,
    max_requests: int | None = None,
    max_time: float | None = None,
    out: TextIO = sys.stdout,
    profile: str = "documented",
) -> int:
    """Run the verifier; the process exit code: 0 holds, 1 does not, 2 usage error.

    `profile` documented (the default) verifies only the limits the vendor documents state;
    strict also the sandbox's own choices (`inferred:` buckets)."""
    from .roles import ContractError

    try:
        contract = ApiContract.load(api, window)
        if profile == "documented" and not buckets:
            buckets = [n for n, b in contract.spec.buckets.items() if b.provenance.documented]
            inferred = [b for b in contract.spec.buckets.values() if b.provenance.inferred]
            if not buckets:
                print(
                    f"{api}: the documents state no rate limit: nothing documented to verify. The "
                    f"sandbox's own choice ({', '.join(f'{b.name} {b.describe()}' for b in inferred)}: "
                    f"{inferred[0].provenance.reason}) is verified with --profile strict.",
                    file=out,
                )
                return 0
        verifier = Verifier(
            contract, base_url, token, users, buckets, max_requests, max_time, out=out, profile=profile
        )
        return 0 if asyncio.run(verifier.run()) else 1
    except (UsageError, ContractError) as exc:
        print(f"load ratelimit: {exc}", file=sys.stderr)
        return 2
