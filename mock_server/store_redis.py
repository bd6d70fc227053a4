"""`serve --store redis://HOST:PORT/DB`: one state for replicas on many machines.

Redis holds the truth: a hash per table (`<prefix>t:<table>`: id → `[order, record]` as JSON),
the set of tables, and a stream, the journal, with one entry per committed transaction. Each
process keeps the tables in memory (`Store`, indexes included) as a cache it brings up to date
from the journal: reads cost no Redis round trip but one catch-up per request, so a write
acknowledged by one replica is seen by the next request to any other.

A transaction takes a lease (`SET NX PX`) and catches up in one script, runs in memory, then
commits in one script that checks it still holds the lease and that nobody wrote meanwhile,
writes the hashes, appends the journal entry and releases the lease: a check made against the
cache (a unique name, a quota, a one-time code) holds across replicas. A failed commit leaves
the cache stale, reloaded from the hashes before the next use. A process that finds its place
in the journal trimmed away, or a new `epoch` key (Redis restarted without persistence),
reloads too. Durability is Redis' own: with `appendfsync always` an acknowledged write survives
a Redis restart (`docs/redis.md`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import orjson
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .errors import StoreUnavailable
from .jsonio import dumps
from .store import Record, Store

log = logging.getLogger(__name__)
T = TypeVar("T")

_OLDER = """
local function older(a, b)  -- stream id a comes before b
  local am, as = string.match(a, '(%d+)-(%d+)')
  local bm, bs = string.match(b, '(%d+)-(%d+)')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
"""

# ARGV: prefix, epoch, last applied id, lease token ('' to read only), lease ms, max entries
CATCH_UP = (
    _OLDER
    + """
local p = ARGV[1]
if ARGV[4] ~= '' and redis.call('GET', p .. 'lease') ~= ARGV[4] then
  if not redis.call('SET', p .. 'lease', ARGV[4], 'NX', 'PX', ARGV[5]) then return {'busy'} end
end
local offset = redis.call('GET', p .. 'clock') or '0'
if redis.call('GET', p .. 'epoch') ~= ARGV[2] then return {'reload', offset} end
local trimmed = redis.call('GET', p .. 'trimmed')
if trimmed and older(ARGV[3], trimmed) then return {'reload', offset} end
if (redis.call('GET', p .. 'head') or '0-0') == ARGV[3] then return {'ok', offset, {}} end
return {'ok', offset, redis.call('XRANGE', p .. 'journal', '(' .. ARGV[3], '+', 'COUNT', ARGV[6])}
"""
)

# ARGV: prefix, a new epoch (kept if there is one already)
SNAPSHOT = """
local p = ARGV[1]
redis.call('SET', p .. 'epoch', ARGV[2], 'NX')
local out = {redis.call('GET', p .. 'epoch'), redis.call('GET', p .. 'head') or '0-0',
             redis.call('GET', p .. 'clock') or '0'}
for _, t in ipairs(redis.call('SMEMBERS', p .. 'tables')) do
  out[#out + 1] = t
  out[#out + 1] = redis.call('HGETALL', p .. 't:' .. t)
end
return out
"""

# ARGV: prefix, lease token, expected head, transaction id, journal entry, journal length,
# then (op, table, id, value) for each write
COMMIT = """
local p = ARGV[1]
if redis.call('GET', p .. 'committed') == ARGV[4] then return {'ok', redis.call('GET', p .. 'head')} end
if redis.call('GET', p .. 'lease') ~= ARGV[2] then return {'lost'} end
if (redis.call('GET', p .. 'head') or '0-0') ~= ARGV[3] then return {'moved'} end
for i = 7, #ARGV, 4 do
  local op, t = ARGV[i], p .. 't:' .. ARGV[i + 1]
  if op == 'put' then
    redis.call('HSET', t, ARGV[i + 2], ARGV[i + 3])
    redis.call('SADD', p .. 'tables', ARGV[i + 1])
  elseif op == 'del' then
    redis.call('HDEL', t, ARGV[i + 2])
  else
    redis.call('DEL', t)
    redis.call('SREM', p .. 'tables', ARGV[i + 1])
  end
end
local id = redis.call('XADD', p .. 'journal', '*', 'ops', ARGV[5])
redis.call('SET', p .. 'head', id)
redis.call('SET', p .. 'committed', ARGV[4])
while redis.call('XLEN', p .. 'journal') > tonumber(ARGV[6]) do
  local first = redis.call('XRANGE', p .. 'journal', '-', '+', 'COUNT', 1)[1][1]
  redis.call('XDEL', p .. 'journal', first)
  redis.call('SET', p .. 'trimmed', first)
end
redis.call('DEL', p .. 'lease')
return {'ok', id}
"""

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""


def connect(url: str) -> redis.Redis:
    """A client that never hangs: a connection attempt gives up after 1 s, a reply after 2 s;
    one immediate retry on a broken connection (Redis restarted: the pool reconnects)."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=1.0,
        socket_timeout=2.0,
        retry=Retry(NoBackoff(), 1, (redis.ConnectionError,)),
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _current_task() -> object | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no event loop in this thread
        return None


class RedisStore(Store):
    """The tables in Redis, cached in this process; see the module's docstring."""

    LEASE_MS = 3000  # a transaction longer than this loses its lease and is refused (503)
    WAIT = 3.5  # seconds to wait for another replica's lease (it expires after LEASE_MS)
    JOURNAL = 10_000  # journal entries kept; a process further behind reloads the hashes
    follows = True  # other replicas write: `version()` catches up too
    BATCH = 1000  # journal entries read at once

    def __init__(self, url: str, prefix: str = "sandbox:") -> None:
        super().__init__()
        self.url = url
        self.prefix = prefix
        self.redis = connect(url)
        self._catch_up = self.redis.register_script(CATCH_UP)
        self._snapshot = self.redis.register_script(SNAPSHOT)
        self._commit = self.redis.register_script(COMMIT)
        self._release = self.redis.register_script(RELEASE)
        self.clock_offset = 0.0  # the shared clock's offset, as of the last catch-up
        self._epoch = ""
        self._last = "0-0"  # the last journal entry applied
        self._stale = True  # the cache must be reloaded before it is used
        self._fresh_for: object | None = None  # the request (asyncio task) already caught up
        self._depth = 0
        self._order: dict[str, dict[str, int]] = {}  # table -> id -> place in the listing order
        self._next: dict[str, int] = {}
        self._pending: list[list[Any]] = []  # the transaction's writes: [op, table, ...]
        with self.lock:
            self.call(self._reload)

    def key(self, name: str) -> str:
        return self.prefix + name

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn`; Redis unreachable or failing becomes `StoreUnavailable` (503, Retry-After)."""
        try:
            return fn()
        except redis.RedisError as exc:
            self._stale = self._stale or self._depth > 0
            log.warning("redis at %s: %s", self.url, exc)
            raise StoreUnavailable(f"redis: {exc}") from None

    # -- catching up ----------------------------------------------------------------------
    def _reload(self) -> None:
        """Load every table from the hashes, with the journal position they stand at."""
        out = self._snapshot(args=[self.prefix, os.urandom(8).hex()])
        for table in list(self._tables):
            super()._dropped(table)
        self._order.clear()
        self._next.clear()
        self._epoch, self._last = _text(out[0]), _text(out[1])
        self.clock_offset = float(out[2])
        for i in range(3, len(out), 2):
            table, flat = _text(out[i]), out[i + 1]
            rows = sorted((orjson.loads(v) for v in flat[1::2]), key=lambda row: row[0])
            for order, record in rows:
                self._load(table, order, record)
        self._stale = False

    def _follow(self, token: str = "") -> bool:
        """Apply the journal's new entries (taking the lease first, with `token`); False while
        another process holds the lease."""
        if self._stale:
            if token and self._catch_up(args=self._catch_args(token))[0] == b"busy":
                return False
            self._reload()
            return True
        while True:
            out = self._catch_up(args=self._catch_args(token))
            status = out[0]
            if status == b"busy":
                return False
            self.clock_offset = float(out[1])
            if status == b"reload":
                self._reload()
                return True
            for entry_id, fields in out[2]:
                for op in orjson.loads(fields[1]):  # the fields, flat: ["ops", entry]
                    self._apply(op)
                self._last = _text(entry_id)
            if len(out[2]) < self.BATCH:
                return True
            token = ""  # the lease is held (or not wanted): the rest is read as it is

    def _catch_args(self, token: str) -> list[Any]:
        return [self.prefix, self._epoch, self._last, token, self.LEASE_MS, self.BATCH]

    def _load(self, table: str, order: int, record: Record) -> None:
        super()._put(table, record)
        self._order.setdefault(table, {})[record["id"]] = order
        self._next[table] = max(self._next.get(table, 1), order + 1)

    def _apply(self, op: list[Any]) -> None:
        kind, table = op[0], op[1]
        if kind == "put":
            self._load(table, op[2], op[3])
        elif kind == "del":
            row = self._tables.get(table, {}).get(op[2])
            if row is not None:
                super()._remove(table, row)
                self._order[table].pop(op[2], None)
        else:
            super()._dropped(table)
            self._order.pop(table, None)

    def _refresh(self) -> None:
        """Once per request (asyncio task), and always outside one: what any replica
        acknowledged before the request began is seen by it."""
        if self._depth:
            return  # a transaction caught up under its lease
        task = _current_task()
        if task is not None and task is self._fresh_for and not self._stale:
            return
        self.call(self._follow)
        self._fresh_for = task

    # -- transactions ---------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Writes inside are applied in memory at once and committed to Redis together when the
        outermost transaction ends: all of them or none (the cache is then reloaded)."""
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            token = os.urandom(12).hex()
            self._acquire(token)
            self._depth = 1
            try:
                yield
            finally:
                self._depth = 0
                self._finish(token)

    def _acquire(self, token: str) -> None:
        deadline = time.monotonic() + self.WAIT
        pause = 0.0005
        while not self.call(lambda: self._follow(token)):
            if time.monotonic() > deadline:
                raise StoreUnavailable("another replica held the store's lease too long")
            time.sleep(pause)
            pause = min(pause * 2, 0.02)
        self._fresh_for = _current_task()

    def _finish(self, token: str) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            self.call(lambda: self._release(keys=[self.key("lease")], args=[token]))
            return
        args: list[Any] = [self.prefix, token, self._last, os.urandom(12).hex(), dumps(pending), self.JOURNAL]
        for op in pending:
            if op[0] == "put":
                args += ["put", op[1], op[3]["id"], dumps([op[2], op[3]])]
            elif op[0] == "del":
                args += ["del", op[1], op[2], ""]
            else:
                args += ["drop", op[1], "", ""]
        self._depth = 1  # a failure here leaves the cache stale (see `call`)
        try:
            out = self.call(lambda: self._commit(args=args))
        finally:
            self._depth = 0
        if out[0] != b"ok":
            self._stale = True
            self.call(lambda: self._release(keys=[self.key("lease")], args=[token]))
            raise StoreUnavailable(f"commit refused ({_text(out[0])}): the lease expired")
        self._last = _text(out[1])

    # -- hooks ----------------------------------------------------------------------------
    def _put(self, table: str, record: Record) -> None:
        orders = self._order.setdefault(table, {})
        order = orders.get(record["id"])
        if order is None:
            order = orders[record["id"]] = self._next.get(table, 1)
            self._next[table] = order + 1
        super()._put(table, record)
        self._pending.append(["put", table, order, record])

    def _remove(self, table: str, record: Record) -> None:
        super()._remove(table, record)
        self._order[table].pop(record["id"], None)
        self._pending.append(["del", table, record["id"]])

    def _dropped(self, table: str) -> None:
        super()._dropped(table)
        self._order.pop(table, None)
        self._pending.append(["drop", table])

    def close(self) -> None:
        self.redis.close()
