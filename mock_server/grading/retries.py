"""Rules on what a client does after a refusal: wait as told, back off, stop repeating what
cannot succeed, and stop when the rate-limit headers say nothing is left."""

from __future__ import annotations

from .rules import Context, Row, Verdict, failed, limits_inferred, passed, rule, unseen

TRANSIENT = frozenset({500, 502, 503, 504})
# 4xx answers a repeat of the same request gets again: nothing about it changes by itself
FINAL = frozenset({400, 401, 403, 404, 405, 409, 413, 415, 422})


def _keys(ctx: Context, row: Row) -> list[tuple[str, str | None]]:
    """What a request counts against: its operation itself, and its operation's buckets."""
    name = row.get("operation")
    return ctx.counts_in.get(name) or [("o", name)]


@rule("retry-after", "after a 429 (or a 503 with Retry-After), waits the time it was told")
def retry_after(ctx: Context) -> Verdict:
    verdict = _retry_after(ctx)
    verdict.inferred = limits_inferred(ctx.spec)
    return verdict


def _retry_after(ctx: Context) -> Verdict:
    basis = "Retry-After of the refusal (RFC 9110 §10.2.3) and the buckets of x-sandbox.rate-limits"
    told = honoured = 0
    bad: list[str] = []
    for rows in ctx.by_token.values():
        waiting: dict[tuple[str, str | None], tuple[float, Row]] = {}
        for r in rows:
            if waiting:
                for key in _keys(ctx, r):
                    hit = waiting.pop(key, None)
                    if hit is None:
                        continue
                    if r["at"] < hit[0]:
                        bad += [hit[1]["request_id"], r["request_id"]]
                    else:
                        honoured += 1
            if r["status"] in (429, 503) and r.get("wait") is not None:
                told += 1
                key = ("b", r["bucket"]) if r.get("bucket") else ("o", r.get("operation"))
                waiting[key] = (r["at"] + r["wait"], r)
    if bad:
        n = len(bad) // 2
        return failed(f"{n} request(s) sent before the Retry-After they had been given ran out", bad, basis)
    if not told:
        return unseen("never told to wait (no 429, no 503 with Retry-After)", basis)
    return passed(f"told to wait {told} time(s); every retry came after the time given", basis)


@rule(
    "back-off",
    "retries a 5xx only after a pause, longer at each further retry (exponential back-off)",
    inferred="the documents ask for no retry schedule; growing pauses are the common practice (ours)",
)
def back_off(ctx: Context) -> Verdict:
    basis = "each retry of a failing operation waits > 0 s and longer than the retry before it"
    retried = 0
    bad: list[str] = []
    for rows in ctx.by_token.values():
        last: dict[str | None, tuple[Row, float | None]] = {}  # operation -> its last failure, the gap before
        for r in rows:
            name = r.get("operation")
            before = last.pop(name, None) if last else None
            if before is not None:
                retried += 1
                gap = r["at"] - before[0]["at"]
                if gap <= 0 or (before[1] is not None and gap <= before[1]):
                    bad += [before[0]["request_id"], r["request_id"]]
                failing = r["status"] in TRANSIENT and r.get("wait") is None
                if failing:
                    last[name] = (r, gap)
            elif r["status"] in TRANSIENT and r.get("wait") is None:
                last[name] = (r, None)
    if bad:
        return failed("retried a failing operation without a growing pause", bad, basis)
    if not retried:
        return unseen("no 5xx without Retry-After was retried", basis)
    return passed(f"{retried} retry(ies) after a 5xx, each after a longer pause", basis)


@rule("no-futile-repeat", "does not resend a request the API refused with a final 4xx, unchanged")
def no_futile_repeat(ctx: Context) -> Verdict:
    basis = "RFC 9110 §15.5: a 4xx is the client's error; the same request gets the same answer"
    seen = 0
    bad: list[str] = []
    for rows in ctx.by_token.values():
        refused: dict[tuple[object, ...], Row] = {}
        paths: set[str] = set()  # the paths of `refused`: most requests need no key built
        for r in rows:
            final = r["status"] in FINAL
            if not final and r["path"] not in paths:
                continue
            page = r.get("page")
            key = (r["method"], r["path"], r.get("body"), tuple(page.values()) if page else None)
            first = refused.pop(key, None)
            if first is not None and r["status"] == first["status"]:
                bad += [first["request_id"], r["request_id"]]
            if final and not _forced(r):
                seen += 1
                refused[key] = r
                paths.add(r["path"])
    if bad:
        return failed("sent the same request again after a final 4xx, and got it again", bad, basis)
    if not seen:
        return unseen("no final 4xx was answered", basis)
    return passed(f"{seen} final 4xx answer(s); none was repeated unchanged", basis)


def _forced(r: Row) -> bool:
    """An answer chosen by a fault rule or `Prefer`, not by the request."""
    return any(p.get("field") in ("fault", "Prefer") for p in r.get("problems") or ())


@rule("rate-limit-headers", "stops when RateLimit says none is left (r=0), until the time it gives")
def rate_limit_headers(ctx: Context) -> Verdict:
    verdict = _rate_limit_headers(ctx)
    verdict.inferred = limits_inferred(ctx.spec)
    return verdict


def _rate_limit_headers(ctx: Context) -> Verdict:
    basis = (
        "RateLimit / X-RateLimit-Remaining of the answers (IETF draft -11), buckets of x-sandbox.rate-limits"
    )
    told = 0
    bad: list[str] = []
    for rows in ctx.by_token.values():
        empty: dict[str | None, tuple[float, Row]] = {}  # bucket -> when it frees, the answer saying so
        for r in rows:
            if empty:
                for kind, name in _keys(ctx, r):
                    hit = empty.pop(name, None) if kind == "b" else None
                    if hit is not None and r["at"] < hit[0] and r["status"] == 429:
                        bad += [hit[1]["request_id"], r["request_id"]]
            if r["status"] < 400 and r.get("bucket") and r.get("wait") is not None:
                told += 1
                empty[r["bucket"]] = (r["at"] + r["wait"], r)
    if bad:
        return failed("sent after an answer said no request was left, and ran into a 429", bad, basis)
    if not told:
        return unseen("no answer said a bucket was empty", basis)
    return passed(f"{told} answer(s) said a bucket was empty; the client waited each time", basis)
