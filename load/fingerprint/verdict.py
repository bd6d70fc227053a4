"""The fingerprint against the documents. "N per window" is kept by every honest reading:
a fixed window, a sliding window/log, or a token bucket/GCRA whose rate is N per window and
whose burst is at most N. The documented profile holds a backend only to what the documents
say; strict also to the spec's own choices (which headers, which key)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .model import Shape

LIMIT_TOL = 1  # requests
WINDOW_TOL = 0.10  # share of the window (and of the rate)


@dataclass
class Documented:
    limit: int | None = None  # None: the documents state no limit
    window: float | None = None
    key: str | None = None  # token | account | global, when stated
    headers: tuple[str, ...] = ()  # rate-limit headers (lower case) the profile demands on 2xx
    retry_after: bool = False  # the profile demands Retry-After on 429
    algorithm: str | None = None  # strict: the spec's own reading of "N per window"

    def as_json(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "window_s": self.window,
            "key": self.key,
            "headers": list(self.headers),
            "retry_after": self.retry_after,
            "algorithm": self.algorithm,
        }


@dataclass
class Verdict:
    verdict: str  # keeps | breaks | undocumented
    problems: list[dict[str, str]] = field(default_factory=list)


def judge(shape: Shape, hdr: dict[str, Any], doc: Documented) -> Verdict:
    problems: list[dict[str, str]] = []

    def bad(kind: str, text: str) -> None:
        problems.append({"kind": kind, "text": text})

    if doc.limit and doc.window and shape.algorithm != "none":
        doc_rate = doc.limit / doc.window
        promise = f"documented {doc.limit} per {doc.window:g} s"
        if shape.algorithm == "token-bucket":
            rate = shape.rate or 0.0
            if rate > doc_rate * (1 + WINDOW_TOL):
                bad("rate-above", f"refills {rate:.3g}/s, {promise} ({doc_rate:.3g}/s)")
            elif rate < doc_rate * (1 - WINDOW_TOL):
                bad("rate-below", f"refills {rate:.3g}/s, {promise} ({doc_rate:.3g}/s)")
            if shape.burst is not None and shape.burst > doc.limit + LIMIT_TOL:
                bad("burst-above", f"a burst of {shape.burst} is admitted, {promise}")
        else:
            if shape.limit is not None and shape.limit > doc.limit + LIMIT_TOL:
                bad("limit-above", f"{shape.limit} admitted per window, {promise}")
            elif shape.limit is not None and shape.limit < doc.limit - LIMIT_TOL:
                bad("limit-below", f"only {shape.limit} admitted per window, {promise}")
            w = shape.window_s or 0.0
            if w < doc.window * (1 - WINDOW_TOL):
                bad("window-shorter", f"a {w:.2f} s window, {promise}")
            elif w > doc.window * (1 + WINDOW_TOL):
                bad("window-longer", f"a {w:.2f} s window, {promise}")
        if doc.algorithm and shape.algorithm != doc.algorithm:
            bad("algorithm", f"limits as a {shape.algorithm}; the spec chose a {doc.algorithm}")
    elif doc.limit and shape.algorithm == "none":
        bad("no-limit", f"no refusal within the budget; documented {doc.limit} per {doc.window:g} s")
    if doc.key and shape.key not in ("unknown", doc.key):
        bad("key-" + shape.key, f"the limit is keyed per {shape.key}; the documents say per {doc.key}")
    if hdr.get("retry_after") == "early":
        bad("retry-after-early", "Retry-After is shorter than the truth: " + "; ".join(hdr["notes"][:1]))
    if hdr.get("retry_after") == "absent" and doc.retry_after:
        bad("retry-after-missing", "a 429 carries no Retry-After")
    off = hdr.get("remaining_off")
    if off:
        bad("remaining-off", f"the remaining counter is off by {off} (a drained budget leaves {off}, not 0)")
    if hdr.get("reset") == "wrong":
        notes = [n for n in hdr["notes"] if n.startswith("reset")]
        bad("reset-wrong", notes[0] if notes else "the reset header disagrees with the timing")
    if doc.headers and hdr.get("counters") in ("429 only", "absent"):
        bad(
            "headers-missing",
            f"rate-limit headers ({', '.join(doc.headers)}) are not on 2xx answers "
            f"(seen: {hdr.get('counters')})",
        )
    if problems:
        return Verdict("breaks", problems)
    return Verdict("keeps" if doc.limit else "undocumented", problems)
