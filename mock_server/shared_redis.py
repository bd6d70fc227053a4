"""What replicas on Redis agree on besides the store (as `shared.py` for `--workers` on one
machine): the clock's offset, the rate-limit windows and the request log, under the store's
prefix in the same Redis database. Unlike the `--workers` run directory, none of it is emptied
when a replica starts: it belongs to the sandbox, whose replicas come and go.

- the clock offset: a key; read with every catch-up of the store and every rate-limit decision
  (so `now()` costs no round trip), moved with `INCRBYFLOAT`;
- rate limits: a sorted set of admission times per (caller, bucket); one script decides over all
  of an operation's buckets at once (prune, check all, record in all or none), so limits are
  exact across replicas; each set expires a window after its last admission;
- the request log: a stream capped at about `size` entries (`XADD MAXLEN ~`).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
import redis

from .clock import Clock
from .errors import StoreUnavailable
from .jsonio import dumps
from .ratelimit import Bucket, Decision, RateLimiter
from .shared import RequestLog
from .store_redis import CATCH_UP_FN, RedisStore

log = logging.getLogger(__name__)

# The limiter's part of a request's script, a Lua function: the moving window over one sorted
# set per bucket (`keys`). ARGV from `at`: time, the offset key ('' when the time includes it),
# a unique member, then (limit, window) per bucket. Returns admitted (1/0), now, offset, and per
# bucket: how many it holds, and the time its check turns on (full: the entry that must leave;
# admitted: the oldest). Other algorithms belong here, beside it, chosen per bucket.
LIMIT_FN = """
local function limit(keys, at)
  local now, offset = tonumber(ARGV[at]), '0'
  if ARGV[at + 1] ~= '' then
    offset = redis.call('GET', ARGV[at + 1]) or '0'
    now = now + tonumber(offset)
  end
  local counts, marks, full = {}, {}, false
  for i, k in ipairs(keys) do
    local cap, window = tonumber(ARGV[at + 1 + 2 * i]), tonumber(ARGV[at + 2 + 2 * i])
    redis.call('ZREMRANGEBYSCORE', k, '-inf', string.format('%.17g', now - window))
    local n = redis.call('ZCARD', k)
    counts[i], marks[i] = n, ''
    if n >= cap then
      full = true
      marks[i] = redis.call('ZRANGE', k, n - cap, n - cap, 'WITHSCORES')[2]
    end
  end
  if not full then
    local stamp = string.format('%.17g', now)
    for i, k in ipairs(keys) do
      redis.call('ZADD', k, stamp, ARGV[at + 2])
      redis.call('PEXPIRE', k, math.ceil(tonumber(ARGV[at + 2 + 2 * i]) * 1000) + 1000)
      counts[i] = counts[i] + 1
      marks[i] = redis.call('ZRANGE', k, 0, 0, 'WITHSCORES')[2]
    end
  end
  return {full and 0 or 1, string.format('%.17g', now), offset, counts, marks}
end
"""

HIT = LIMIT_FN + "return limit(KEYS, 1)\n"

# A request's one round trip: the rate-limit decision (when KEYS name buckets) and the store's
# catch-up. ARGV: the catch-up's six (`store_redis.CATCH_UP_FN`), then the limiter's from the
# 7th. Returns {catch-up, decision}.
ADMIT = (
    CATCH_UP_FN
    + LIMIT_FN
    + """
local verdict = false
if #KEYS > 0 then verdict = limit(KEYS, 7) end
return {catch_up(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]), verdict}
"""
)


class RedisClock(Clock):
    """Wall time plus the sandbox's shared offset (`<prefix>clock`)."""

    def __init__(self, store: RedisStore) -> None:
        super().__init__()
        self.store = store

    def now(self) -> float:
        return time.time() + self.store.clock_offset

    def advance(self, seconds: float) -> float:
        key = self.store.key("clock")
        self.store.clock_offset = float(self.store.call(lambda: self.store.redis.incrbyfloat(key, seconds)))
        return self.now()


class RedisRateLimiter(RateLimiter):
    """The moving-window limiter with its logs in Redis; a decision is one script."""

    def __init__(
        self, store: RedisStore, clock: Clock, window_override: float | None = None, enabled: bool = True
    ) -> None:
        super().__init__(clock, window_override, enabled)
        self.store = store
        self._script = store.redis.register_script(HIT)
        self._ids = itertools.count()
        self._me = os.urandom(6).hex()

    def _key(self, key: str, bucket: str) -> str:
        return self.store.key(f"rl:{key}\0{bucket}")

    def hit(self, key: str, buckets: Sequence[Bucket]) -> Decision | None:
        """As in one process; Redis unreachable refuses the request (503), since admitting it
        could break the limit."""
        if not self.enabled or not buckets:
            return None
        keys, args = self._args(key, buckets)
        return self._decide(self.store.call(lambda: self._script(keys=keys, args=args)), buckets, args)

    async def ahit(self, key: str, buckets: Sequence[Bucket]) -> Decision | None:
        """`hit` awaited on the event loop."""
        if not self.enabled or not buckets:
            return None
        keys, args = self._args(key, buckets)
        return self._decide(
            await self.store.acall(self.store.ascript(HIT)(keys=keys, args=args)), buckets, args
        )

    async def admit(self, key: str | None, buckets: Sequence[Bucket], write: bool) -> Decision | None:
        """Open a request on the store (`RedisStore.open`) and decide on its rate limit (when
        `key` is known), in one round trip."""
        if key is None or not self.enabled or not buckets:
            await self.store.open(write, ADMIT)
            return None
        keys, args = self._args(key, buckets)
        return self._decide(await self.store.open(write, ADMIT, keys, args), buckets, args)

    def _args(self, key: str, buckets: Sequence[Bucket]) -> tuple[list[str], list[Any]]:
        if isinstance(self.clock, RedisClock):  # the offset read in the script: always current
            at, offset_key = time.time(), self.store.key("clock")
        else:
            at, offset_key = self.clock.now(), ""
        args: list[Any] = [repr(at), offset_key, f"{self._me}:{next(self._ids)}"]
        for b in buckets:
            args += [b.limit, repr(b.window)]
        return [self._key(key, b.name) for b in buckets], args

    def _decide(self, out: list[Any], buckets: Sequence[Bucket], args: list[Any]) -> Decision:
        now = float(out[1])
        if args[1]:
            self.store.clock_offset = float(out[2])
        counts, marks = out[3], out[4]
        if not out[0]:
            waits = {i: float(marks[i]) + b.window - now for i, b in enumerate(buckets) if marks[i]}
            worst = max(waits, key=waits.__getitem__)
            retry = max(1, math.ceil(waits[worst]))
            return Decision(False, buckets[worst], 0, retry, retry, tuple(buckets))
        tight = min(range(len(buckets)), key=lambda i: buckets[i].limit - counts[i])
        b = buckets[tight]
        reset = math.ceil(float(marks[tight]) + b.window - now)
        return Decision(True, b, b.limit - counts[tight], max(reset, 0), 0, tuple(buckets))

    def reset(self, key_prefix: str = "") -> None:
        pattern = self.store.key("rl:") + _glob_escape(key_prefix) + "*"

        def drop() -> None:
            batch = list(self.store.redis.scan_iter(match=pattern, count=1000))
            for i in range(0, len(batch), 500):
                self.store.redis.delete(*batch[i : i + 500])

        self.store.call(drop)

    def forget(self, key: str) -> None:
        with contextlib.suppress(StoreUnavailable):  # else the logs expire a window after their last hit
            self.reset(key + "\0")


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class RedisRequestLog(RequestLog):
    """The request log of every replica, in order of answer (`GET /_mock/requests`). Appends
    leave the request path: a thread sends what is queued, pipelined, as soon as it can (so
    another replica's entries show up within a round trip or so); a read sends this replica's
    queue first."""

    def __init__(self, store: RedisStore, size: int) -> None:
        super().__init__(0)
        self.store = store
        self.size = size
        self.key = store.key("requests")
        self._queue: deque[bytes] = deque()
        self._ready = threading.Event()
        self._sending = threading.Lock()
        self._warned = -60.0
        threading.Thread(target=self._sender, name="redis-request-log", daemon=True).start()

    def append(self, entry: dict[str, Any]) -> None:
        self._queue.append(dumps(entry))
        self._ready.set()

    def _sender(self) -> None:
        while True:
            self._ready.wait()
            self._ready.clear()
            self._send()

    def _send(self) -> None:
        with self._sending:
            try:
                while self._queue:
                    pipe = self.store.redis.pipeline(transaction=False)
                    for _ in range(min(len(self._queue), 500)):
                        pipe.xadd(self.key, {"e": self._queue.popleft()}, maxlen=self.size, approximate=True)
                    pipe.execute()
            except redis.RedisError as exc:  # the log misses these requests; requests go on
                if time.monotonic() - self._warned >= 60:
                    self._warned = time.monotonic()
                    log.warning("request log: redis unavailable (%s)", exc)

    def clear(self) -> None:
        self._send()
        self.store.call(lambda: self.store.redis.delete(self.key))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self._send()
        rows = self.store.call(lambda: self.store.redis.xrevrange(self.key, count=self.size)) or []
        return (orjson.loads(fields[b"e"]) for _, fields in reversed(rows) if fields)
