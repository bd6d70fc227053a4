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

import asyncio
import contextlib
import itertools
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any, overload

import orjson
import redis

from . import algorithms as alg
from .clock import Clock
from .errors import StoreUnavailable
from .jsonio import dumps
from .ratelimit import Bucket, Decision, RateLimiter, verdict
from .shared import RequestLog
from .store_redis import NO_PART, RedisStore

log = logging.getLogger(__name__)

# The limiter's part of a request's script, a Lua function: the decision of `ratelimit.RateLimiter.hit`
# (prune, check every bucket, record in all or none, as `algorithms.py` defines them) over one
# sorted set per bucket (`keys`). ARGV from `at`: time, the offset key ('' when the time includes
# it), a unique id, then (algorithm s|f|b, limit, window, burst, where the window begins when the
# clock has no offset) per bucket; `known`: the offset, when the caller's script has just read it.
# A window's set holds admission times (sliding: of the last window; fixed: since the window
# began), each member named `<time>|<id>`; a token bucket's holds one member whose score is its
# theoretical arrival time. Times travel as text: `%.17g` costs more than the rest of the script,
# so it is used only when the clock has an offset. Returns admitted (1/0),
# now, offset, and per bucket what `algorithms.py` reads of a log after the decision: its length,
# its first entry and its entry `limit` from the end (`RedisRateLimiter._decide`).
LIMIT_FN = """
local function first_of(k, rank)  -- a window's entry at `rank`: its time, as text (see `member`)
  local m = redis.call('ZRANGE', k, rank, rank)[1]
  return string.match(m, '^([^|]+)|') or redis.call('ZSCORE', k, m)
end
local function limit(keys, at, known)
  redis.set_repl(redis.REPL_REPLICA)  -- windows go to replicas, not to the AOF (see the docstring)
  local now, offset = tonumber(ARGV[at]), '0'
  if ARGV[at + 1] ~= '' then
    offset = known or redis.call('GET', ARGV[at + 1]) or '0'
    now = now + tonumber(offset)
  end
  -- no offset: the times are the caller's, as it wrote them (formatting costs more than the rest)
  local plain = offset == '0'
  local stamp = plain and ARGV[at] or string.format('%.17g', now)
  local member = stamp .. '|' .. ARGV[at + 2]  -- its time in its name: read back without a format
  local full, counts, firsts, marks = false, {}, {}, {}
  for i, k in ipairs(keys) do
    local j = at + 5 * i - 2
    local kind, cap, window = ARGV[j], tonumber(ARGV[j + 1]), tonumber(ARGV[j + 2])
    local burst = tonumber(ARGV[j + 3])
    if kind == 'b' then
      local per, tat = window / cap, tonumber(redis.call('ZSCORE', k, 't'))
      if tat and tat <= now then redis.call('DEL', k); tat = nil end
      local ahead = 0
      if tat then ahead = math.max(tat - now, 0) end
      if ahead + per > burst * per + 1e-6 then full = true end  -- algorithms.EPSILON
      counts[i], firsts[i], marks[i] = tat and 1 or 0, tat or '', ''
    else
      local edge = ARGV[j + 4]
      if kind == 's' then
        if not plain then edge = string.format('%.17g', now - window) end
        redis.call('ZREMRANGEBYSCORE', k, '-inf', edge)
      else
        if not plain then edge = string.format('%.17g', math.floor(now / window) * window) end
        redis.call('ZREMRANGEBYSCORE', k, '-inf', '(' .. edge)
      end
      local n = redis.call('ZCARD', k)
      counts[i], firsts[i], marks[i] = n, '', ''
      if n >= cap then full = true end
    end
  end
  for i, k in ipairs(keys) do
    local j = at + 5 * i - 2
    local kind, cap, window = ARGV[j], tonumber(ARGV[j + 1]), tonumber(ARGV[j + 2])
    local n = counts[i]
    if kind == 'b' then
      if not full then
        local tat = math.max(firsts[i] ~= '' and firsts[i] or now, now) + window / cap
        redis.call('ZADD', k, string.format('%.17g', tat), 't')
        redis.call('PEXPIRE', k, math.ceil((tat - now) * 1000) + 1000)
        counts[i], firsts[i] = 1, tat
      end
      if firsts[i] ~= '' then firsts[i] = string.format('%.17g', firsts[i]) end
    elseif not full then
      redis.call('ZADD', k, stamp, member)
      redis.call('PEXPIRE', k, math.ceil(window * 1000) + 1000)
      counts[i] = n + 1
      if n == 0 then firsts[i] = stamp else firsts[i] = first_of(k, 0) end
    elseif n >= cap and kind == 's' then  -- refused: when the entry `cap` from the end leaves
      marks[i] = first_of(k, n - cap)
    end
  end
  redis.set_repl(redis.REPL_ALL)
  return {full and 0 or 1, stamp, offset, counts, firsts, marks}
end
"""

HIT = LIMIT_FN + "return limit(KEYS, 1)\n"

# A request's part of its one round trip (`RedisStore.open`, with the catch-up of the store): the
# rate-limit decision.
ADMIT = LIMIT_FN + "local part = limit\n"


# KEYS[1] the log's stream, KEYS[2] its count of requests; ARGV: its size, the number of
# requests in the batch, the batch. One stream entry per batch, its id the count of requests
# logged up to its end, so trimming keeps whole batches holding the last `size` requests.
LOG = """
redis.set_repl(redis.REPL_REPLICA)
local n = redis.call('INCRBY', KEYS[2], ARGV[2])
local added = redis.pcall('XADD', KEYS[1], n .. '-1', 'b', ARGV[3])
if type(added) == 'table' and added.err then  -- the count is behind the stream (reset apart from it)
  local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1][1]
  n = tonumber(string.match(top, '^%d+')) + tonumber(ARGV[2])
  redis.call('SET', KEYS[2], n)
  redis.call('XADD', KEYS[1], n .. '-1', 'b', ARGV[3])
end
if n > tonumber(ARGV[1]) then redis.call('XTRIM', KEYS[1], 'MINID', n - tonumber(ARGV[1]) + 1) end
return n
"""


def frame(entry: dict[str, Any]) -> bytes:
    """One logged request as the Redis log carries it: its fields as JSON, then its kept bodies'
    bytes as they came (`bodies.clip`: no decoding, no escaping on the request path)."""
    sent, answered = entry.get("bodies") or (None, None)
    q, r = (sent[0] if sent else b""), (answered[0] if answered else b"")
    e = dumps({**entry, "bodies": [sent[1] if sent else None, answered[1] if answered else None]})
    return b"%d %d %d\n%b%b%b" % (len(e), len(q), len(r), e, q, r)


def unframe(batch: bytes) -> Iterator[dict[str, Any]]:
    """The requests of one batch, in the order they were logged."""
    at = 0
    while at < len(batch):
        line = batch.index(b"\n", at)
        ne, nq, nr = map(int, batch[at:line].split())
        e0 = line + 1
        q0, r0 = e0 + ne, e0 + ne + nq
        at = r0 + nr
        entry = orjson.loads(batch[e0:q0])
        sizes = entry.get("bodies") or (None, None)
        entry["bodies"] = (
            (batch[q0:r0], sizes[0]) if sizes[0] is not None else None,
            (batch[r0:at], sizes[1]) if sizes[1] is not None else None,
        )
        yield entry


class RedisClock(Clock):
    """Wall time plus the sandbox's shared offset (`<prefix>clock`)."""

    def __init__(self, store: RedisStore) -> None:
        super().__init__()
        self.store = store

    def wall(self) -> float:
        """This machine's time, to which the shared offset is added (in the limiter's script)."""
        return time.time()

    def now(self) -> float:
        return self.wall() + self.store.clock_offset

    def advance(self, seconds: float) -> float:
        key = self.store.key("clock")
        self.store.clock_offset = float(self.store.call(lambda: self.store.redis.incrbyfloat(key, seconds)))
        return self.now()


class RedisRateLimiter(RateLimiter):
    """The limiter with its logs in Redis (every algorithm of `algorithms.py`); a decision is one
    script, so limits are exact across replicas."""

    def __init__(
        self, store: RedisStore, clock: Clock, window_override: float | None = None, enabled: bool = True
    ) -> None:
        super().__init__(clock, window_override, enabled)
        self.store = store
        self._script = store.redis.register_script(HIT)
        self._ids = itertools.count()
        self._me = os.urandom(6).hex().encode()

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
            await self.store.open(write, NO_PART)
            return None
        keys, args = self._args(key, buckets)
        return self._decide(await self.store.open(write, ADMIT, keys, args), buckets, args)

    def _args(self, key: str, buckets: Sequence[Bucket]) -> tuple[list[str], list[Any]]:
        if isinstance(self.clock, RedisClock):  # the offset read in the script: always current
            at, offset_key = self.clock.wall(), self.store.key("clock")
        else:
            at, offset_key = self.clock.now(), ""
        # what changes with every call as bytes: `redis_wire.pack` remembers the rest's encoding
        args: list[Any] = [repr(at).encode(), offset_key, b"%b:%d" % (self._me, next(self._ids))]
        for b in buckets:  # and where its window begins, when the clock has no offset
            args += [_KIND[b.algorithm], b.limit, repr(b.window), b.capacity, _edge(b, at)]
        return [self._key(key, b) for b in buckets], args

    def _key(self, key: str, b: Bucket) -> str:
        # another algorithm for the same bucket (an overlay changed) starts a log of its own
        suffix = "" if b.algorithm == alg.SLIDING else "\0" + b.algorithm
        return self.store.key(f"rl:{key}\0{b.name}{suffix}")

    def _decide(self, out: list[Any], buckets: Sequence[Bucket], args: list[Any]) -> Decision:
        now = float(out[1])
        if args[1]:
            self.store.clock_offset = float(out[2])
        logs = [
            _Tail(n, first, mark, n - b.limit)
            for b, n, first, mark in zip(buckets, out[3], out[4], out[5], strict=True)
        ]
        return verdict(buckets, logs, now, bool(out[0]))

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


_KIND = {alg.SLIDING: "s", alg.FIXED: "f", alg.BUCKET: "b"}


def _edge(b: Bucket, at: float) -> bytes:
    """The time from which `b`'s window counts at `at` (as `LIMIT_FN` computes it in Lua)."""
    if b.algorithm == alg.SLIDING:
        return repr(at - b.window).encode()
    if b.algorithm == alg.FIXED:
        return repr(float(math.floor(at / b.window) * b.window)).encode()
    return b""


class _Tail(Sequence[float]):
    """What the Lua limiter returns of a log: its length, its first entry and the entry at `at`
    (`limit` from its end): all that `algorithms.py` reads of a log to answer."""

    def __init__(self, n: int, first: bytes, mark: bytes, at: int) -> None:
        self.n, self.first, self.mark, self.at = n, first, mark, at

    def __len__(self) -> int:
        return self.n

    @overload
    def __getitem__(self, i: int) -> float: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[float]: ...
    def __getitem__(self, i: int | slice) -> float | Sequence[float]:
        if i == self.at and self.mark:
            return float(self.mark)
        if i == 0 and self.n:
            return float(self.first)
        raise IndexError(i)


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class RedisRequestLog(RequestLog):
    """The request log of every replica, in order of answer (`GET /_mock/requests`). Appends
    leave the request path: on the event loop, the entries of one turn of the loop are sent
    together after it as one stream entry (`LOG`), pipelined with the requests' scripts
    (`RedisStore.post`); elsewhere a thread sends what is queued as soon as it can (so another
    replica's entries show up within a round trip or so); a read sends this replica's queue
    first. Bodies travel as their bytes, never escaped into JSON (`frame`). Like the rate-limit
    windows, the log goes to Redis' replicas but not to its AOF: no request waits for an fsync
    to be logged, and a Redis restart starts the log over, as a file-store restart does."""

    def __init__(self, store: RedisStore, size: int) -> None:
        super().__init__(0)
        self.store = store
        self.size = size
        self.key = store.key("requests")
        self.keys = (self.key, store.key("requests:n"))
        self._queue: deque[bytes] = deque()
        self._batch: list[bytes] = []
        self._ready = threading.Event()
        self._sending = threading.Lock()
        self._warned = -60.0
        threading.Thread(target=self._sender, name="redis-request-log", daemon=True).start()

    def append(self, entry: dict[str, Any]) -> None:
        data = frame(entry)
        if self._batch:  # this turn of the event loop's entries, sent together after it
            self._batch.append(data)
            return
        if self.store.on_loop():
            self._batch.append(data)
            asyncio.get_running_loop().call_soon(self._post)
            return
        self._queue.append(data)
        self._ready.set()

    def _post(self) -> None:
        batch, self._batch = self._batch, []
        if batch and not self.store.post("EVAL", LOG, 2, *self.keys, self.size, len(batch), b"".join(batch)):
            self._queue.extend(batch)  # the connection is not up: the thread sends them
            self._ready.set()

    def _sender(self) -> None:
        while True:
            self._ready.wait()
            self._ready.clear()
            self._send()

    def _send(self) -> None:
        with self._sending:
            if self._batch:
                self._queue.extend(self._batch)
                self._batch = []
            try:
                while self._queue:
                    batch = [self._queue.popleft() for _ in range(min(len(self._queue), 500))]
                    self.store.redis.eval(LOG, 2, *self.keys, self.size, len(batch), b"".join(batch))
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
        newest: deque[dict[str, Any]] = deque(maxlen=self.size)
        for _, fields in reversed(rows):
            batch = (fields or {}).get(b"b")
            if isinstance(batch, bytes):
                newest.extend(unframe(batch))
        return iter(newest)
