"""The prober: drive one token into its limit and watch how admissions come back, with as
few requests as it can (see docs/load.md, "How the fingerprint is taken").

1. drain: concurrent requests until the first 429, narrowing to one at a time as the end nears
   (the documented limit, `X-RateLimit-Remaining`), so that about one request is refused; then
   one request of each other token / peer operation, counted only if the probed token was still
   refused after it;
2. sweep: single polls until one is admitted, fine only where an admission is expected (a
   bucket's refill period, the documented window, the last second of `Retry-After`, which is
   never polled before), doubling the gap elsewhere; then a few more at once: a window gives
   them all back, a bucket or a sliding counter one at a time;
3. windows: drain again, sweep to the next return and ask for one more than came back the
   first time: a fixed window returns everything, a sliding log only what it admitted a window
   earlier;
4. trickle: the rate from two anchors (a refusal followed closely by an admission: the moment
   the limiter had exactly one to give) with a drain between them; a first return that waited
   longer than one refill period marks a sliding counter (it waited for a boundary).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable

from . import headers as H
from .model import Hint, Obs, Send, Shape, Sweep

MIN_GAP = 0.01  # seconds between polls, at the least
RESOLUTION = 0.03  # poll gap where a window's return is expected, as a share of the window
STAGGER = 0.08  # the pause after the first request, as a share of the documented window
Zone = tuple[float, float, float]  # from, to, poll gap there


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
        self.obs: list[Obs] = []
        self.sweeps: list[Sweep] = []
        self.samples: list[Obs] = []  # requests of other tokens / operations while main was refused
        self.trust_ra = True
        self._t0 = now()
        self.first_drain: list[Obs] = []
        self.polls: list[int] = []  # polls per sweep
        self.head: Obs | None = None  # the request sent alone before the first drain
        self.notes: list[str] = []  # evidence gathered on the way

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

    def _width(self, admitted: int, expect: int | None, last: Obs | None) -> int:
        """How many to send at once: all users far from the end, one near it (the end as the
        last answer's remaining counter says, else as expected), all again past it."""
        rem = H.remaining(last.headers) if last is not None else None
        left = rem if rem is not None else (expect - admitted if expect else None)
        if left is None:
            return self.users
        return max(1, min(self.users, left + 1)) if left >= 0 else self.users

    async def drain(self, expect: int | None = None) -> tuple[list[Obs], Obs | None]:
        """Requests in rounds until one is refused; `expect`: how many should be admitted."""
        acc: list[Obs] = []
        while True:
            last = max(acc, key=lambda o: o.end) if acc else None
            n = self._width(len(acc), expect, last)
            got = await asyncio.gather(*(self.send() for _ in range(n)))
            for o in got:
                if not (o.accepted or o.refused):
                    raise Budget(f"answered {o.status} while probing (not 2xx, not 429)")
            acc += [o for o in got if o.accepted]
            refused = [o for o in got if o.refused]
            if refused:
                return acc, min(refused, key=lambda o: o.end)

    async def quick(self, n: int) -> list[Obs]:
        return list(await asyncio.gather(*(self.send() for _ in range(n)))) if n > 0 else []

    def _valid(self, o: Obs) -> bool:
        """A sample counts if main was refused after it was sent, with no admission of main
        between (main had nothing left while the sample was judged)."""
        later = [m for m in self.obs if m.who == "main" and m.start >= o.start]
        first_ok = min((m.start for m in later if m.accepted), default=float("inf"))
        return any(m.refused and m.start < first_ok for m in later)

    async def sample_keys(self, paired: bool = False) -> None:
        """Right after a refusal of main: one request of each other token and peer operation
        not yet sampled validly, judged by main's next refusal. `paired`: with one request of
        main at once, when an admission of main does not spoil what follows (a bucket that
        refills fast may otherwise admit main again before its next poll)."""
        todo = [
            w
            for w in (*self.peers, *self.keys)
            if not any(s.who == w and self._valid(s) for s in self.samples)
        ]
        if not todo:
            return
        if paired:
            for _ in range(3):  # again while main was admitted (that emptied it once more)
                got = await asyncio.gather(*(self.send(w) for w in todo), self.send())
                self.samples += [o for o in got[:-1] if o.accepted or o.refused]
                if not got[-1].accepted:
                    return
            return
        for who in todo:
            o = await self.send(who)
            if o.accepted or o.refused:
                self.samples.append(o)

    def _samples(self, who: str) -> list[bool]:
        return [s.refused for s in self.samples if s.who == who and self._valid(s)]

    async def sweep(self, refusal: Obs, zones: list[Zone], resolution: float) -> Obs:
        """Poll one request at a time until one is admitted; returns it (recorded in `sweeps`).
        In a zone at its gap; elsewhere the gap doubles (the time since the refusal). Never
        before `Retry-After` less a second (its rounding), polled at `resolution` from there (and
        so around the reset a header states)."""
        ra = H.retry_after(refusal.headers, refusal.wall) if self.trust_ra else None
        zones = list(zones)
        not_before = 0.0
        if ra is not None:
            at = refusal.end + ra
            not_before = refusal.start + ra - min(1.0, ra) - 2 * MIN_GAP  # its rounding, its travel
            zones.append((not_before, at + 0.05, max(MIN_GAP, resolution)))
        d, _ = H.reset(refusal.headers, refusal.wall)
        if d is not None and 0 <= d <= 3600:
            zones.append((refusal.end + d - 1.0, refusal.end + d + 0.1, max(MIN_GAP, resolution)))
        last = refusal
        polls = 0
        while True:
            polls += 1
            t = max(self.now(), not_before)
            inside = [g for a, b, g in zones if a <= t <= b]
            if inside:
                gap = min(inside)
            else:
                gap = max(2 * MIN_GAP, t - refusal.end)
                starts = [a for a, _, _ in zones if a > t]
                if starts:
                    gap = min(gap, min(starts) - t)
            if ra is not None and refusal.end + ra > t + 1e-3:
                gap = min(gap, refusal.end + ra - t)  # the poll at exactly Retry-After
            await self.wait_until(not_before if self.now() < not_before else t + max(gap, MIN_GAP))
            o = await self.send()
            if o.accepted:
                self.sweeps.append(
                    Sweep(refusal, last.mid, o.mid, last.start if last is not refusal else None)
                )
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
        hw, hl = self.hint.window or 0.0, self.hint.limit
        # One request alone, a pause, then the drain: a sliding log gives that one back a
        # pause before the others, a window or a bucket does not (see `_log_returns`).
        head = []
        if hw:
            o = await self.send()
            if o.accepted:
                head = [o]
                self.head = o
                await self.wait_until(o.end + STAGGER * hw)
        acc1, ref1 = await self.drain(hl - len(head) if hl else None)
        acc1 = head + acc1
        self.first_drain = acc1
        if ref1 is None or not acc1:
            return Shape("none", evidence=[f"{len(self.obs)} requests, none refused"])
        a1 = len(acc1)
        s0 = first_admission(acc1)
        await self.sample_keys()
        zones: list[Zone] = []
        if hw:
            zones.append((s0 + 0.9 * hw, s0 + 1.1 * hw, RESOLUTION * hw))
            if hl:
                per = hw / hl
                zones.append((ref1.end, ref1.end + 1.5 * per, per / 4))  # a bucket refills one in `per`
        ra = H.retry_after(ref1.headers, ref1.wall) or 0.0
        # the return of a window to 3% of it; of a counter, fine enough to anchor its rate
        # (the documented one, unless that would poll a second of Retry-After too often)
        fine = RESOLUTION * (hw or max(ra + ref1.end - s0, 1.0))
        if hw and hl:
            fine = max(min(fine, 0.4 * hw / hl), 0.05)
        r1 = await self.sweep(ref1, zones, fine)
        # A bucket refills while the quick ones travel: ask for more than it could refill
        # meanwhile (its rate is at most one per the time it was still refusing) and count
        # only what it could not have.
        sw = self.sweeps[-1]
        still = max(sw.lo - ref1.end, 0.0)
        documented = (hl or 0) / hw if hw else 0.0
        rate = 1 / still if still > 2 * MIN_GAP or not documented else documented
        q = min(3 + int(rate * self.rtt() * 6), max(a1 - 1, 0))
        quick = await self.quick(q)
        got = 1 + sum(o.accepted for o in quick)
        refill = (max((o.end for o in quick), default=r1.end) - sw.lo) * rate
        if a1 >= 2 and got >= min(3, a1) and got - 1 > refill + 1:
            return await self.windows(acc1, r1, got)
        # what a bucket (one per `still` at the most) or a counter (its limit per window, and its
        # window is longer than the wait for its boundary) could refill at, at the most
        # (or half as fast again as documented, if less)
        fastest = 1.1 * max(1 / max(still, MIN_GAP), a1 / max(sw.lo - s0, MIN_GAP))
        fastest = min(fastest, 1.5 * documented) if documented else fastest
        bucket_like = documented and still <= 1.5 / documented  # back within a refill period
        if head and got == 1 and not bucket_like and await self._log_returns(acc1, fastest):
            at1 = (sw.lo + sw.hi) / 2
            ev = [
                f"drained {a1}; the one sent alone came back {at1 - s0:.3f} s later, alone; "
                f"the others {acc1[1].mid - acc1[0].mid:.3f} s after it, as they had been admitted"
            ]
            return Shape("sliding-window", a1, at1 - s0, None, a1 / (at1 - s0), evidence=ev)
        return await self.trickle(acc1, ref1)

    def rtt(self) -> float:
        last = self.obs[-5:]
        return sorted(o.end - o.start for o in last)[len(last) // 2]

    async def _log_returns(self, acc1: list[Obs], rate: float) -> bool:
        """The first return came alone, after more than a refill period: a sliding log gives
        back the rest of the first drain as far after the one sent alone as they were
        admitted after it; a counter or bucket only what it refills meanwhile."""
        sw = self.sweeps[-1]
        s0 = first_admission(acc1[:1])
        later = first_admission(acc1[1:]) - s0
        rtt = self.rtt()
        ends = sorted(o.end for o in acc1)
        n = 2 + math.ceil(rate * (sw.hi - sw.lo + later + 4 * rtt))
        for _ in range(3):  # ask for more than a counter could refill until they are answered
            if n + 1 >= len(acc1):
                return False
            # by then a log has given back the first n + 1 of the drain (as they were admitted)
            await self.wait_until(sw.hi + (ends[n + 1] - s0) + rtt + MIN_GAP)
            need = 2 + math.ceil(rate * (self.now() + 3 * rtt - sw.lo))
            if need <= n:
                break
            n = need
        quick = await self.quick(n)
        got = sum(o.accepted for o in quick)
        refill = (max(o.end for o in quick) - sw.lo) * rate
        self.notes.append(f"{got} of {n} came back {later:.3f} s after the one sent alone")
        return got == n and got > refill + 1

    async def windows(self, acc1: list[Obs], r1: Obs, got1: int) -> Shape:
        sw1 = self.sweeps[-1]
        at1 = (sw1.lo + sw1.hi) / 2
        s0 = first_admission(acc1)
        w1 = max(at1 - s0, 0.02)  # sliding: the window; fixed: up to it
        took1 = max(o.mid for o in acc1) - s0  # the first drain's length: its admissions leave as slowly
        await self.wait_until(at1 + min(max(1.3 * took1 + 0.02, 0.15 * w1), 0.5 * w1))
        acc3, ref3 = await self.drain(len(acc1) - got1)
        if ref3 is None:
            raise Budget("no refusal in the second drain")
        await self.sample_keys(paired=True)
        limit = got1 + len(acc3)
        zones = [(at1 + 0.9 * w1, at1 + 1.1 * w1, RESOLUTION * w1)]
        if self.hint.window:
            hw = self.hint.window
            zones.append((at1 + 0.9 * hw, at1 + 1.1 * hw, RESOLUTION * hw))
        await self.sweep(ref3, zones, RESOLUTION * (self.hint.window or w1))
        sw2 = self.sweeps[-1]
        at2 = (sw2.lo + sw2.hi) / 2
        got2 = 1 + sum(o.accepted for o in await self.quick(got1))
        window = at2 - at1
        ev = [
            f"drained {len(acc1)}; first admission {at1 - s0:.3f} s after the first; "
            f"{got1} came back at once; {len(acc3)} more later; "
            f"the next admission {window:.3f} s after the first return; then {got2} at once"
        ]
        if got2 > got1:
            algo = "fixed-window"
        else:
            algo = "sliding-window"
            if abs(w1 - window) < 0.15 * window:
                window = (w1 + window) / 2
        return Shape(algo, limit, window, None, limit / window, evidence=ev)

    async def trickle(self, acc1: list[Obs], ref1: Obs) -> Shape:
        """Two anchors A (the first return) and B (the first return after one more drain): a
        limiter that trickles gains, between them, one for each admission between them plus
        the one taken at B."""
        a1 = len(acc1)
        sw1 = self.sweeps[-1]
        first_lo = sw1.lo - ref1.end  # still refusing this long after the 429
        hw, hl = self.hint.window, self.hint.limit
        # Undocumented: a first short round finds the refill period to within a factor of two.
        rate = hl / hw if hw and hl else 1 / (4 * self.rtt() + MIN_GAP)
        target = min(8, max(4, a1 // 2))
        anchors = [sw1]  # an anchor is clean when its bracket is short against the period
        a = sw1
        between, t_a = 0, (sw1.lo + sw1.hi) / 2
        for i in range(6):
            per = 1 / rate
            t_a = (a.lo + a.hi) / 2
            between = sum(o.who == "main" and o.accepted and o.mid > a.hi for o in self.obs)
            clean = a.hi - a.lo <= 0.5 * per
            pause = (target - between) / rate if clean else 0.0
            await self.wait_until(self.now() + max(pause, 2 * MIN_GAP))
            expect = max(round(rate * (self.now() - a.hi)) - between, 1) if hw or i else 1
            _, ref = await self.drain(expect)
            if ref is None:
                raise Budget("no refusal while measuring the refill")
            await self.sample_keys(paired=True)
            if hw or i:
                await self.sweep(ref, [(ref.end, ref.end + 1.5 * per, per / 3)], per / 3)
            else:
                await self.sweep(ref, [], math.inf)  # the gap doubling: the period within 2x
            b = self.sweeps[-1]
            anchors.append(b)
            # gained between the anchors: each admission after A up to B, and B's own
            between = sum(o.who == "main" and o.accepted and a.hi < o.mid <= b.hi for o in self.obs)
            t_b = (b.lo + b.hi) / 2
            rate = between / max(t_b - t_a, 1e-3)
            if not clean or (i == 0 and not hw):
                a = b  # a clean anchor from here on
                continue
            if between >= target:
                break
        between -= 1
        per = 1 / rate
        s0 = first_admission(acc1)
        ev = [
            f"drained {a1}; first admission {first_lo:.3f}-{sw1.hi - ref1.end:.3f} s after the refusal; "
            f"{between + 1} gained over {t_b - t_a:.2f} s (one every {per:.3f} s)"
        ]
        ev += self.notes
        if first_lo > 1.2 * per + 2 * MIN_GAP:
            return Shape("sliding-window", a1, a1 / rate, None, rate, evidence=[*ev, "waited for a boundary"])
        # the drain took what the bucket held plus what it refilled meanwhile; before it, the one
        # sent alone came back during the pause unless the pause was shorter than a period
        head = self.head
        if head is None or a1 < 2:
            burst = max(round(a1 - rate * max(ref1.mid - s0, 0)), 1)
        else:
            s1 = first_admission(acc1[1:])
            back = min(1.0, rate * (s1 - head.mid))
            burst = max(round(a1 - 1 - rate * max(ref1.mid - s1, 0) + 1 - back), 1)
        if hw:
            window, limit = hw, round(rate * hw)
        else:
            window, limit = burst / rate, burst
        return Shape("token-bucket", limit, window, burst, rate, evidence=ev)

    def shared_with(self) -> list[str]:
        """The peer operations refused while this one was: they count in the same limit. Once
        suffices: a slot freeing between the samples admits a peer that shares it, while a peer
        that does not is refused only if its own limit is spent just then."""
        return [who for who in self.peers if any(self._samples(who))]

    def key(self) -> str:
        shared = {who: sum(s) > len(s) / 2 for who in self.keys if (s := self._samples(who))}
        if shared.get("other"):
            return "global"
        if shared.get("same"):
            return "account"
        if shared:
            return "token"
        return "unknown"
