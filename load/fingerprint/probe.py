"""The prober: drive one token into its limit and watch how admissions come back, with as
few requests as it can (see docs/load.md, "How the fingerprint is taken").

1. drain: requests from a few concurrent users until the first 429;
2. sweep: single polls until one is admitted (fine-grained only where an admission is
   expected: the last second before `Retry-After`, around a predicted reset; coarse elsewhere),
   then at once `quick` more: a window gives them all, a bucket or counter trickles one;
3. windows: half a window later drain again, sweep to the next admission and ask for one more
   than came back the first time: a fixed window returns everything, a sliding log only what
   it admitted a window earlier;
4. trickle: two drains after growing pauses measure the refill rate; an admission that waited
   for a boundary first marks a sliding counter, not a bucket.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable

from . import headers as H
from .model import Hint, Obs, Send, Shape, Sweep

MIN_GAP = 0.01  # seconds between polls, at the least
FINE = 0.06  # poll gap where an admission is expected, as a share of the time since the cycle began
COARSE = 1.0  # poll gap elsewhere, as a share of the time waited so far


def first_admission(acc: list[Obs]) -> float:
    """When the first of a drain's admissions happened, at the latest less half the quickest
    round trip: the first requests also open their connections, so their midpoints come early."""
    rtt = min(o.end - o.start for o in acc)
    return min(o.end for o in acc) - rtt / 2


class Budget(Exception):
    """A request or time budget would be passed."""


class Prober:
    def __init__(
        self,
        send: Send,
        now: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        hint: Hint | None = None,
        max_requests: int = 1000,
        max_time: float = 600.0,
        users: int = 6,
        keys: tuple[str, ...] = (),
        peers: tuple[str, ...] = (),
    ) -> None:
        self._send, self.now, self.sleep = send, now, sleep
        self.hint = hint or Hint()
        self.max_requests, self.max_time, self.users = max_requests, max_time, users
        self.keys = keys  # "other", "same": extra tokens to tell the key
        self.peers = peers  # other operations: do they share this limit?
        self.peer_samples: dict[str, list[bool]] = {}
        self.obs: list[Obs] = []
        self.sweeps: list[Sweep] = []
        self.trust_ra = True
        self._t0 = now()
        self.key_samples: dict[str, list[bool]] = {}
        self.first_drain: list[Obs] = []
        self.polls: list[int] = []  # polls per sweep

    # -- requests -----------------------------------------------------------------------
    async def send(self, who: str = "main") -> Obs:
        if len(self.obs) >= self.max_requests:
            raise Budget(f"the budget of {self.max_requests} requests was reached")
        if self.now() - self._t0 > self.max_time:
            raise Budget(f"the time budget of {self.max_time:g} s was reached")
        o = await self._send(who)
        self.obs.append(o)
        return o

    async def wait_until(self, t: float) -> None:
        if t - self._t0 > self.max_time:
            raise Budget(f"the time budget of {self.max_time:g} s was reached")
        d = t - self.now()
        if d > 0:
            await self.sleep(d)

    async def drain(self) -> tuple[list[Obs], Obs | None]:
        """Requests from `users` concurrent users until one is refused."""
        acc: list[Obs] = []
        refusals: list[Obs] = []

        async def user() -> None:
            while not refusals:
                o = await self.send()
                if o.refused:
                    refusals.append(o)
                elif o.accepted:
                    acc.append(o)
                else:
                    raise Budget(f"answered {o.status} while probing (not 2xx, not 429)")

        await asyncio.gather(*(user() for _ in range(self.users)))
        return acc, min(refusals, key=lambda o: o.end) if refusals else None

    async def quick(self, n: int) -> list[Obs]:
        return list(await asyncio.gather(*(self.send() for _ in range(n)))) if n > 0 else []

    async def sample_keys(self) -> None:
        """Right after a refusal: does another token, another operation get through? (with
        main again at once: the sample counts only while main is still refused)"""
        for samples, whos in ((self.peer_samples, self.peers), (self.key_samples, self.keys)):
            for who in whos:
                for _ in range(3):  # between two refusals of main, sent at once (a slot may free)
                    m1, o, m2 = await asyncio.gather(self.send(), self.send(who), self.send())
                    if m1.refused and m2.refused and (o.accepted or o.refused):
                        samples.setdefault(who, []).append(o.refused)
                        break
                    if o.status == 0:
                        break  # it could not be sent safely (a delete with nothing of ours to delete)

    async def sweep(
        self,
        refusal: Obs,
        since: float,
        zones: list[tuple[float, float]],
        window: float,
        tick: tuple[float, float, float] | None = None,
    ) -> Obs:
        """Poll one request at a time until one is admitted; returns it (recorded in `sweeps`).
        `tick` (from, to, gap): poll at least every `gap` there (a bucket's refill period)."""
        ra = H.retry_after(refusal.headers, refusal.wall) if self.trust_ra else None
        zones = list(zones)
        if ra is not None:
            at = refusal.end + ra
            zones.append((at - min(1.0, 0.5 * max(ra, 0.1)), at + 0.05))
        last = refusal
        polls = 0
        while True:
            polls += 1
            t = self.now()
            in_zone = not zones or any(a <= t <= b for a, b in zones)
            if in_zone:
                gap = max(MIN_GAP, FINE * max(t - since, 0.5 * window))
                if tick and tick[0] <= t <= tick[1]:
                    gap = max(MIN_GAP, min(gap, tick[2]))
            else:
                gap = max(2 * MIN_GAP, COARSE * (t - refusal.end))
                starts = [a for a, _ in zones if a > t]
                if starts:
                    gap = min(gap, min(starts) - t)
            if ra is not None and refusal.end + ra > t + 1e-3:
                gap = min(gap, refusal.end + ra - t)  # the poll at exactly Retry-After
            await self.wait_until(t + max(gap, MIN_GAP))
            o = await self.send()
            if o.accepted:
                self.sweeps.append(Sweep(refusal, last.mid, o.mid))
                self.polls.append(polls)
                return o
            if not o.refused:
                raise Budget(f"answered {o.status} while probing (not 2xx, not 429)")
            last = o
            if ra is not None and o.start >= refusal.end + ra + 0.05:
                self.trust_ra = False  # refused after Retry-After: no zone from it again
                ra = None

    # -- the whole probe ----------------------------------------------------------------
    async def run(self) -> Shape:
        acc1, ref1 = await self.drain()
        self.first_drain = acc1
        if ref1 is None or not acc1:
            return Shape("none", evidence=[f"{len(self.obs)} requests, none refused"])
        a1 = len(acc1)
        s0 = first_admission(acc1)
        await self.sample_keys()
        zones = []
        tick = None
        if self.hint.window:
            zones.append((s0 + 0.85 * self.hint.window, s0 + 1.15 * self.hint.window))
            if self.hint.limit:
                per = self.hint.window / self.hint.limit
                zones.append((ref1.end, ref1.end + 3 * per))
                tick = (ref1.end, ref1.end + 3 * per, per / 3)  # a bucket refills one in `per`
        zones += self._header_zones(acc1, ref1)
        hint_w = self.hint.window or 0.0
        r1 = await self.sweep(ref1, s0, zones, hint_w, tick)
        # A bucket refills while the quick ones travel: on a slow link or a loaded machine that
        # can be several. Ask for more than it could refill meanwhile and count only what it
        # could not have. Its rate is below 1 / (the time it was still refusing after the 429),
        # else the documented one.
        # (unless one was admitted meanwhile: then the documented rate), counted from the last
        # refusal before the return
        mains = [o for o in self.obs if o.who == "main" and ref1.start <= o.start < r1.start]
        empty = max((o.start for o in mains if o.refused), default=ref1.start)
        still = empty - ref1.end
        documented = (self.hint.limit or 0) / self.hint.window if self.hint.window else 0.0
        rate = 1 / still if still > 0.02 and not any(o.accepted for o in mains) else documented
        rtt = sorted(o.end - o.start for o in self.obs[-5:])[len(self.obs[-5:]) // 2]
        q = min(3 + math.ceil(6 * rate * rtt), max(a1 - 1, 0))
        got = 1
        for _ in range(3):  # while undecided and nothing refused: a window has more to give
            quick = await self.quick(min(q, a1 - got))
            got += sum(o.accepted for o in quick)
            refill = (max((o.end for o in quick), default=r1.end) - empty) * rate
            if got - 1 > refill + 1 or any(o.refused for o in quick) or got >= a1 or not quick:
                break
        if a1 >= 2 and got >= min(3, a1) and got - 1 > refill + 1:
            return await self.windows(acc1, ref1, r1, got)
        return await self.trickle(acc1, ref1, r1, got)

    def _header_zones(self, acc: list[Obs], ref: Obs) -> list[tuple[float, float]]:
        d, _ = H.reset(ref.headers, ref.wall)
        if d is None or d < 0 or d > 3600:
            return []
        return [(ref.end + d - 1.0, ref.end + d + 0.1)]

    async def windows(self, acc1: list[Obs], ref1: Obs, r1: Obs, got1: int) -> Shape:
        sw1 = self.sweeps[-1]
        at1 = (sw1.lo + sw1.hi) / 2
        s0 = first_admission(acc1)
        w1 = max(at1 - s0, 0.02)  # sliding: the window; fixed: up to it
        took1 = max(o.mid for o in acc1) - s0  # the first drain's length: its admissions leave as slowly
        await self.wait_until(at1 + min(max(1.3 * took1 + 0.02, 0.15 * w1), 0.5 * w1))
        acc3, ref3 = await self.drain()
        if ref3 is None:
            raise Budget("no refusal in the second drain")
        await self.sample_keys()
        limit = got1 + len(acc3)
        zones = [(at1 + 0.85 * w1, at1 + 1.15 * w1)]
        if self.hint.window:
            zones.append((at1 + 0.85 * self.hint.window, at1 + 1.15 * self.hint.window))
        zones += self._header_zones(acc3, ref3)
        await self.sweep(ref3, at1, zones, w1)
        sw2 = self.sweeps[-1]
        at2 = (sw2.lo + sw2.hi) / 2
        got2 = 1 + sum(o.accepted for o in await self.quick(got1))
        window = at2 - at1
        ev = [
            f"drained {len(acc1)}; first admission {at1 - s0:.3f} s after the first; "
            f"{got1} came back at once; {len(acc3)} more half a window later; "
            f"the next admission {window:.3f} s after the first return; then {got2} at once"
        ]
        if got2 > got1:
            algo = "fixed-window"
        else:
            algo = "sliding-window"
            if abs(w1 - window) < 0.15 * window:
                window = (w1 + window) / 2
        return Shape(algo, limit, window, None, limit / window, evidence=ev)

    async def trickle(self, acc1: list[Obs], ref1: Obs, r1: Obs, got1: int) -> Shape:
        sw1 = self.sweeps[-1]
        first = (sw1.lo + sw1.hi) / 2 - ref1.mid
        a1 = len(acc1)
        target = max(10, a1 // 2)
        gap = max(0.3 * first, 0.05)
        # counted from one refusal to another: the bucket is empty at both ends
        total, span, t_prev = 0, 0.0, None
        for _ in range(9):
            last = max(self.obs[-4:], key=lambda o: o.end)
            await self.wait_until(last.end + gap)
            _, ref = await self.drain()
            if ref is None:
                raise Budget("no refusal while measuring the refill")
            if t_prev is None:
                t_prev = ref.mid
                continue
            n = self._admitted(t_prev, ref.mid)
            if n >= 3 and n >= 0.7 * a1:  # the pause refilled it all: it says nothing of the rate
                t_prev, gap = ref.mid, gap / 4
                continue
            total, span, t_prev = total + n, span + (ref.mid - t_prev), ref.mid
            if total >= target:
                break
            rate = max(total, 1) / max(span, 1e-3)
            gap = min(max((target - total) / rate, 0.05), 0.5 * a1 / rate)
        took = total
        if took <= 0 or span <= 0:
            raise Budget("the refill could not be measured")
        rate = took / span
        s0 = first_admission(acc1)
        per = 1 / rate if rate else float("inf")
        ev = [
            f"drained {a1}; first admission {first:.3f} s after the refusal (one every {per:.3f} s "
            f"in the long run); {took} admitted over {span:.2f} s"
        ]
        if first > 1.6 * per + 0.06:
            window = a1 / rate
            return Shape("sliding-window", a1, window, None, rate, evidence=[*ev, "waited for a boundary"])
        burst = max(round(a1 - rate * max(ref1.mid - s0, 0)), 1)
        if self.hint.window:
            window = self.hint.window
            limit = round(rate * window)
        else:
            window, limit = burst / rate, burst
        return Shape("token-bucket", limit, window, burst, rate, evidence=ev)

    def _admitted(self, lo: float, hi: float) -> int:
        return sum(o.who == "main" and o.accepted and lo < o.mid < hi for o in self.obs)

    def shared_with(self) -> list[str]:
        """The peer operations refused while this one was: they count in the same limit. Once
        suffices: a slot freeing between the samples admits a peer that shares it, while a peer
        that does not is refused only if its own limit is spent just then."""
        return [who for who, s in self.peer_samples.items() if any(s)]

    def key(self) -> str:
        shared = {who: sum(s) > len(s) / 2 for who, s in self.key_samples.items() if s}
        if shared.get("other"):
            return "global"
        if shared.get("same"):
            return "account"
        if shared:
            return "token"
        return "unknown"
