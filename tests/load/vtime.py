"""Virtual time for the fingerprinter's tests: a clock that moves only when the prober sleeps
or a request takes its (seeded, jittered) latency; requests go to an ASGI app in process."""

from __future__ import annotations

import random
from typing import Any

import httpx

from load.fingerprint.model import Obs


class VirtualTime:
    def __init__(self, start: float, seed: int, latency: tuple[float, float] = (0.001, 0.004)) -> None:
        self.t = start
        self.rng = random.Random(seed)
        self.latency = latency

    def now(self) -> float:
        return self.t

    async def sleep(self, dt: float) -> None:
        self.t += max(dt, 0.0) + self.rng.uniform(0, 0.002)  # a late wake-up, as under load


def sender(app: Any, vt: VirtualTime, tokens: dict[str, str]) -> Any:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://zoo")

    async def send(who: str) -> Obs:
        start = vt.t
        vt.t += vt.rng.uniform(*vt.latency) / 2
        r = await client.get("/servers", headers={"Authorization": f"Bearer {tokens[who]}"})
        vt.t += vt.rng.uniform(*vt.latency) / 2
        return Obs(who, start, vt.t, r.status_code, dict(r.headers), wall=vt.t)

    return send
