"""`python -m load fingerprint`: take the fingerprint of each chosen operation's limiter over
HTTP, judge it by the documents and print / write it (`--json`, `--write-overlay`)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from contract import Operation

from ..roles import ApiContract, ContractError
from . import honesty
from .model import Hint, Obs, Shape
from .probe import Budget, Prober
from .session import Session, Target, UsageError, pick
from .verdict import Documented, judge

RATE_HEADERS = (
    "ratelimit-policy",
    "ratelimit",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
)


def documented_for(c: ApiContract, op: Operation, profile: str) -> Documented:
    """What the profile holds `op`'s limiter to: the documented view's tightest bucket and the
    headers it names (strict: the spec's own choices too)."""
    view = c.spec.documented if profile == "documented" else c.spec
    vop = view.by_id(op.operation_id) or op
    buckets = [c.buckets[b.name] for b in vop.buckets if b.name in c.buckets]
    tight = min(buckets, key=lambda b: b.limit / b.window, default=None)
    names = tuple(h for h in RATE_HEADERS if h in vop.response_headers(200) or h in vop.response_headers(201))
    strict = profile == "strict"
    return Documented(
        limit=tight.limit if tight else None,
        window=tight.window if tight else None,
        key="token" if tight and strict else None,  # the documents never say; the sandbox's choice
        headers=names,
        retry_after="retry-after" in vop.response_headers(429),
        algorithm=tight.algorithm if tight and strict else None,
    )


async def fingerprint_op(
    c: ApiContract, session: Session, t: Target, hint: Hint, **budget: Any
) -> tuple[Prober, Shape, float]:
    """Probe `t`; the other targets' operations are its peers (do they share its limit?)."""
    tokens = session.tokens
    peers = tuple(dict.fromkeys(i for o in session.targets for i in o.ids if i != t.op.operation_id))

    async def send(who: str) -> Obs:
        if who in tokens:
            return await session.request(t.op, who)
        o = await session.request(c.op(who), "main")
        o.who = who
        return o

    prober = Prober(
        send,
        time.monotonic,
        asyncio.sleep,
        hint,
        keys=tuple(k for k in tokens if k != "main"),
        peers=peers,
        **budget,
    )
    t0 = time.monotonic()
    try:
        shape = await prober.run()
    except Budget as exc:
        shape = Shape("none", evidence=[f"stopped: {exc}"])
    shape.key = prober.key()
    return prober, shape, time.monotonic() - t0


def group_json(op: Operation, prober: Prober, shape: Shape, took: float, doc: Documented) -> dict[str, Any]:
    hdr = honesty.judge(prober.obs, prober.sweeps, prober.first_drain, shape)
    v = judge(shape, hdr, doc)
    return {
        "operations": [op.operation_id, *prober.shared_with()],
        "algorithm": shape.algorithm,
        "limit": shape.limit,
        "window_s": round(shape.window_s, 3) if shape.window_s else None,
        "burst": shape.burst,
        "key": shape.key,
        "headers": hdr,
        "documented": doc.as_json(),
        "verdict": v.verdict,
        "problems": v.problems,
        "requests": len(prober.obs),
        "wall_s": round(took, 2),
        "evidence": shape.evidence,
    }


def overlay(api: str, groups: list[dict[str, Any]]) -> dict[str, Any]:
    """The observed limiters as a `serve --rate-limits FILE` document."""
    buckets: dict[str, dict[str, Any]] = {}
    ops: dict[str, list[str]] = {}
    for i, g in enumerate(groups):
        if g["algorithm"] == "none" or not g["limit"]:
            continue
        name = f"observed-{i + 1}"
        b: dict[str, Any] = {"limit": g["limit"], "window": g["window_s"], "algorithm": g["algorithm"]}
        if g["algorithm"] == "token-bucket":
            b["burst"] = g["burst"]
        buckets[name] = b
        for op in g["operations"]:  # an operation in several groups counts in each
            ops.setdefault(op, []).append(name)
    return {"rate-limits": {api: {"buckets": buckets, "operations": ops}}}


def summary(g: dict[str, Any], out: TextIO) -> None:
    shape = g["algorithm"]
    if g["limit"]:
        shape += f", {g['limit']} per {g['window_s']:g} s"
    if g["burst"]:
        shape += f", burst {g['burst']}"
    print(f"[{', '.join(g['operations'])}] {shape}; key: {g['key']}", file=out)
    h = g["headers"]
    print(
        f"  headers: Retry-After {h['retry_after']}; remaining {h['remaining']}; reset {h['reset']}; "
        f"counters on {h['counters']}",
        file=out,
    )
    print(f"  {g['requests']} requests, {g['wall_s']} s; {'; '.join(g['evidence'])}", file=out)
    d = g["documented"]
    said = f"{d['limit']} per {d['window_s']:g} s" if d["limit"] else "no limit"
    print(f"  documented: {said} -> {g['verdict'].upper()}", file=out)
    for p in g["problems"]:
        print(f"  - [{p['kind']}] {p['text']}", file=out)


async def probe_all(
    c: ApiContract,
    base_url: str,
    tokens: dict[str, str],
    targets: list[Target],
    profile: str,
    max_requests: int | None,
    max_time: float | None,
    out: TextIO,
) -> list[dict[str, Any]]:
    """Each target in turn, every limit it drained back before the next; what creates made is
    deleted at the end (honouring Retry-After)."""
    session = Session(c, base_url, tokens, targets)
    full = max((b.window for b in c.buckets.values()), default=0.0)
    groups: list[dict[str, Any]] = []
    try:
        if len(targets) > 1 and any(t.delete for t in targets):
            # a record of ours for each delete to be sampled as a peer, then a window of quiet
            for t in targets:
                if t.delete is not None:
                    await session.request(t.op, "main")
            await asyncio.sleep(full + 0.1)
        quiet_until = 0.0
        for t in targets:
            await asyncio.sleep(max(0.0, quiet_until - time.monotonic()))
            op = t.op
            own = [c.buckets[b.name] for b in op.buckets]
            tight = min(own, key=lambda b: b.limit / b.window, default=None)
            hint = Hint(tight.limit, tight.window) if tight else Hint()
            cap = max_requests or (4 * tight.limit + 100 if tight else 1000)
            limit_time = max_time or (4 * tight.window + 30 if tight else 300)
            prober, shape, took = await fingerprint_op(
                c, session, t, hint, max_requests=cap, max_time=limit_time
            )
            quiet_until = max((o.end for o in prober.obs), default=0.0) + max(full, shape.window_s or 0) + 0.1
            if prober.obs and all(o.status in (401, 403) for o in prober.obs[:3]):
                raise UsageError(f"the token was refused ({prober.obs[0].status})")
            g = group_json(op, prober, shape, took, documented_for(c, op, profile))
            groups.append(g)
            summary(g, out)
        t0 = time.monotonic()
        left = await session.cleanup(asyncio.sleep, t0 + 3 * full + 10)
        if session.deleted:
            print(f"cleanup: {session.deleted} record(s) deleted in {time.monotonic() - t0:.1f} s", file=out)
        if left:
            print(
                f"note: {len(left)} record(s) created while probing were left: {', '.join(left[:5])}",
                file=out,
            )
            for g in groups:
                g["left_behind"] = left
    finally:
        await session.close()
    return groups


def fingerprint(
    api: str,
    base_url: str,
    token: str,
    *,
    other_token: str | None = None,
    same_account_token: str | None = None,
    operations: list[str] | None = None,
    window: float | None = None,
    profile: str = "documented",
    max_requests: int | None = None,
    max_time: float | None = None,
    json_path: str | None = None,
    overlay_path: str | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """Exit code: 0 every group keeps its documents (or they say nothing), 1 one breaks, 2 usage."""
    try:
        c = ApiContract.load(api, window)
        targets = pick(c, operations)
    except (ContractError, UsageError) as exc:
        print(f"load fingerprint: {exc}", file=sys.stderr)
        return 2
    tokens = {"main": token}
    if other_token:
        tokens["other"] = other_token
    if same_account_token:
        tokens["same"] = same_account_token
    try:
        groups = asyncio.run(probe_all(c, base_url, tokens, targets, profile, max_requests, max_time, out))
    except UsageError as exc:
        print(f"load fingerprint: {exc}", file=sys.stderr)
        return 2
    report = {"api": api, "base_url": base_url, "profile": profile, "groups": groups}
    if json_path:
        Path(json_path).write_text(json.dumps(report, indent=2, default=str))
    if overlay_path:
        Path(overlay_path).write_text(json.dumps(overlay(api, groups), indent=2))
    return 1 if any(g["verdict"] == "breaks" for g in groups) else 0


__all__ = ["fingerprint"]
