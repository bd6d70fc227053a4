"""Header honesty, judged against what the timing showed: `Retry-After` (honest, early, late,
absent), the remaining counter (exact, off by k, absent), the reset (epoch, delta, absent,
wrong) and whether the counters come on every answer or only on 429."""

from __future__ import annotations

from typing import Any

from . import headers as H
from .model import Obs, Shape, Sweep

TOL = 0.15  # seconds of scheduling slack, plus 5% of the wait


def retry_after(sweeps: list[Sweep]) -> tuple[str, list[str]]:
    verdicts, notes = [], []
    for sw in sweeps:
        ref = sw.refusal
        ra = H.retry_after(ref.headers, ref.wall)
        if ra is None:
            verdicts.append("absent")
            continue
        lo, hi = sw.lo - ref.end, sw.hi - ref.start  # the true wait lies in [lo, hi]
        tol = TOL + 0.05 * hi
        if ra + tol < lo:
            verdicts.append("early")
            notes.append(f"Retry-After {ra:g} s, but a request {lo:.2f} s after the 429 was still refused")
        elif ra > hi + 1 + tol:
            verdicts.append("late")
            notes.append(f"Retry-After {ra:g} s, but a request {hi:.2f} s after the 429 was admitted")
        else:
            verdicts.append("honest")
    for worst in ("early", "late", "absent", "honest"):
        if worst in verdicts:
            return worst, notes
    return "not seen", notes


def remaining(first_drain: list[Obs], refusals: list[Obs]) -> tuple[str, int | None]:
    """From a full budget drained to empty the last admission leaves 0, and a 429 says 0."""
    values = [v for o in first_drain if (v := H.remaining(o.headers)) is not None]
    on_429 = [v for o in refusals if (v := H.remaining(o.headers)) is not None]
    if not values and not on_429:
        return "absent", None
    off = min(values) if values else min(on_429)
    if on_429 and min(on_429) != 0:
        off = min(on_429)
    return ("exact", 0) if off == 0 else (f"off by {off}", off)


def reset(sweeps: list[Sweep], shape: Shape) -> tuple[str, list[str]]:
    """On each refusal the reset must fall between the true wait and the time to a full budget."""
    seen, notes, wrong = set(), [], False
    full = shape.window_s or 0.0
    if shape.algorithm == "token-bucket" and shape.rate and shape.burst:
        full = max(full, shape.burst / shape.rate)
    for sw in sweeps:
        ref = sw.refusal
        d, conv = H.reset(ref.headers, ref.wall)
        if d is None:
            seen.add(conv)
            continue
        seen.add(conv)
        lo = sw.lo - ref.end
        if d < lo - 1 - TOL - 0.05 * lo or d > max(full, sw.hi - ref.start) + 1 + TOL + 0.1 * full:
            wrong = True
            notes.append(
                f"reset said {d:.2f} s ({conv}) on a 429; the budget came back after {lo:.2f}-{full:.2f} s"
            )
    if wrong:
        return "wrong", notes
    return ("/".join(sorted(seen)) or "not seen"), notes


def placement(obs: list[Obs]) -> str:
    ok = [o for o in obs if o.who == "main" and o.accepted]
    no = [o for o in obs if o.who == "main" and o.refused]
    on_ok = any(H.has_counters(o.headers) for o in ok)
    on_no = any(H.has_counters(o.headers) for o in no)
    if on_ok and on_no:
        return "every answer"
    if on_no:
        return "429 only"
    if on_ok:
        return "2xx only"
    return "absent"


def judge(obs: list[Obs], sweeps: list[Sweep], first_drain: list[Obs], shape: Shape) -> dict[str, Any]:
    refusals = [o for o in obs if o.who == "main" and o.refused]
    ra, ra_notes = retry_after(sweeps)
    rem, off = remaining(first_drain, refusals)
    rst, rst_notes = reset(sweeps, shape)
    policy = sorted({p for o in obs for p in H.policy(o.headers)})
    return {
        "retry_after": ra,
        "remaining": rem,
        "remaining_off": off,
        "reset": rst,
        "counters": placement(obs),
        "policy": [{"q": q, "w": w} for q, w in policy],
        "notes": ra_notes + rst_notes,
    }
